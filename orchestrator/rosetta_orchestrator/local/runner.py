"""Interpret a pipeline definition JSON and run its steps with Docker, independent steps in parallel.

Steps start as soon as every step they depend on (``DependsOn`` and every ``Get: Steps.X…``
reference) has succeeded; a failed step stops new steps from starting (running ones finish), like
a SageMaker execution. Supported step types: Training, Processing, Model, Transform.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rosetta_orchestrator.local import container
from rosetta_orchestrator.local.context import JobContext, Models, StepFailed
from rosetta_orchestrator.local.expressions import ExpressionError, Resolver, step_refs
from rosetta_orchestrator.local.processing import run_processing
from rosetta_orchestrator.local.store import Store, StoreError
from rosetta_orchestrator.local.training import run_training
from rosetta_orchestrator.local.transform import run_transform

SUPPORTED = ("Training", "Processing", "Model", "Transform")


@dataclass
class StepResult:
    name: str
    type: str
    status: str = "NotStarted"  # Executing, Succeeded, Failed, NotStarted (skipped after a failure)
    image: str = ""
    seconds: float = 0.0
    properties: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    exit_code: int | None = None
    details: str = ""


@dataclass
class RunResult:
    pipeline: str
    execution_id: str
    status: str
    seconds: float
    steps: dict[str, StepResult]
    store: Store
    parameters: dict[str, Any]

    @property
    def failed(self) -> list[StepResult]:
        return [s for s in self.steps.values() if s.status == "Failed"]


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
    return values


def dependencies(definition: Mapping[str, Any]) -> dict[str, set[str]]:
    steps = definition.get("Steps") or []
    names = {s["Name"] for s in steps}
    deps: dict[str, set[str]] = {}
    for s in steps:
        d = set(s.get("DependsOn") or []) | step_refs(s.get("Arguments"))
        missing = d - names
        if missing:
            raise ValueError(f"step {s['Name']} depends on unknown step(s) {sorted(missing)}")
        deps[s["Name"]] = d
    # cycles would leave steps waiting forever: reject them up front
    done: set[str] = set()
    while len(done) < len(deps):
        ready = {n for n, d in deps.items() if n not in done and d <= done}
        if not ready:
            raise ValueError(f"dependency cycle among {sorted(set(deps) - done)}")
        done |= ready
    return deps


class LocalRunner:
    def __init__(self, definition: Mapping[str, Any], *, store: Store, workdir: Path, pipeline_name: str,
                 parameters: Mapping[str, str] | None = None, reporter: Reporter | None = None,
                 max_parallel: int = 4, ready_timeout: float = 180) -> None:
        self.definition = definition
        self.store = store
        self.workdir = workdir
        self.pipeline_name = pipeline_name
        self.parameters = coerce_parameters(list(definition.get("Parameters") or []), parameters or {})
        self.reporter: Reporter = reporter or QuietReporter()
        self.max_parallel = max_parallel
        self.ready_timeout = ready_timeout
        self.deps = dependencies(definition)
        for s in definition.get("Steps") or []:
            if s["Type"] not in SUPPORTED:
                raise ValueError(f"step {s['Name']}: type {s['Type']!r} is not supported by the local "
                                 f"runner (supported: {', '.join(SUPPORTED)})")

    def run(self) -> RunResult:
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
        steps = {s["Name"]: s for s in self.definition.get("Steps") or []}
        results = {n: StepResult(n, s["Type"]) for n, s in steps.items()}
        props: dict[str, Any] = {}
        resolver = Resolver(self.parameters, execution, props, self.store.read_text)
        models = Models()
        run_dir = self.workdir / execution_id
        pending = set(steps)
        failed = False
        futures: dict[Future[dict[str, Any]], str] = {}
        pool = ThreadPoolExecutor(max(1, self.max_parallel), thread_name_prefix="step")
        try:
            while pending or futures:
                if not failed:
                    succeeded = {n for n, r in results.items() if r.status == "Succeeded"}
                    for name in sorted(pending):
                        if self.deps[name] <= succeeded:
                            pending.discard(name)
                            results[name].status = "Executing"
                            futures[pool.submit(self._run_step, steps[name], results[name], resolver,
                                                models, run_dir, execution_id)] = name
                if not futures:
                    break
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in done:
                    name = futures.pop(fut)
                    self._settle(results[name], fut, props)
                    failed = failed or results[name].status == "Failed"
        except BaseException:
            # Ctrl-C: remove the containers first, so the step threads end instead of being waited for
            container.remove_all()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        container.wait_removals()
        status = "Failed" if failed else "Succeeded"
        return RunResult(self.pipeline_name, execution_id, status, time.monotonic() - started, results,
                         self.store, dict(self.parameters))

    def _settle(self, res: StepResult, fut: Future[dict[str, Any]], props: dict[str, Any]) -> None:
        try:
            props[res.name] = fut.result()
            res.properties = props[res.name]
            res.status = "Succeeded"
        except StepFailed as exc:
            res.status, res.reason, res.exit_code, res.details = "Failed", exc.reason, exc.exit_code, exc.details
        except (ExpressionError, StoreError, OSError, KeyError, ValueError, RuntimeError) as exc:
            res.status, res.reason = "Failed", f"{type(exc).__name__}: {exc}"
        self.reporter.finished(res)

    def _run_step(self, step: dict[str, Any], res: StepResult, resolver: Resolver, models: Models,
                  run_dir: Path, execution_id: str) -> dict[str, Any]:
        name = step["Name"]
        args = resolver.resolve(step.get("Arguments") or {})
        res.image = _image_of(step["Type"], args, models)
        ctx = JobContext(step=name, job_name=f"{name}-{execution_id}"[:63], workdir=run_dir / name,
                         store=self.store, log=lambda line: self.reporter.log(name, line), models=models)
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        self.reporter.started(res)
        t0 = time.monotonic()
        try:
            if step["Type"] == "Training":
                return run_training(ctx, args)
            if step["Type"] == "Processing":
                return run_processing(ctx, args, list(step.get("PropertyFiles") or []))
            if step["Type"] == "Transform":
                return run_transform(ctx, args, ready_timeout=self.ready_timeout)
            model_name = ctx.job_name  # Model: registered for the transforms of this run
            models.add(model_name, args.get("PrimaryContainer") or {})
            return {"ModelName": model_name, "PrimaryContainer": args.get("PrimaryContainer"),
                    "ExecutionRoleArn": args.get("ExecutionRoleArn")}
        finally:
            res.seconds = time.monotonic() - t0


def _image_of(kind: str, args: dict[str, Any], models: Models) -> str:
    try:
        if kind == "Training":
            return str(args["AlgorithmSpecification"]["TrainingImage"])
        if kind == "Processing":
            return str(args["AppSpecification"]["ImageUri"])
        if kind == "Model":
            return str(args["PrimaryContainer"]["Image"])
        return str(models.get(args["ModelName"])["Image"])
    except KeyError:
        return ""
