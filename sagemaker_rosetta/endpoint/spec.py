"""What an endpoint serves: one container, a multi-container model, or a multi-model container,
from the command line, a CreateModel document, a local pipeline run or the local model registry.

The shapes are SageMaker's (``CreateModel``: ``PrimaryContainer`` or ``Containers`` with ``Image``,
``ModelDataUrl``, ``Environment``, ``ContainerHostname``, ``Mode``; ``InferenceExecutionConfig``
``Mode`` ``Serial``/``Direct``), so a model defined for AWS is served here unchanged. ``s3://``
URIs are read from the local pipeline runner's store (a folder standing in for S3, or an
S3-compatible endpoint), as the runner writes them.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagemaker_rosetta.endpoint.errors import EndpointError
from sagemaker_rosetta.mlroot import unpack_model

#: ContainerHostname's pattern (CreateModel) and SageMaker's limit on a model's containers
HOSTNAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
MAX_CONTAINERS = 15
MODES = ("Serial", "Direct")


@dataclass
class ContainerSpec:
    image: str
    #: a local folder or ``model.tar.gz``, or an ``s3://`` URI in the store; None: no model
    model_data: str | None = None
    hostname: str = ""
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelSpec:
    containers: list[ContainerSpec]
    #: InferenceExecutionConfig.Mode for two containers or more
    mode: str = "Serial"
    #: a folder or ``s3://`` prefix holding ``<TargetModel>`` archives: a multi-model endpoint
    multi_model: str | None = None
    #: where ``s3://`` URIs are read: a folder standing in for S3, or an S3-compatible endpoint
    store: str | None = None
    s3_endpoint_url: str | None = None
    #: what the model was made from, in words
    source: str = ""

    def checked(self) -> ModelSpec:
        """Fill the default hostnames and check what CreateModel would refuse."""
        n = len(self.containers)
        if not 1 <= n <= MAX_CONTAINERS:
            raise EndpointError(f"a model has 1 to {MAX_CONTAINERS} containers (got {n})")
        mode = self.mode.capitalize()
        if mode not in MODES:
            raise EndpointError(f"InferenceExecutionConfig.Mode {self.mode!r} is not Serial or Direct")
        self.mode = mode
        if self.multi_model and n != 1:
            raise EndpointError("a multi-model endpoint has exactly one container")
        for k, c in enumerate(self.containers, start=1):
            if not c.image:
                raise EndpointError(f"container {k} has no image")
            # AWS names an unnamed container by its position in errors ("from container-2") and a
            # single one "primary"
            c.hostname = c.hostname or ("primary" if n == 1 else f"container-{k}")
            if len(c.hostname) > 63 or not HOSTNAME.match(c.hostname):
                raise EndpointError(f"ContainerHostname {c.hostname!r} is not valid (letters, digits, hyphens; "
                                    "at most 63 characters)")
        names = [c.hostname for c in self.containers]
        dupes = sorted({h for h in names if names.count(h) > 1})
        if dupes:
            raise EndpointError(f"ContainerHostname {dupes[0]!r} is used by two containers: each needs its own")
        return self


# -- sources --------------------------------------------------------------------------------------

def parse_env(items: Sequence[str], hostnames: Sequence[str]) -> dict[str, dict[str, str]]:
    """``--env [HOSTNAME:]KEY=VALUE`` → environment per hostname (``""``: every container)."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EndpointError(f"--env expects [HOSTNAME:]KEY=VALUE, got {item!r}")
        host, colon, var = key.partition(":")
        if colon and host not in hostnames:
            raise EndpointError(f"--env {item!r}: no container is named {host!r} (hostnames: {', '.join(hostnames)})")
        out.setdefault(host if colon else "", {})[var if colon else key] = value
    return out


def from_command_line(*, image: str | None, model: str | None, containers: Sequence[str],
                      hostnames: Sequence[str], env: Sequence[str], mode: str) -> ModelSpec:
    """``--image IMAGE [--model M]`` or ``--container IMAGE[=MODEL]`` repeated (``--hostname`` by position)."""
    if image and containers:
        raise EndpointError("give either an image (with --model) or --container IMAGE=MODEL options, not both")
    pairs = [(image, model)] if image else []
    for item in containers:
        img, sep, path = item.partition("=")
        pairs.append((img, path if sep else None))
    if not pairs:
        raise EndpointError("nothing to serve: give IMAGE --model PATH, --container IMAGE=MODEL (repeatable), "
                            "--spec FILE, --step STEP or --package GROUP/VERSION")
    if len(hostnames) > len(pairs):
        raise EndpointError(f"{len(hostnames)} --hostname for {len(pairs)} container(s)")
    specs = [ContainerSpec(img or "", m, hostnames[k] if k < len(hostnames) else "")
             for k, (img, m) in enumerate(pairs)]
    spec = ModelSpec(specs, mode=mode, source="command line").checked()
    by_host = parse_env(env, [c.hostname for c in spec.containers])
    for c in spec.containers:
        c.environment = {**by_host.get("", {}), **by_host.get(c.hostname, {})}
    return spec


def from_create_model(doc: Mapping[str, Any], *, source: str, store: str | None = None,
                      s3_endpoint_url: str | None = None) -> ModelSpec:
    """A CreateModel request (or a Model step's properties, or DescribeModel's answer)."""
    raw = doc.get("Containers") or ([doc["PrimaryContainer"]] if doc.get("PrimaryContainer") else [])
    if not raw:
        raise EndpointError(f"{source}: no PrimaryContainer or Containers")
    mode = str((doc.get("InferenceExecutionConfig") or {}).get("Mode") or "Serial")
    specs: list[ContainerSpec] = []
    multi: str | None = None
    for c in raw:
        c = dict(c)
        if c.get("ModelPackageName"):
            base = _package_containers(str(c["ModelPackageName"]), store, s3_endpoint_url)[0]
            env = {**(base.get("Environment") or {}), **(c.get("Environment") or {})}
            c = {**base, **c, "Environment": env}
        if str(c.get("Mode") or "SingleModel") == "MultiModel":
            multi = str(c.get("ModelDataUrl") or "")
            if not multi:
                raise EndpointError(f"{source}: a MultiModel container needs ModelDataUrl (the prefix of the models)")
        specs.append(ContainerSpec(str(c.get("Image") or ""), None if multi else c.get("ModelDataUrl"),
                                   str(c.get("ContainerHostname") or ""),
                                   {str(k): str(v) for k, v in (c.get("Environment") or {}).items()}))
    return ModelSpec(specs, mode=mode, multi_model=multi, store=store, s3_endpoint_url=s3_endpoint_url,
                     source=source).checked()


def from_spec_file(path: Path, *, store: str | None, s3_endpoint_url: str | None) -> ModelSpec:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EndpointError(f"cannot read the model spec {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise EndpointError(f"{path}: expected a CreateModel JSON object")
    return from_create_model(doc, source=str(path), store=store, s3_endpoint_url=s3_endpoint_url)


def from_package(ref: str, *, store: str | None, s3_endpoint_url: str | None) -> ModelSpec:
    """A registered model package version (``GROUP/VERSION`` or its ARN) of the local registry."""
    containers = _package_containers(ref, store, s3_endpoint_url)
    return from_create_model({"Containers": containers}, source=f"model package {ref}", store=store,
                             s3_endpoint_url=s3_endpoint_url)


def from_pipeline_step(step: str, *, workdir: Path, execution: str | None, store: str | None,
                       s3_endpoint_url: str | None) -> ModelSpec:
    """The model a Model (or RegisterModel) step of a local pipeline run created: the given
    execution, else the latest one in ``workdir`` where that step succeeded."""
    runs = sorted((p for p in workdir.glob("*/result.json")), reverse=True) if workdir.is_dir() else []
    if execution:
        runs = [workdir / execution / "result.json"]
        if not runs[0].is_file():
            raise EndpointError(f"no execution {execution} in {workdir} (give the --workdir of that run)")
    for path in runs:
        doc = json.loads(path.read_text())
        found = (doc.get("steps") or {}).get(step)
        if not found or found.get("status") != "Succeeded":
            if execution:
                raise EndpointError(f"step {step} did not succeed in execution {execution} "
                                    f"(status: {(found or {}).get('status', 'no such step')})")
            continue
        props = found.get("properties") or {}
        where = f"step {step} of execution {path.parent.name}"
        if found.get("type") == "RegisterModel" or props.get("InferenceSpecification"):
            props = {"Containers": (props.get("InferenceSpecification") or {}).get("Containers") or []}
        elif found.get("type") != "Model":
            raise EndpointError(f"{where} is a {found.get('type')} step: give a Model or RegisterModel step")
        return from_create_model(props, source=where, store=store, s3_endpoint_url=s3_endpoint_url)
    raise EndpointError(f"no execution in {workdir} where step {step} succeeded "
                        "(run the pipeline first, or give --workdir / --execution)")


def _package_containers(ref: str, store: str | None, s3_endpoint_url: str | None) -> list[dict[str, Any]]:
    try:
        from rosetta_orchestrator.local.registry import Registry, RegistryError
    except ModuleNotFoundError:
        raise EndpointError("model packages need the orchestrator (rosetta_orchestrator)") from None
    try:
        doc = Registry(open_store(store, s3_endpoint_url)).describe(ref)
    except RegistryError as exc:
        raise EndpointError(str(exc)) from None
    containers = list((doc.get("InferenceSpecification") or {}).get("Containers") or [])
    if not containers:
        raise EndpointError(f"model package {ref} has no inference container")
    return [dict(c) for c in containers]


# -- model data -----------------------------------------------------------------------------------

def open_store(store: str | None, s3_endpoint_url: str | None) -> Any:
    """The local pipeline runner's store (``--store`` folder or ``--s3-endpoint-url``)."""
    try:
        from rosetta_orchestrator.local.store import LocalStore, S3Store
    except ModuleNotFoundError:
        raise EndpointError("s3:// model data needs the orchestrator's store (rosetta_orchestrator)") from None
    if s3_endpoint_url:
        return S3Store(s3_endpoint_url)
    return LocalStore(Path(store or ".rosetta-run/s3"))


def materialize(model_data: str | None, dest: Path, *, store: str | None, s3_endpoint_url: str | None) -> Path:
    """The model as SageMaker hands it to ``serve``: ``model.tar.gz`` extracted into a fresh folder
    (S-01); a folder is copied (the endpoint keeps serving what it was given); an ``s3://`` URI
    is fetched from the store first (an archive is extracted, other objects copied as they are)."""
    dest.mkdir(parents=True, exist_ok=True)
    if not model_data:
        return dest
    if model_data.startswith("s3://"):
        from rosetta_orchestrator.local.store import StoreError

        with tempfile.TemporaryDirectory(prefix="rosetta-model-") as tmp:
            try:
                fetched = open_store(store, s3_endpoint_url).fetch(model_data, Path(tmp))
            except StoreError as exc:
                raise EndpointError(f"cannot read model data {model_data}: {exc}") from None
            for f in fetched:
                if f.name.endswith(".tar.gz"):
                    unpack_model(f, dest)
                else:
                    shutil.copy2(f, dest / f.name)
        return _readable(dest)
    path = Path(model_data).expanduser()
    if path.is_dir():
        shutil.copytree(path, dest, dirs_exist_ok=True)
        return _readable(dest)
    if path.is_file():
        try:
            return unpack_model(path, dest)
        except Exception as exc:  # tarfile raises several types for a file that is not an archive
            raise EndpointError(f"{path} is not a model.tar.gz ({exc})") from None
    raise EndpointError(f"no model at {path} (give a model folder or the model.tar.gz `rosetta train` wrote)")


def _readable(folder: Path) -> Path:
    for p in [folder, *folder.rglob("*")]:  # containers may run as another user (S-02)
        p.chmod(0o755 if p.is_dir() else 0o644)
    return folder
