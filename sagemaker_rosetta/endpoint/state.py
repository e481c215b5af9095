"""Where local endpoints live between commands: one state folder per user (or per ``--state``).

``rosetta endpoint up`` starts detached containers and, once, a detached front process; both
outlive the command. What the other commands (and the front) need to find them is written here::

    <state>/front.json                  the front process: pid, port, URL (written by the front itself)
    <state>/front.log                   its log
    <state>/front.lock                  taken while a command starts or stops the front
    <state>/endpoints/<name>/endpoint.json   one endpoint: mode, containers (name, port), sources
    <state>/endpoints/<name>/models/<hostname>/   each container's model, extracted (S-01)
    <state>/endpoints/<name>/models/multi/<model>/model/   multi-model: archives extracted on first use

Default folder: ``$ROSETTA_ENDPOINT_STATE``, else ``~/.rosetta/endpoints``. Records are written
atomically (temporary file + rename), so the front never reads half a record.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: SageMaker's EndpointName pattern and length (sagemaker-runtime service model)
NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
NAME_MAX = 63


def default_root() -> Path:
    env = os.environ.get("ROSETTA_ENDPOINT_STATE")
    return Path(env) if env else Path.home() / ".rosetta" / "endpoints"


def check_name(name: str) -> str:
    if len(name) > NAME_MAX or not NAME.match(name):
        raise ValueError(f"endpoint name {name!r} is not valid: letters, digits and hyphens, starting and "
                         f"ending with a letter or digit, at most {NAME_MAX} characters (SageMaker's EndpointName)")
    return name


@dataclass
class Member:
    """One running container of an endpoint."""

    hostname: str
    image: str
    #: the container port it listens on (its SAGEMAKER_BIND_TO_PORT; 8080 for a single container)
    port: int
    #: where that port is published on 127.0.0.1
    host_port: int
    #: the Docker container's name
    container: str
    #: where its model came from (a folder, an archive, an s3:// URI), for ls and errors
    model_data: str = ""
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class Endpoint:
    """An endpoint's record (``endpoint.json``)."""

    name: str
    #: ``Single`` (one container), ``Serial`` or ``Direct`` (InferenceExecutionConfig.Mode), ``MultiModel``
    mode: str
    members: list[Member]
    created: str
    #: the label value every container of this endpoint carries (``io.rosetta.endpoint``)
    id: str
    #: what it was made from, in words (``rosetta endpoint ls``)
    source: str = ""
    variant: str = "AllTraffic"
    #: multi-model: ``{"source": folder or s3:// prefix, "store": dir or None, "s3_endpoint_url": …}``
    multi_model: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Endpoint:
        doc = json.loads(text)
        doc["members"] = [Member(**m) for m in doc["members"]]
        return cls(**doc)

    def member(self, hostname: str) -> Member | None:
        return next((m for m in self.members if m.hostname == hostname), None)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


class State:
    """The state folder (see the module docstring)."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).expanduser().resolve() if root else default_root().resolve()

    @property
    def front_file(self) -> Path:
        return self.root / "front.json"

    @property
    def front_log(self) -> Path:
        return self.root / "front.log"

    def folder(self, name: str) -> Path:
        return self.root / "endpoints" / name

    def record(self, name: str) -> Path:
        return self.folder(name) / "endpoint.json"

    def models(self, name: str) -> Path:
        return self.folder(name) / "models"

    def save(self, endpoint: Endpoint) -> None:
        write_atomic(self.record(endpoint.name), endpoint.to_json())

    def load(self, name: str) -> Endpoint | None:
        try:
            return Endpoint.from_json(self.record(name).read_text())
        except FileNotFoundError:
            return None

    def names(self) -> list[str]:
        base = self.root / "endpoints"
        return sorted(p.parent.name for p in base.glob("*/endpoint.json")) if base.is_dir() else []

    def forget(self, name: str) -> None:
        """Remove the record first (the front stops routing at once), then the models."""
        self.record(name).unlink(missing_ok=True)
        shutil.rmtree(self.folder(name), ignore_errors=True)

    def front(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.front_file.read_text()))
        except (FileNotFoundError, ValueError):
            return None

    @contextmanager
    def lock(self, which: str = "front") -> Iterator[None]:
        """An exclusive lock between commands of this state folder (held while the front starts)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{which}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
