"""Interpret a pipeline definition JSON and run its steps with Docker, independent steps in parallel.

Steps start as soon as every step they depend on (``DependsOn`` and every ``Get: Steps.X…``
reference) has succeeded and, inside a condition's branch, once the condition chose that branch.
The other branch's steps, and every step that depends on a step that did not run, are reported
"not run". A failed step (or a Fail step) stops new steps from starting (running ones finish), like
a SageMaker execution. ``CacheConfig`` reuses earlier successful runs, ``RetryPolicies`` retry
internal faults, and a resumed execution re-runs only its failed and not-started steps.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rosetta_orchestrator.local import cache, container, tuning
from rosetta_orchestrator.local.conditions import ConditionError
from rosetta_orchestrator.local.context import JobContext, Models, StepFailed
from rosetta_orchestrator.local.control import (
    FailStepReached,
    run_condition,
    run_fail,
    run_model,
    run_register,
)
from rosetta_orchestrator.local.expressions import ExpressionError, Resolver
from rosetta_orchestrator.local.plan import SUPPORTED, DefinitionError, Plan, PlannedStep, build_plan
from rosetta_orchestrator.local.processing import run_processing
from rosetta_orchestrator.local.registry import Registry, RegistryError
from rosetta_orchestrator.local.retry import with_retries
from rosetta_orchestrator.local.store import Store, StoreError
from rosetta_orchestrator.local.training import run_training
from rosetta_orchestrator.local.transform import run_transform
from rosetta_orchestrator.local.tuning import run_tuning

__all__ = ["SUPPORTED", "DefinitionError", "LocalRunner", "RunResult", "StepResult", "coerce_parameters"]


@dataclass
class StepResult:
    name: str
    type: str
    #: Executing, Succeeded, Failed, NotStarted (after a failure), NotRun (its branch was not taken)
    status: str = "NotStarted"
    image: str = ""
    seconds: float = 0.0
    properties: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    exit_code: int | None = None
    details: str = ""
    #: the earlier execution whose outputs a cache hit reused (CacheConfig)
    cached_from: str = ""
    #: --resume: the execution whose successful run of this step is kept
    reused_from: str = ""
    attempts: int = 0
    #: "Check:if" / "Check:else" for a step inside a condition's branch
    branch: str = ""
    #: "definition" when the step failed because the definition is wrong (a bad Get, JsonGet…)
    error_kind: str = ""


@dataclass
class RunResult:
    pipeline: str
    execution_id: str
    status: str
    seconds: float
    steps: dict[str, StepResult]
    store: Store
    parameters: dict[str, Any]
    #: why the execution failed: the Fail step's message, or the first failed step's reason
    failure_reason: str = ""
    workdir: Path | None = None

    @property
    def failed(self) -> list[StepResult]:
        return [s for s in self.steps.values() if s.status == "Failed"]

    @property
    def definition_errors(self) -> list[StepResult]:
        return [s for s in self.failed if s.error_kind == "definition"]

    def to_json(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "execution_id": self.execution_id, "status": self.status,
                "failure_reason": self.failure_reason, "seconds": self.seconds, "parameters": self.parameters,
                "steps": {n: {k: v for k, v in asdict(s).items() if k != "name"} for n, s in self.steps.items()}}


class Reporter(Protocol):
    def started(self, step: StepResult) -> None: ...
    def log(self, step: str, line: str) -> None: ...
    def finished(self, step: StepResult) -> None: ...


class QuietReporter:
    """Collects log lines per step (tests, benchmarks)."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def started(self, step: StepResult) -> None:
        pass

    def log(self, step: str, line: str) -> None:
        with self._lock:
            self.lines.setdefault(step, []).append(line)

    def finished(self, step: StepResult) -> None:
        pass


def coerce_parameters(declared: list[dict[str, Any]], overrides: Mapping[str, str]) -> dict[str, Any]:
    """Defaults from the definition, overridden by strings given on the command line."""
    kinds: dict[str, Callable[[str], Any]] = {
        "Integer": int, "Float": float, "String": str,
        "Boolean": lambda v: v.strip().lower() in ("true", "1", "yes")}
    values: dict[str, Any] = {}
    for p in declared:
        values[p["Name"]] = p.get("DefaultValue")
    unknown = set(overrides) - set(values)
    if unknown:
        raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}; declared: {', '.join(values)}")
    for p in declared:
        if p["Name"] in overrides:
            raw = overrides[p["Name"]]
            try:
                values[p["Name"]] = kinds.get(p.get("Type", "String"), str)(raw)
            except ValueError:
                raise ValueError(f"parameter {p['Name']}: {raw!r} is not a valid {p.get('Type')}") from None
        elif values[p["Name"]] is None:
            raise ValueError(f"parameter {p['Name']} has no default: give --param {p['Name']}=VALUE")
        if p.get("EnumValues") and values[p["Name"]] not in p["EnumValues"]:
            raise ValueError(f"parameter {p['Name']}: {values[p['Name']]!r} is not one of {p['EnumValues']}")
    return values


def dependencies(definition: Mapping[str, Any]) -> dict[str, set[str]]:
    """Every step's dependencies, a branch step depending on its condition (graphs use this)."""
    plan = build_plan(definition)
    return {n: s.deps | ({s.gate[0]} if s.gate else set()) for n, s in plan.steps.items()}


def load_execution(workdir: Path, execution_id: str) -> dict[str, Any]:
    """The saved ``result.json`` of an earlier execution (for ``--resume``)."""
    path = workdir / execution_id / "result.json"
    if not path.is_file():
        known = sorted(p.parent.name for p in workdir.glob("*/result.json"))[-5:]
        raise ValueError(f"no execution {execution_id} in {workdir} (latest: {', '.join(known) or 'none'}); "
                         "pass the same --workdir as the run you resume")
    return dict(json.loads(path.read_text()))


class LocalRunner:
    def __init__(self, definition: Mapping[str, Any], *, store: Store, workdir: Path, pipeline_name: str,
                 parameters: Mapping[str, str] | None = None, reporter: Reporter | None = None,
                 max_parallel: int = 4, ready_timeout: float = 180, use_cache: bool = True,
                 resume: Mapping[str, Any] | None = None, image_id: Callable[[str], str] | None = None) -> None:
        self.definition = definition
        self.plan: Plan = build_plan(definition)
        self.store = store
        self.workdir = workdir
        self.pipeline_name = pipeline_name
        self.resume = dict(resume) if resume else None
        if self.resume:
            if parameters:
                raise ValueError("--resume runs with the parameters of the execution it resumes; drop --param")
            self.parameters = dict(self.resume.get("parameters") or {})
        else:
            self.parameters = coerce_parameters(self.plan.parameters, parameters or {})
        self.reporter: Reporter = reporter or QuietReporter()
        self.max_parallel = max_parallel
        self.ready_timeout = ready_timeout
        self.use_cache = use_cache
        self.registry = Registry(store)
        self._image_id = image_id or _engine_image_id
        self._stop = threading.Event()

    # -- the execution ----------------------------------------------------------------------
    def run(self) -> RunResult:
        if self.resume:
            execution_id = str(self.resume["execution_id"])
        else:
            execution_id = dt.datetime.now().strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:8]
        started = time.monotonic()
        now = dt.datetime.now(dt.UTC).isoformat()
        execution = {
            "PipelineExecutionId": execution_id,
            "PipelineName": self.pipeline_name,
            "PipelineExecutionArn": f"arn:aws:sagemaker:local:000000000000:pipeline/{self.pipeline_name}"
                                    f"/execution/{execution_id}",
            "StartDateTime": now, "CurrentDateTime": now, "PipelineExecutionDisplayName": execution_id,
        }
        steps = self.plan.steps
        results = {n: StepResult(n, s.type, branch=f"{s.gate[0]}:{'if' if s.gate[1] else 'else'}" if s.gate else "")
                   for n, s in steps.items()}
        props: dict[str, Any] = {}
        resolver = Resolver(self.parameters, execution, props, self.store.read_text)
        models = Models()
        run_dir = self.workdir / execution_id
        pending = set(steps)
        if self.resume:
            pending -= self._reuse(results, props, models)
        failed = False
        futures: dict[Future[dict[str, Any]], str] = {}
        pool = ThreadPoolExecutor(max(1, self.max_parallel), thread_name_prefix="step")
        try:
            while pending or futures:
                self._skip_unreachable(pending, results)
                if not failed:
                    succeeded = {n for n, r in results.items() if r.status == "Succeeded"}
                    for name in sorted(pending):
                        if self._ready(steps[name], succeeded, results):
                            pending.discard(name)
                            results[name].status = "Executing"
                            futures[pool.submit(self._run_step, steps[name], results[name], resolver,
                                                models, run_dir, execution)] = name
                if not futures:
                    break
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in done:
                    name = futures.pop(fut)
                    self._settle(results[name], fut, props)
                    failed = failed or results[name].status == "Failed"
        except BaseException:
            # Ctrl-C: remove the containers first, so the step threads end instead of being waited for
            self._stop.set()
            container.remove_all()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        container.wait_removals()
        status = "Failed" if failed else "Succeeded"
        result = RunResult(self.pipeline_name, execution_id, status, time.monotonic() - started, results,
                           self.store, dict(self.parameters), _failure_reason(results), run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "result.json").write_text(json.dumps(result.to_json(), indent=2, default=str))
        return result

    def _reuse(self, results: dict[str, StepResult], props: dict[str, Any], models: Models) -> set[str]:
        """--resume: keep the earlier execution's successful steps (RetryPipelineExecution)."""
        assert self.resume is not None
        kept: set[str] = set()
        for name, saved in (self.resume.get("steps") or {}).items():
            if name not in results or saved.get("status") != "Succeeded":
                continue
            res = results[name]
            res.status, res.properties = "Succeeded", dict(saved.get("properties") or {})
            res.image, res.seconds = saved.get("image", ""), 0.0
            res.reused_from = saved.get("reused_from") or str(self.resume["execution_id"])
            res.cached_from = saved.get("cached_from", "")
            props[name] = res.properties
            if res.type == "Model" and res.properties.get("PrimaryContainer"):
                models.add(str(res.properties["ModelName"]), dict(res.properties["PrimaryContainer"]))
            elif res.type == "Model" and res.properties.get("Containers"):  # an inference pipeline
                many = [dict(c) for c in res.properties["Containers"]]
                mode = (res.properties.get("InferenceExecutionConfig") or {}).get("Mode") or "Serial"
                models.add(str(res.properties["ModelName"]), {"Image": many[0]["Image"], "Containers": many,
                                                             "Mode": mode})
            kept.add(name)
            self.reporter.finished(res)
        return kept

    def _ready(self, step: PlannedStep, succeeded: set[str], results: dict[str, StepResult]) -> bool:
        if not step.deps <= succeeded:
            return False
        if step.gate:
            cond = results[step.gate[0]]
            return cond.status == "Succeeded" and cond.properties.get("Outcome") is step.gate[1]
        return True

    def _skip_unreachable(self, pending: set[str], results: dict[str, StepResult]) -> None:
        """Mark NotRun the steps of the branch not taken and everything that needs a step that did
        not run (SageMaker, like the SDK's local executor, blocks that whole sub-graph)."""
        changed = True
        while changed:
            changed = False
            for name in sorted(pending):
                step = self.plan.steps[name]
                reason = ""
                if step.gate:
                    cond = results[step.gate[0]]
                    if cond.status == "NotRun":
                        reason = f"not run ({cond.name} did not run)"
                    elif cond.status == "Succeeded" and cond.properties.get("Outcome") is not step.gate[1]:
                        reason = f"not run (condition {cond.name} was {'false' if step.gate[1] else 'true'})"
                skipped = [d for d in sorted(step.deps) if results[d].status == "NotRun"]
                if not reason and skipped:
                    reason = f"not run ({skipped[0]} did not run)"
                if reason:
                    pending.discard(name)
                    res = results[name]
                    res.status, res.reason = "NotRun", reason
                    self.reporter.finished(res)
                    changed = True

    def _settle(self, res: StepResult, fut: Future[dict[str, Any]], props: dict[str, Any]) -> None:
        try:
            props[res.name] = fut.result()
            res.properties = props[res.name]
            res.status = "Succeeded"
        except FailStepReached as exc:
            res.status, res.reason = "Failed", exc.reason
            res.properties = {"ErrorMessage": exc.reason}
        except StepFailed as exc:
            res.status, res.reason, res.exit_code, res.details = "Failed", exc.reason, exc.exit_code, exc.details
        except (ExpressionError, ConditionError, RegistryError, DefinitionError) as exc:
            res.status, res.reason, res.error_kind = "Failed", str(exc), "definition"
        except (StoreError, OSError, KeyError, ValueError, RuntimeError) as exc:
            res.status, res.reason = "Failed", f"{type(exc).__name__}: {exc}"
        self.reporter.finished(res)

    # -- one step ---------------------------------------------------------------------------
    def _run_step(self, step: PlannedStep, res: StepResult, resolver: Resolver, models: Models,
                  run_dir: Path, execution: dict[str, Any]) -> dict[str, Any]:
        name, kind = step.name, step.type
        execution_id = str(execution["PipelineExecutionId"])
        raw = step.definition.get("Arguments") or {}
        if kind == "Condition":
            raw = {"Conditions": raw.get("Conditions") or []}
        args = resolver.resolve(raw)
        res.image = _image_of(kind, args, models)
        ctx = JobContext(step=name, job_name=f"{name}-{execution_id}"[:63], workdir=run_dir / name,
                         store=self.store, log=lambda line: self.reporter.log(name, line), models=models)
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        self.reporter.started(res)
        t0 = time.monotonic()
        try:
            if kind == "Condition":
                return run_condition(ctx, args)
            if kind == "Fail":
                return run_fail(ctx, args)
            if kind == "Model":
                return run_model(ctx, args, self.registry)
            if kind == "RegisterModel":
                return run_register(ctx, args, self.registry, {
                    "pipeline": self.pipeline_name, "execution_id": execution_id, "step": name,
                    "execution_arn": str(execution["PipelineExecutionArn"])})
            return self._run_job(step, res, ctx, args, execution_id)
        finally:
            res.seconds = time.monotonic() - t0

    def _run_job(self, step: PlannedStep, res: StepResult, ctx: JobContext, args: dict[str, Any],
                 execution_id: str) -> dict[str, Any]:
        kind = step.type
        setting = cache.CacheSetting.of(step.definition)
        key = ""
        if setting.enabled and self.use_cache:
            model = ctx.models.get(args["ModelName"]) if kind == "Transform" else None
            key = cache.key(kind, args, store=self.store, image_id=self._image_id, model=model)
            entry, why = cache.lookup(self.store, self.pipeline_name, step.name, key, setting, kind)
            if entry is not None:
                res.cached_from = str(entry["execution_id"])
                ctx.log(f"[rosetta] cache hit: reusing the outputs of execution {res.cached_from} "
                        f"({cache.cache_uri(self.pipeline_name, step.name, key)})")
                return dict(entry["properties"])
            ctx.log(f"[rosetta] cache {why}: running the step")

        def once() -> dict[str, Any]:
            if kind == "Training":
                return run_training(ctx, args)
            if kind == "Tuning":
                return run_tuning(ctx, args, execution_id=execution_id,
                                  machine_parallel=tuning.machine_parallel(self.max_parallel))
            if kind == "Processing":
                return run_processing(ctx, args, list(step.definition.get("PropertyFiles") or []))
            return run_transform(ctx, args, ready_timeout=self.ready_timeout)

        def attempts(n: int) -> None:
            res.attempts = n

        props = with_retries(once, list(step.definition.get("RetryPolicies") or []), log=ctx.log,
                             attempts=attempts, wait=lambda s: not self._stop.wait(s))
        if key:
            cache.save(self.store, self.pipeline_name, step.name, key, execution_id, props)
        return props


def _image_of(kind: str, args: dict[str, Any], models: Models) -> str:
    try:
        if kind == "Training":
            return str(args["AlgorithmSpecification"]["TrainingImage"])
        if kind == "Processing":
            return str(args["AppSpecification"]["ImageUri"])
        if kind == "Model":
            c = args.get("PrimaryContainer") or (args.get("Containers") or [{}])[0]
            return str(c.get("Image") or c.get("ModelPackageName") or "")
        if kind == "RegisterModel":
            return str(args["InferenceSpecification"]["Containers"][0]["Image"])
        if kind == "Transform":
            return str(models.get(args["ModelName"])["Image"])
        if kind == "Tuning":
            return str(args["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"])
    except (KeyError, IndexError):
        pass
    return ""


def _failure_reason(results: dict[str, StepResult]) -> str:
    fails = [r for r in results.values() if r.status == "Failed" and r.type == "Fail"]
    if fails:
        return fails[0].reason
    failed = [r for r in results.values() if r.status == "Failed"]
    return f"step {failed[0].name} failed: {failed[0].reason}" if failed else ""


def _engine_image_id(image: str) -> str:
    from sagemaker_rosetta import local_images

    return local_images.image_id(image)
