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
stage or for ``upsert`` to upload. Given a :class:`~rosetta_orchestrator.defcache.DefinitionCache`,
a Python file's build is reused while nothing it read changed, without importing the SDK.
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
from rosetta_orchestrator.defcache import DefinitionCache, recording
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
    #: when the definition came from the definition cache: the time of the build it reuses
    cached_build: str = ""
    #: why the definition cache was not used (empty after a hit, or without a cache)
    cache_miss: str = ""


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
                role: str | None = None, cache: DefinitionCache | None = None, refresh: bool = False) -> Source:
    """Load any of the three forms, building without network (the SDK's uploads are captured into
    ``Source.assets``); ``account`` names the SDK's default bucket (``upsert`` passes the real
    account); ``role`` is the execution role of a Rosetta pipeline that does not name its own.

    ``cache``: reuse the stored build of a Python file while nothing it read changed (see
    :mod:`rosetta_orchestrator.defcache`; not for a callable ``account``, whose answer is not known
    before the build); ``refresh`` builds anyway and stores the new build. A reused build gives no
    ``pipeline``/``sdk_pipeline`` objects, and its ``module`` imports the file again (without calling
    ``pipeline()``) only when an attribute such as ``report`` is asked for."""
    file = Path(path).resolve()
    if not file.is_file():
        raise LoadError(f"no pipeline file {file}")
    if file.suffix.lower() == ".json":
        return _from_json(file, name)
    if cache is not None and (callable(account) or account != LOCAL_ACCOUNT):
        cache = None
    key = ""
    miss = ""
    if cache is not None:
        offline_env()  # the environment a build sees, so that a lookup compares the same values
        key = cache.key(file, {"role": role, "account": account})
        hit = None if refresh else cache.get(key)
        if hit is not None:
            return _from_hit(file, hit.entry, hit.assets, hit.created, name)
        miss = "--no-cache" if refresh else cache.miss_reason
    token = ROLE.set(role) if role else None
    try:
        if cache is None:
            return _from_python(file, account, name).source
        with recording() as rec:
            built = _from_python(file, account, name)
        rec.watched.update(_sdk_config_files())
        built.source.cache_miss = miss
        _store(cache, key, file, built, rec.deps())
        return built.source
    finally:
        if token is not None:
            ROLE.reset(token)


def _sdk_config_files() -> list[str]:
    """The SDK's default admin and user config files (``config.yaml``): a build reads them only when they
    exist, so one that appears later must make the next load build again."""
    config = sys.modules.get("sagemaker.core.config.config")
    names = ("_DEFAULT_USER_CONFIG_FILE_PATH", "_DEFAULT_ADMIN_CONFIG_FILE_PATH")
    return [str(p) for p in (getattr(config, n, None) for n in names) if isinstance(p, str) and p]


def _store(cache: DefinitionCache, key: str, file: Path, built: _Built, deps: dict[str, Any]) -> None:
    """Keep a build for the next load; a cache that cannot be written only costs the next load a build."""
    s = built.source
    fields = {"kind": s.kind, "name": s.name, "definition": s.definition, "runtimes": s.runtimes,
              "description": s.description, "role": s.role, "report": built.report}
    try:
        cache.put(key, file, fields, s.assets, built.captured, deps)
    except OSError as exc:
        print(f"warning: the definition cache {cache.root} cannot be written ({exc}); every run builds again",
              file=sys.stderr)


def _from_hit(file: Path, entry: dict[str, Any], assets: dict[str, Path], created: str, name: str | None) -> Source:
    report = str(entry.get("report") or "")
    module = _ReportModule(file, heavy=report == "build") if report else None
    return Source(file, str(entry["kind"]), name or str(entry["name"]), entry["definition"], assets,
                  dict(entry.get("runtimes") or {}), module, description=str(entry.get("description") or ""),
                  role=entry.get("role"), cached_build=created or "?")


class _ReportModule(ModuleType):
    """The pipeline file's module after a cached build: imported again (its top level, not ``pipeline()``)
    the first time an attribute is asked for, i.e. when the run is over and ``report`` is looked up.
    ``heavy``: the module builds its pipeline at import (a module-level ``pipeline``), so it is imported
    under the offline build like the first time (that imports the SDK)."""

    def __init__(self, file: Path, *, heavy: bool) -> None:
        super().__init__(f"rosetta_pipeline_{abs(hash(str(file)))}")
        self.__file__ = str(file)
        self._rosetta = (file, heavy)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        loaded = self.__dict__.get("_rosetta_module")
        if loaded is None:
            file, heavy = self._rosetta
            try:
                loaded = _import_again(file, heavy)
            except Exception as exc:
                print(f"warning: {file.name}: cannot import it for {attr}: {type(exc).__name__}: {exc}",
                      file=sys.stderr)
                loaded = ModuleType(self.__name__)
            self.__dict__["_rosetta_module"] = loaded
        return getattr(loaded, attr)


def _import_again(file: Path, heavy: bool) -> ModuleType:
    offline_env()
    spec = importlib.util.spec_from_file_location(f"rosetta_pipeline_{abs(hash(str(file)))}", file)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    with _base_dir(file.parent):
        if heavy:
            with offline_build({}, LOCAL_ACCOUNT):
                spec.loader.exec_module(module)
        else:
            spec.loader.exec_module(module)
    return module


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


@dataclass
class _Built:
    source: Source
    #: the SDK's uploads (S3 URI → temporary copy): stored with a cached build
    captured: dict[str, Path]
    #: "" (no report hook), "module" (importing the file is enough) or "build" (importing it builds)
    report: str


def _from_python(file: Path, account: str | Callable[[], str], name: str | None) -> _Built:
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
            built_at_import = True
            if callable(found) and not _is_pipeline(found):
                built_at_import = False
                found = found()
        except LoadError:
            raise
        except Exception as exc:
            raise _user_error(file, exc) from exc
        report = ("build" if built_at_import else "module") if callable(getattr(module, "report", None)) else ""
        if isinstance(found, Pipeline):
            try:
                definition = found.definition_dict()
            except Exception as exc:
                raise _user_error(file, exc) from exc
            assets = {**found.assets, **uploads}
            return _Built(Source(file, "rosetta", name or found.name, definition, assets, found.runtimes(), module,
                                 pipeline=found, description=found.description, role=found.role),
                          dict(uploads), report)
        if found is not None and _is_sdk_pipeline(found):
            try:
                definition = json.loads(found.definition())
            except Exception as exc:
                raise _user_error(file, exc) from exc
            return _Built(Source(file, "sdk", name or str(found.name), definition, dict(uploads),
                                 runtimes_of(definition), module, sdk_pipeline=found, role=None),
                          dict(uploads), report)
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
