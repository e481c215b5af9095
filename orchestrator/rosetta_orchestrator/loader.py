"""Load what ``rosetta pipeline …`` is given: any of three forms, one :class:`Source`.

(a) a Rosetta pipeline file: ``def pipeline() -> rosetta_orchestrator.Pipeline`` or a
    module-level ``pipeline``;
(b) any Python file whose module-level ``pipeline`` (or ``pipeline()``) is a SageMaker SDK
    ``Pipeline`` built with the SDK's own classes;
(c) a definition JSON as SageMaker stores it: the definition itself, or the output of
    ``aws sagemaker describe-pipeline-definition`` / ``describe-pipeline`` (``PipelineDefinition``
    as a JSON string).

The Python forms are always built offline (see :func:`rosetta_orchestrator.sdk.offline_build`):
zero network calls; the uploads the SDK makes while it builds are captured, for the local run to
stage or for ``upsert`` to upload.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from rosetta_orchestrator.api import BASE_DIR, ROLE, Pipeline, runtime_of
from rosetta_orchestrator.sdk import LOCAL_ACCOUNT, offline_build, offline_env


class LoadError(RuntimeError):
    """The file does not give a usable pipeline; the message says why and what to do."""


@dataclass
class Source:
    """A pipeline in whichever form it came: its name, definition and what a local run needs."""

    path: Path
    kind: str  # "rosetta", "sdk" or "json"
    name: str
    definition: dict[str, Any]
    #: S3 URI → local file or folder to put there before a run
    assets: dict[str, Path] = field(default_factory=dict)
    runtimes: dict[str, str] = field(default_factory=dict)
    module: ModuleType | None = None
    pipeline: Pipeline | None = None
    sdk_pipeline: Any = None
    description: str = ""
    role: str | None = None


def load(path: str | Path) -> Pipeline:
    """A Rosetta pipeline file's :class:`Pipeline` (form a only)."""
    source = load_source(path)
    if source.pipeline is None:
        raise LoadError(f"{source.path.name} holds a {source.kind} pipeline, not a rosetta_orchestrator.Pipeline")
    return source.pipeline


def load_module(path: str | Path) -> tuple[Pipeline, ModuleType]:
    source = load_source(path)
    if source.pipeline is None or source.module is None:
        raise LoadError(f"{source.path.name} holds a {source.kind} pipeline, not a rosetta_orchestrator.Pipeline")
    return source.pipeline, source.module


def load_source(path: str | Path, *, account: str | Callable[[], str] = LOCAL_ACCOUNT, name: str | None = None,
                role: str | None = None) -> Source:
    """Load any of the three forms, building without network (the SDK's uploads are captured into
    ``Source.assets``); ``account`` names the SDK's default bucket (``upsert`` passes the real
    account); ``role`` is the execution role of a Rosetta pipeline that does not name its own."""
    file = Path(path).resolve()
    if not file.is_file():
        raise LoadError(f"no pipeline file {file}")
    if file.suffix.lower() == ".json":
        return _from_json(file, name)
    token = ROLE.set(role) if role else None
    try:
        return _from_python(file, account, name)
    finally:
        if token is not None:
            ROLE.reset(token)


def _from_json(file: Path, name: str | None) -> Source:
    try:
        doc = json.loads(file.read_text())
    except ValueError as exc:
        raise LoadError(f"{file.name} is not JSON: {exc}") from None
    pipeline_name = name
    if isinstance(doc, dict) and "PipelineDefinition" in doc:  # describe-pipeline(-definition) output
        pipeline_name = pipeline_name or doc.get("PipelineName")
        inner = doc["PipelineDefinition"]
        try:
            doc = json.loads(inner) if isinstance(inner, str) else inner
        except ValueError as exc:
            raise LoadError(f"{file.name}: PipelineDefinition is not a JSON string: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("Steps"), list):
        raise LoadError(f"{file.name} is not a pipeline definition: expected an object with \"Version\", "
                        "\"Parameters\" and \"Steps\" (or describe-pipeline-definition output)")
    pipeline_name = pipeline_name or file.stem
    return Source(file, "json", pipeline_name, doc, runtimes=runtimes_of(doc))


@contextmanager
def _base_dir(folder: Path) -> Iterator[None]:
    token = BASE_DIR.set(folder)
    try:
        yield
    finally:
        BASE_DIR.reset(token)


def _user_error(file: Path, exc: BaseException) -> LoadError:
    """One line: where in the user's file the exception came from, and what it says."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == file]
    where = f"{file.name}:{frames[-1].lineno}" if frames else file.name
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    err = LoadError(f"{where}: {type(exc).__name__}: {message} (fix the pipeline file; --debug shows the traceback)")
    err.__cause__ = exc
    return err


def _from_python(file: Path, account: str | Callable[[], str], name: str | None) -> Source:
    offline_env()
    uploads: dict[str, Path] = {}
    module_name = f"rosetta_pipeline_{abs(hash(str(file)))}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot import {file} as Python (a definition must end in .json)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    with _base_dir(file.parent), offline_build(uploads, account):
        try:
            spec.loader.exec_module(module)
            found = getattr(module, "pipeline", None)
            if callable(found) and not _is_pipeline(found):
                found = found()
        except LoadError:
            raise
        except Exception as exc:
            raise _user_error(file, exc) from exc
        if isinstance(found, Pipeline):
            try:
                definition = found.definition_dict()
            except Exception as exc:
                raise _user_error(file, exc) from exc
            assets = {**found.assets, **uploads}
            return Source(file, "rosetta", name or found.name, definition, assets, found.runtimes(), module,
                          pipeline=found, description=found.description, role=found.role)
        if found is not None and _is_sdk_pipeline(found):
            try:
                definition = json.loads(found.definition())
            except Exception as exc:
                raise _user_error(file, exc) from exc
            return Source(file, "sdk", name or str(found.name), definition, dict(uploads), runtimes_of(definition),
                          module, sdk_pipeline=found, role=None)
    raise LoadError(f"{file.name} must define `pipeline` (or `def pipeline()`) as a rosetta_orchestrator.Pipeline "
                    f"or a SageMaker SDK Pipeline (got {type(found).__name__})")


def _is_pipeline(obj: Any) -> bool:
    return isinstance(obj, Pipeline) or _is_sdk_pipeline(obj)


def _is_sdk_pipeline(obj: Any) -> bool:
    try:
        from sagemaker.mlops.workflow.pipeline import Pipeline as SdkPipeline
    except ImportError:
        return False
    return isinstance(obj, SdkPipeline)


def runtimes_of(definition: dict[str, Any]) -> dict[str, str]:
    """Each step's runtime guessed from its image (parameter defaults resolved), branches included."""
    from rosetta_orchestrator.local.plan import DefinitionError, build_plan
    from rosetta_orchestrator.local.precheck import images

    params = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters") or [] if isinstance(p, dict)}
    try:
        plan = build_plan(definition)
    except DefinitionError:
        return {}
    out = {n: "other" for n in plan.steps}
    for image, steps in images(plan, params).items():
        for s in steps:
            out[s] = runtime_of(image)
    return out
