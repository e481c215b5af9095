"""Benchmark: multi-host XGBoost and parallel tuning jobs with the local runner (issue 18).

1. The XGBoost example's training job (``examples/xgboost``, 6,000 rows in 6 shards, 60 rounds)
   on 1, 2 and 3 hosts: wall time of the step and validation accuracy, each against the 1-host run
   of the same session. On a 2-core machine the point is correctness and the overhead of the
   network, the extra containers and XGBoost's collective, not a speed-up.
2. A tuning job of 8 single-host training jobs with the same image, ``MaxParallelTrainingJobs`` 1
   against 2 (Random, same seed, so the same 8 jobs).

    .venv/bin/python orchestrator/bench/scale_out.py [--only xgboost|tuning] [--jobs 8]

Needs Docker and ``rosetta-example/xgboost`` (``rosetta setup --examples``). Prints the machine's
load average with each figure: the runs share the cores with whatever else runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "orchestrator" / "tests"))

import orch_helpers  # noqa: E402,F401  (offline AWS environment)

from rosetta_orchestrator import Pipeline  # noqa: E402
from rosetta_orchestrator.local.run import execute  # noqa: E402
from rosetta_orchestrator.local.runner import QuietReporter, RunResult  # noqa: E402
from rosetta_orchestrator.local.store import LocalStore  # noqa: E402


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("xgboost_example", ROOT / "examples" / "xgboost" / "pipeline.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(p: Pipeline, step: str) -> tuple[RunResult, float]:
    with tempfile.TemporaryDirectory(prefix="rosetta-bench-scale-") as name:
        tmp = Path(name)
        result = execute(p, store=LocalStore(tmp / "s3"), workdir=tmp / "runs", reporter=QuietReporter())
        if result.status != "Succeeded":
            raise SystemExit(f"{p.name}: {step} failed: {result.steps[step].reason}")
        return result, result.steps[step].seconds


def xgboost_hosts(counts: list[int]) -> None:
    ex = example()
    rows: list[tuple[int, float, float, float]] = []
    for n in counts:
        load = os.getloadavg()[0]
        result, seconds = run(ex.training_only(n), "TrainXGB")
        metrics = {m["MetricName"]: m["Value"] for m in result.steps["TrainXGB"].properties["FinalMetricDataList"]}
        rows.append((n, seconds, float(metrics["validation:accuracy"]), load))
    base_s, base_acc = rows[0][1], rows[0][2]
    print("XGBoost example, TrainXGB (6 shards, ShardedByS3Key, 60 rounds), same session:")
    print(f"{'hosts':>5}  {'seconds':>8}  {'vs 1 host':>9}  {'validation accuracy':>19}  {'Δ vs 1 host':>11}  load")
    for n, seconds, acc, load in rows:
        print(f"{n:>5}  {seconds:>8.1f}  {seconds / base_s:>8.2f}x  {acc:>19.4f}  {acc - base_acc:>+11.4f}  {load:.1f}")


def tuning_parallel(jobs: int) -> None:
    ex = example()
    rows: list[tuple[int, float, float, Any]] = []
    for parallel in (1, 2):
        p = Pipeline(f"rosetta-bench-tune-p{parallel}", bucket="rosetta-bench")
        inputs = {"train": p.upload(ex.HERE / "data" / "train", "train"),
                  "validation": p.upload(ex.HERE / "data" / "validation", "validation")}
        p.tuning("Tune", image=ex.IMAGE, inputs=inputs, objective="validation:accuracy", metrics=ex.METRICS,
                 ranges={"max_depth": (2, 6), "eta": (0.05, 0.5, "Logarithmic")}, hyperparameters={"num_round": 30},
                 max_jobs=jobs, max_parallel=parallel, seed=18)
        load = os.getloadavg()[0]
        result, seconds = run(p, "Tune")
        best = result.steps["Tune"].properties["BestTrainingJob"]
        rows.append((parallel, seconds, load, best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]))
    print(f"\nTuning, {jobs} training jobs (Random, same seed), same session:")
    print(f"{'MaxParallelTrainingJobs':>23}  {'seconds':>8}  {'vs 1':>6}  {'best accuracy':>13}  load")
    for parallel, seconds, load, best in rows:
        print(f"{parallel:>23}  {seconds:>8.1f}  {seconds / rows[0][1]:>5.2f}x  {best:>13.4f}  {load:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("xgboost", "tuning"))
    parser.add_argument("--hosts", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    t0 = time.monotonic()
    if args.only in (None, "xgboost"):
        xgboost_hosts(args.hosts)
    if args.only in (None, "tuning"):
        tuning_parallel(args.jobs)
    print(f"\n(total {time.monotonic() - t0:.0f} s, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
