"""Load a pipeline file: ``def pipeline() -> Pipeline`` or a module-level ``pipeline``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from rosetta_orchestrator.api import Pipeline
from rosetta_orchestrator.sdk import offline_env


class LoadError(RuntimeError):
    """The file does not define a usable pipeline; the message says why."""


def load(path: str | Path) -> Pipeline:
    return load_module(path)[0]


def load_module(path: str | Path) -> tuple[Pipeline, ModuleType]:
    """The pipeline and its module (which may define ``report(result, console)``)."""
    file = Path(path).resolve()
    if not file.is_file():
        raise LoadError(f"no pipeline file {file}")
    offline_env()
    name = f"rosetta_pipeline_{abs(hash(str(file)))}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    found = getattr(module, "pipeline", None)
    if callable(found) and not isinstance(found, Pipeline):
        found = found()
    if not isinstance(found, Pipeline):
        raise LoadError(f"{file.name} must define `def pipeline() -> rosetta_orchestrator.Pipeline` "
                        f"or a module-level `pipeline` (got {type(found).__name__})")
    return found, module
