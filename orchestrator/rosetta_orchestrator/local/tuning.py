"""A Tuning step (``CreateHyperParameterTuningJob``) run locally: training jobs over a search space.

Each training job is an ordinary local training job (:func:`~.training.run_training`, so several
instances, sharding, checkpoints and metrics behave the same) made from ``TrainingJobDefinition``:
its ``StaticHyperParameters``, the job's drawn values (:mod:`.search`) and
``_tuning_objective_metric`` (the objective's name, which SageMaker adds to every tuning job's
training jobs). At most ``MaxParallelTrainingJobs`` run at once, also bounded by the machine
(its core count, or the runner's ``max_parallel``). The objective is the job's final value of the
metric named by ``HyperParameterTuningJobObjective`` (through ``MetricDefinitions``, as SageMaker
reads it); the best job is the lowest (``Minimize``) or highest (``Maximize``), the earlier one on a
tie. A job that fails, or completes without the metric, does not stop the others; the step fails
only when no job gave the objective. ``TuningJobCompletionCriteria.TargetObjectiveMetricValue``
and ``ResourceLimits.MaxRuntimeInSeconds`` stop new jobs from starting.

Properties follow ``DescribeHyperParameterTuningJob`` and ``ListTrainingJobsForHyperParameterTuningJob``
(the two shapes the SDK's ``TuningStep`` declares): ``BestTrainingJob``, ``TrainingJobSummaries``
sorted best first (the SDK's ``get_top_model_s3_uri(top_k, bucket, prefix)`` reads
``TrainingJobSummaries[top_k].TrainingJobName`` into
``s3://bucket/prefix/<name>/output/model.tar.gz``, where the training job put its model),
``TrainingJobStatusCounters``, ``ObjectiveStatusCounters``; plus ``RosettaTrainingJobs``, each
job's hyperparameters, status, ``FinalMetricDataList`` and model (a local extra, not on AWS).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from rosetta_orchestrator.local import search
from rosetta_orchestrator.local.context import JobContext, StepFailed
from rosetta_orchestrator.local.declarations import RESERVED
from rosetta_orchestrator.local.plan import DefinitionError
from rosetta_orchestrator.local.training import run_training

#: how many summaries ListTrainingJobsForHyperParameterTuningJob keeps for a pipeline (the SDK:
#: "tuning step stores up to 50 top performing training jobs")
TOP = 50


@dataclass(frozen=True)
class Spec:
    """A tuning job's definition, checked before any training job starts."""

    strategy: str
    objective: str
    direction: str  # Minimize | Maximize
    space: list[search.Range]
    max_jobs: int | None
    max_parallel: int
    max_runtime: float | None
    target: float | None
    seed: int | None
    definition: dict[str, Any]

    @property
    def image(self) -> str:
        return str(self.definition["AlgorithmSpecification"]["TrainingImage"])


def spec(args: dict[str, Any]) -> Spec:
    """Read and check the request; raises :class:`DefinitionError` naming what is wrong."""
    config = args.get("HyperParameterTuningJobConfig") or {}
    if args.get("TrainingJobDefinitions"):
        raise DefinitionError("TrainingJobDefinitions (several training definitions in one tuning job) is not "
                              "supported locally: give one TrainingJobDefinition")
    definition = args.get("TrainingJobDefinition")
    if not definition:
        raise DefinitionError("the tuning job has no TrainingJobDefinition")
    if args.get("WarmStartConfig"):
        raise DefinitionError("WarmStartConfig (parent tuning jobs) is not supported locally: remove it")
    objective = config.get("HyperParameterTuningJobObjective") or {}
    name, direction = str(objective.get("MetricName") or ""), str(objective.get("Type") or "")
    if not name or direction not in ("Minimize", "Maximize"):
        raise DefinitionError("HyperParameterTuningJobObjective needs a MetricName and Type Minimize or Maximize")
    declared = [str(d.get("Name")) for d in definition.get("AlgorithmSpecification", {}).get("MetricDefinitions")
                or []]
    if name not in declared:  # SageMaker's check: "A metric is required for this hyperparameter tuning job objective"
        raise DefinitionError(f"the objective metric {name!r} has no MetricDefinitions entry (declared: "
                              f"{', '.join(declared) or 'none'}); declare it (metrics=[{name!r}])")
    limits = config.get("ResourceLimits") or {}
    try:
        space = search.ranges(config)
        strategy = str(config.get("Strategy") or "Bayesian")
        max_jobs = int(limits["MaxNumberOfTrainingJobs"]) if limits.get("MaxNumberOfTrainingJobs") else None
        if strategy != "Grid" and max_jobs is None:
            raise search.RangeError(f"ResourceLimits.MaxNumberOfTrainingJobs is required for the {strategy} strategy")
        search.candidates(strategy, space, max_jobs, 0)  # the Grid's and the limits' checks
    except search.RangeError as exc:
        raise DefinitionError(str(exc)) from None
    criteria = config.get("TuningJobCompletionCriteria") or {}
    target = criteria.get("TargetObjectiveMetricValue")
    seed = config.get("RandomSeed")
    return Spec(strategy, name, direction, space, max_jobs, max(1, int(limits.get("MaxParallelTrainingJobs") or 1)),
                float(limits["MaxRuntimeInSeconds"]) if limits.get("MaxRuntimeInSeconds") else None,
                float(target) if target is not None else None, int(seed) if seed is not None else None,
                dict(definition))


def tuning_job_name(step: str, execution_id: str) -> str:
    """At most 32 characters, as SageMaker requires; unique per execution and step."""
    base = "".join(c if c.isalnum() else "-" for c in step)[:20].strip("-") or "tuning"
    return f"{base}-{hashlib.sha256(f'{execution_id}/{step}'.encode()).hexdigest()[:11]}"


def training_request(s: Spec, tuned: dict[str, str], job_name: str) -> dict[str, Any]:
    """The CreateTrainingJob request of one job of the tuning job, with ``_tuning_objective_metric`` as on AWS
    (an image that rejects it fails each job here as there; the precheck warns before the run)."""
    d = s.definition
    hps = {**{str(k): str(v) for k, v in (d.get("StaticHyperParameters") or {}).items()}, **tuned,
           RESERVED: s.objective}
    request: dict[str, Any] = {
        "AlgorithmSpecification": d["AlgorithmSpecification"],
        "HyperParameters": hps,
        "InputDataConfig": d.get("InputDataConfig") or [],
        "OutputDataConfig": d["OutputDataConfig"],
        "ResourceConfig": d.get("ResourceConfig") or {"InstanceCount": 1},
        "StoppingCondition": d.get("StoppingCondition") or {},
        "Environment": d.get("Environment") or {},
    }
    if (d.get("CheckpointConfig") or {}).get("S3Uri"):
        # locally each job keeps its own checkpoints (jobs run side by side)
        cfg = dict(d["CheckpointConfig"])
        cfg["S3Uri"] = f"{str(cfg['S3Uri']).rstrip('/')}/{job_name}"
        request["CheckpointConfig"] = cfg
    return request


def run_tuning(ctx: JobContext, args: dict[str, Any], *, execution_id: str, machine_parallel: int) -> dict[str, Any]:
    s = spec(args)
    name = tuning_job_name(ctx.step, execution_id)
    seed = s.seed if s.seed is not None else int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    searcher = search.searcher(s.strategy, s.space, s.max_jobs, seed, s.direction)
    jobs: list[dict[str, str]] = []  # each job's values, asked for when it starts (Bayesian learns meanwhile)
    parallel = max(1, min(s.max_parallel, machine_parallel))
    ctx.log(f"[rosetta] tuning job {name}: {s.strategy}, {searcher.total} training job(s), {parallel} at a time"
            + (f" (MaxParallelTrainingJobs {s.max_parallel}, bounded by this machine)" if parallel < s.max_parallel
               else "") + f", objective {s.direction} {s.objective}")
    if s.strategy == "Hyperband":
        ctx.log(f"[rosetta] the Hyperband strategy runs as Random locally (seed {seed}): SageMaker's search "
                "would choose other values, and may find another best job")
    elif s.strategy == "Bayesian":
        ctx.log(f"[rosetta] Bayesian search through Optuna's TPE sampler (seed {seed}); SageMaker's own search "
                "would choose other values, and may find another best job")
    started = time.monotonic()
    created = dt.datetime.now(dt.UTC).isoformat()
    results: list[dict[str, Any] | None] = [None] * searcher.total
    stop = threading.Event()
    lock = threading.Lock()

    def one(i: int) -> None:
        job = f"{name}-{i + 1:03d}-{hashlib.sha256(f'{name}/{i}'.encode()).hexdigest()[:8]}"
        tag = f"[{i + 1:03d}] "
        sub = JobContext(step=ctx.step, job_name=job, workdir=ctx.workdir / job, store=ctx.store,
                         log=lambda line: ctx.log(tag + line), models=ctx.models)
        sub.workdir.mkdir(parents=True, exist_ok=True)
        t0 = dt.datetime.now(dt.UTC).isoformat()
        ctx.log(f"{tag}[rosetta] {job}: " + ", ".join(f"{k}={v}" for k, v in jobs[i].items()))
        entry: dict[str, Any] = {"TrainingJobName": job, "TunedHyperParameters": jobs[i], "TrainingStartTime": t0}
        try:
            props = run_training(sub, training_request(s, jobs[i], job))
            entry.update(TrainingJobStatus="Completed", FinalMetricDataList=props["FinalMetricDataList"],
                         ModelArtifacts=props["ModelArtifacts"])
        except StepFailed as exc:
            entry.update(TrainingJobStatus="Failed", FailureReason=exc.reason, FinalMetricDataList=[])
        entry["TrainingEndTime"] = dt.datetime.now(dt.UTC).isoformat()
        value = next((m["Value"] for m in entry["FinalMetricDataList"] if m["MetricName"] == s.objective), None)
        entry["ObjectiveValue"] = value
        shown = f"{s.objective}={value:g}" if value is not None else entry.get("FailureReason") or \
            f"completed without the objective metric {s.objective}"
        ctx.log(f"{tag}[rosetta] {job}: {entry['TrainingJobStatus']}, {shown}")
        with lock:
            results[i] = entry
            searcher.tell(i, value)
            if value is not None and s.target is not None and _better_or_equal(value, s.target, s.direction):
                ctx.log(f"[rosetta] TargetObjectiveMetricValue {s.target:g} reached: no further job starts")
                stop.set()

    with ThreadPoolExecutor(parallel, thread_name_prefix="tuning") as pool:
        running: set[Future[None]] = set()
        for i in range(searcher.total):
            if stop.is_set() or (s.max_runtime and time.monotonic() - started > s.max_runtime):
                break
            if len(running) >= parallel:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()
                if stop.is_set() or (s.max_runtime and time.monotonic() - started > s.max_runtime):
                    break
            with lock:  # a model-based searcher asks with every result told so far
                jobs.append(searcher.next(i))
            running.add(pool.submit(one, i))
        for f in running:
            f.result()
    ran = [r for r in results if r is not None]
    return _describe(ctx, s, name, created, ran, dict(args.get("HyperParameterTuningJobConfig") or {}))


def _better_or_equal(value: float, target: float, direction: str) -> bool:
    return value <= target if direction == "Minimize" else value >= target


def _summary(s: Spec, name: str, r: dict[str, Any], created: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "TrainingJobName": r["TrainingJobName"],
        "TrainingJobArn": f"arn:aws:sagemaker:local:000000000000:training-job/{r['TrainingJobName']}",
        "TuningJobName": name, "CreationTime": created, "TrainingStartTime": r["TrainingStartTime"],
        "TrainingEndTime": r["TrainingEndTime"], "TrainingJobStatus": r["TrainingJobStatus"],
        "TunedHyperParameters": r["TunedHyperParameters"],
        "ObjectiveStatus": "Succeeded" if r["ObjectiveValue"] is not None else "Failed",
    }
    if r["ObjectiveValue"] is not None:
        out["FinalHyperParameterTuningJobObjectiveMetric"] = {"Type": s.direction, "MetricName": s.objective,
                                                              "Value": r["ObjectiveValue"]}
    if r.get("FailureReason"):
        out["FailureReason"] = r["FailureReason"]
    return out


def _describe(ctx: JobContext, s: Spec, name: str, created: str, ran: list[dict[str, Any]],
              config: dict[str, Any]) -> dict[str, Any]:
    scored = [r for r in ran if r["ObjectiveValue"] is not None]
    sign = 1.0 if s.direction == "Minimize" else -1.0
    order = sorted(scored, key=lambda r: sign * float(r["ObjectiveValue"])) + [r for r in ran if r not in scored]
    summaries = [_summary(s, name, r, created) for r in order]
    if not scored:
        first = next((r.get("FailureReason") for r in ran if r.get("FailureReason")), None)
        raise StepFailed(ctx.step, f"no training job of tuning job {name} reported the objective metric "
                                   f"{s.objective} ({len(ran)} ran)" + (f"; first failure: {first}" if first else ""),
                         details=json.dumps(summaries, indent=2))
    failed = sum(1 for r in ran if r["TrainingJobStatus"] == "Failed")
    best = summaries[0]
    ctx.log(f"[rosetta] best training job {best['TrainingJobName']}: {s.objective}="
            f"{best['FinalHyperParameterTuningJobObjectiveMetric']['Value']:g} with "
            + ", ".join(f"{k}={v}" for k, v in best["TunedHyperParameters"].items()))
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": f"arn:aws:sagemaker:local:000000000000:hyper-parameter-tuning-job/{name}",
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": s.definition,
        "HyperParameterTuningJobStatus": "Completed",
        "CreationTime": created,
        "HyperParameterTuningEndTime": dt.datetime.now(dt.UTC).isoformat(),
        "TrainingJobStatusCounters": {"Completed": len(ran) - failed, "InProgress": 0, "RetryableError": 0,
                                      "NonRetryableError": failed, "Stopped": 0},
        "ObjectiveStatusCounters": {"Succeeded": len(scored), "Pending": 0, "Failed": len(ran) - len(scored)},
        "BestTrainingJob": best,
        "TrainingJobSummaries": summaries[:TOP],
        "RosettaTrainingJobs": [{k: v for k, v in r.items() if k != "ObjectiveValue"} for r in ran],
    }


def machine_parallel(runner_parallel: int) -> int:
    """How many training jobs of one tuning job may run at once here."""
    return max(1, min(runner_parallel, os.cpu_count() or 1))
