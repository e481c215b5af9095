"""What a step executor gets: its name, a work folder, the store, a log sink, the run's models."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosetta_orchestrator.local.container import LogFn
from rosetta_orchestrator.local.store import Store


class StepFailed(RuntimeError):
    """A step failed; ``reason`` is what the user needs first (e.g. the failure file's first line)."""

    def __init__(self, step: str, reason: str, *, exit_code: int | None = None, details: str = "") -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason
        self.exit_code = exit_code
        self.details = details


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
