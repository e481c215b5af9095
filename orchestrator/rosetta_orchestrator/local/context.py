"""What a step executor gets: its name, a work folder, the store, a log sink, the run's models."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosetta_orchestrator.local.container import LogFn
from rosetta_orchestrator.local.store import Store

#: failures that are not the job's own: the engine could not run the container, or the container
#: was killed from outside (like a lost instance). SageMaker's retry policies name these
#: Step.SERVICE_FAULT and SageMaker.JOB_INTERNAL_ERROR; nothing maps to THROTTLING, CAPACITY_ERROR
#: or RESOURCE_LIMIT locally.
INTERNAL = "internal"


class StepFailed(RuntimeError):
    """A step failed; ``reason`` is what the user needs first (e.g. the failure file's first line).

    ``fault`` is ``"internal"`` for a failure a retry may fix (see :data:`INTERNAL`), else
    ``"job"`` (the job's own code or configuration: never retried, as on SageMaker)."""

    def __init__(self, step: str, reason: str, *, exit_code: int | None = None, details: str = "",
                 fault: str = "job") -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason
        self.exit_code = exit_code
        self.details = details
        self.fault = fault


def exit_failure(step: str, code: int, seconds: float, max_runtime: float | None, tail: str) -> StepFailed | None:
    """A StepFailed for a container exit that is not the job's own failure, else None.

    125: the engine could not create or start the container (``docker run``'s code); 137 before
    MaxRuntimeInSeconds: SIGKILL from outside the job (engine restart, ``docker kill``, the
    kernel's OOM killer): both are internal faults a retry may fix."""
    if code == 125:
        return StepFailed(step, f"the container engine could not run the job: {tail or 'exit 125'}",
                          exit_code=code, fault=INTERNAL)
    if max_runtime and seconds >= max_runtime:
        return StepFailed(step, f"stopped after MaxRuntimeInSeconds={max_runtime:g} (exit {code})", exit_code=code)
    if code == 137:
        return StepFailed(step, "the container was killed from outside the job (SIGKILL: engine, docker kill "
                                "or the out-of-memory killer)", exit_code=code, fault=INTERNAL)
    return None


@dataclass
class Models:
    """CreateModel results of this run: ModelName → resolved ``PrimaryContainer``."""

    by_name: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, container: dict[str, Any]) -> None:
        with self.lock:
            self.by_name[name] = container

    def get(self, name: str) -> dict[str, Any]:
        with self.lock:
            if name not in self.by_name:
                raise KeyError(name)
            return self.by_name[name]


@dataclass
class JobContext:
    step: str
    job_name: str
    workdir: Path
    store: Store
    log: LogFn
    models: Models
