"""Benchmark: Rosetta's local runner vs the SDK's LocalPipelineSession on the same 3-step pipeline.

train → create model → batch transform, same image (default ``rosetta-example/iris-python:latest``),
same iris data, one run each. Prints both wall times and the ratio (target: ≤ 0.5).

    .venv/bin/python orchestrator/bench/local_vs_sdk.py [--image IMAGE]

Both timings cover executing the pipeline only (not building the step objects). Needs Docker and
Debian's docker-compose 1.29.2 (for the SDK side).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "orchestrator" / "tests"))

import orch_helpers  # noqa: E402,F401  (offline AWS environment)
from sdk_local_mode import remove_leftovers, run_sdk_local  # noqa: E402

from rosetta_orchestrator import Pipeline  # noqa: E402
from rosetta_orchestrator.local.container import image_present  # noqa: E402
from rosetta_orchestrator.local.plan import build_plan  # noqa: E402
from rosetta_orchestrator.local.precheck import PrecheckFailed, check  # noqa: E402
from rosetta_orchestrator.local.registry import Registry  # noqa: E402
from rosetta_orchestrator.local.runner import LocalRunner, QuietReporter  # noqa: E402
from rosetta_orchestrator.local.store import LocalStore, stage_assets  # noqa: E402

DATA = ROOT / "examples" / "iris" / "data"
HPS = {"n_estimators": "20", "target": "species"}


def rosetta_run(image: str, tmp: Path) -> float:
    p = Pipeline("rosetta-bench", bucket="rosetta-bench")
    train = p.training("Train", image=image, inputs={"train": p.upload(tmp / "train")}, hyperparameters=HPS)
    model = p.model("Model", model_data=train.model_data, trained_by=train)
    p.transform("Transform", model=model, data=p.upload(tmp / "batch"), strategy="MultiRecord",
                assemble_with="Line")
    definition = p.definition_dict()
    store = LocalStore(tmp / "s3")
    stage_assets(store, p.assets)
    findings = check(build_plan(definition), {}, store, Registry(store), image_present)
    if findings.blocking:
        raise PrecheckFailed(findings)
    runner = LocalRunner(definition, store=store, workdir=tmp / "runs", pipeline_name=p.name,
                         reporter=QuietReporter())
    t0 = time.monotonic()
    result = runner.run()
    seconds = time.monotonic() - t0
    if result.status != "Succeeded":
        raise SystemExit(f"rosetta run failed: {[(s.name, s.reason) for s in result.failed]}")
    print("rosetta steps:", {n: round(s.seconds, 1) for n, s in result.steps.items()})
    return seconds


def once(image: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="rosetta-bench-") as name:
        tmp = Path(name)
        (tmp / "train").mkdir()
        shutil.copy(DATA / "train.csv", tmp / "train")
        (tmp / "batch").mkdir()
        shutil.copy(DATA / "test_features.csv", tmp / "batch")
        ours = rosetta_run(image, tmp)
        try:
            sdk = run_sdk_local(image, train_dir=tmp / "train", batch_dir=tmp / "batch",
                                out_dir=tmp / "sdk-out", work=tmp / "sdk-work", hyperparameters=HPS)
        finally:
            remove_leftovers()
        if sdk["status"] != "Succeeded":
            raise SystemExit(f"SDK local mode failed: {sdk}")
        print("SDK steps:", {n: round(v, 1) for n, v in sdk.get("step_seconds", {}).items()})
    return ours, float(sdk["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--image", default="rosetta-example/iris-python:latest")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each (the median ratio is reported)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    ratios = []
    for i in range(args.repeat):
        ours, sdk = once(args.image)
        ratios.append(ours / sdk)
        print(f"run {i + 1}: rosetta {ours:5.1f} s, SDK LocalPipelineSession {sdk:5.1f} s, "
              f"ratio {ours / sdk:.2f}  (load average {os.getloadavg()[0]:.1f})")
    print(f"image: {args.image}")
    print(f"ratio (rosetta / SDK local mode): {statistics.median(ratios):.2f}  (target <= 0.50)")


if __name__ == "__main__":
    main()
