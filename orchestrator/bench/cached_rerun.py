"""Benchmark: re-running the iris pipeline with step caching on, against its first run (same run).

The iris example caches its container steps (``CacheConfig``, 30 days). A first run on an empty
store executes everything; the re-run finds every container step in the cache and only evaluates
the Model steps, the gate and the registration. Prints both wall times and their ratio
(target: ≤ 0.10).

    .venv/bin/python orchestrator/bench/cached_rerun.py [--cli]

By default both timings cover executing the pipeline (staging, the pre-run checks and the run),
not loading the file, like ``local_vs_sdk.py``. ``--cli`` also times whole ``rosetta pipeline run``
commands in fresh interpreters, with an empty definition cache of their own: the first run (it
builds the definition, importing the SDK), the cached re-run (the definition cache and the step
cache both hit: no SDK import, checked with ``-X importtime``), and, as the same-run baseline of what
the definition cache saves, a re-run with the definition cache off (``ROSETTA_DEFINITION_CACHE=off``:
the SDK import and the build again, every step still from the step cache). Needs Docker and the
example images.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "orchestrator" / "tests"))

import orch_helpers  # noqa: E402,F401  (offline AWS environment)

from rosetta_orchestrator.loader import load_source  # noqa: E402
from rosetta_orchestrator.local.run import execute  # noqa: E402
from rosetta_orchestrator.local.runner import QuietReporter, RunResult  # noqa: E402
from rosetta_orchestrator.local.store import LocalStore  # noqa: E402

IRIS = ROOT / "examples" / "iris" / "pipeline.py"
CONTAINER_STEPS = ("Training", "Processing", "Transform")


def timed_run(tmp: Path) -> tuple[float, RunResult]:
    source = load_source(IRIS)
    t0 = time.monotonic()
    result = execute(source, store=LocalStore(tmp / "s3"), workdir=tmp / "runs", reporter=QuietReporter())
    seconds = time.monotonic() - t0
    if result.status != "Succeeded":
        raise SystemExit(f"iris run failed: {result.failure_reason}")
    return seconds, result


def timed_cli(tmp: Path, definitions: str) -> tuple[float, bool, dict[str, str]]:
    """One whole ``rosetta pipeline run`` in a fresh interpreter: wall time, whether it imported the SDK,
    and each container step's status (``cached`` when the step cache hit)."""
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "sagemaker_rosetta.cli", "pipeline", "run",
                          str(IRIS), "--store", str(tmp / "s3"), "--workdir", str(tmp / "runs")], cwd=ROOT,
                         capture_output=True, text=True, check=False,
                         env={**os.environ, "ROSETTA_DEFINITION_CACHE": definitions})
    seconds = time.monotonic() - t0
    if res.returncode != 0:
        raise SystemExit(f"rosetta pipeline run failed:\n{res.stderr[-3000:]}")
    modules = [line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")]
    sdk = any(m.split(".")[0] in ("sagemaker", "boto3", "botocore") for m in modules)
    latest = max((tmp / "runs").glob("*/result.json"), key=lambda p: p.stat().st_mtime)
    steps = json.loads(latest.read_text())["steps"]
    status = {n: ("cached" if s.get("cached_from") else s["status"]) for n, s in steps.items()
              if s["type"] in CONTAINER_STEPS}
    return seconds, sdk, status


def cli_rounds() -> None:
    with tempfile.TemporaryDirectory(prefix="rosetta-bench-cache-cli-") as name:
        tmp = Path(name)
        definitions = str(tmp / "definitions")
        load = [os.getloadavg()[0]]
        first, sdk1, steps1 = timed_cli(tmp, definitions)
        load.append(os.getloadavg()[0])
        again, sdk2, steps2 = timed_cli(tmp, definitions)
        load.append(os.getloadavg()[0])
        rebuilt, sdk3, steps3 = timed_cli(tmp, "off")
        load.append(os.getloadavg()[0])
    print("whole `rosetta pipeline run` commands (fresh interpreters, -X importtime):")
    print(f"  first run                               {first:6.1f} s  (builds the definition; SDK imported: "
          f"{'yes' if sdk1 else 'no'}; {len(steps1)} container steps run)")
    print(f"  cached re-run                           {again:6.1f} s  (definition cache hit; SDK imported: "
          f"{'yes' if sdk2 else 'no'}; {len(steps2)} step-cache hits)")
    print(f"  re-run, definition cache off (baseline) {rebuilt:6.1f} s  (SDK imported: {'yes' if sdk3 else 'no'}; "
          f"{len(steps3)} step-cache hits)")
    print(f"  load average before/after each: {', '.join(f'{x:.1f}' for x in load)}")
    print(f"  ratio cached re-run / first run: {again / first:.3f}  (target <= 0.10)")
    print(f"  ratio without the definition cache / first run: {rebuilt / first:.3f}")
    for label, steps in (("cached re-run", steps2), ("re-run without the definition cache", steps3)):
        if set(steps.values()) != {"cached"} or len(steps) != len(steps1):
            # an image rebuilt between the runs (its ID is in the step cache key) runs its steps again
            raise SystemExit(f"not valid: the {label} did not hit the step cache for every container step "
                             f"({steps} vs {sorted(steps1)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cli", action="store_true",
                    help="also time whole `rosetta pipeline run` commands (first, cached, definition cache off)")
    ap.add_argument("--cli-only", action="store_true", help="only the whole-command timings")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    if args.cli_only:
        cli_rounds()
        return
    with tempfile.TemporaryDirectory(prefix="rosetta-bench-cache-") as name:
        tmp = Path(name)
        first, run1 = timed_run(tmp)
        again, run2 = timed_run(tmp)
        container = [s for s in run2.steps.values() if s.type in CONTAINER_STEPS]
        cached = [s.name for s in container if s.cached_from == run1.execution_id]
        if len(cached) != len(container):
            raise SystemExit(f"not every container step was a cache hit: {[s.name for s in container]} vs {cached}")
        print(f"first run   {first:6.1f} s  ({len(container)} container steps run)")
        print(f"cached run  {again:6.1f} s  ({len(cached)} cache hits; Model steps, the gate and the "
              "registration run again)")
        print(f"load average {os.getloadavg()[0]:.1f}")
        print(f"ratio (cached re-run / first run): {again / first:.3f}  (target <= 0.10)")
    if args.cli:
        cli_rounds()


if __name__ == "__main__":
    main()
