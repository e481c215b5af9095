"""Benchmark: re-running the iris pipeline with step caching on, against its first run (same run).

The iris example caches its container steps (``CacheConfig``, 30 days). A first run on an empty
store executes everything; the re-run finds every container step in the cache and only evaluates
the Model steps, the gate and the registration. Prints both wall times and their ratio
(target: ≤ 0.10).

    .venv/bin/python orchestrator/bench/cached_rerun.py [--cli]

By default both timings cover executing the pipeline (staging, the pre-run checks and the run),
not loading the file, like ``local_vs_sdk.py``. ``--cli`` also times two whole
``rosetta pipeline run`` commands, which add the SDK's import and the definition build (several
seconds on this machine) to both sides. Needs Docker and the example images.
"""

from __future__ import annotations

import argparse
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


def timed_cli(tmp: Path) -> float:
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "sagemaker_rosetta.cli", "pipeline", "run", str(IRIS), "--store",
                          str(tmp / "s3"), "--workdir", str(tmp / "runs")], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    if res.returncode != 0:
        raise SystemExit(f"rosetta pipeline run failed:\n{res.stderr[-3000:]}")
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cli", action="store_true", help="also time two whole `rosetta pipeline run` commands")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
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
        with tempfile.TemporaryDirectory(prefix="rosetta-bench-cache-cli-") as name:
            cli_first = timed_cli(Path(name))
            cli_again = timed_cli(Path(name))
        print(f"whole CLI: first {cli_first:.1f} s, cached {cli_again:.1f} s, ratio {cli_again / cli_first:.3f} "
              "(both include importing the SDK and building the definition)")


if __name__ == "__main__":
    main()
