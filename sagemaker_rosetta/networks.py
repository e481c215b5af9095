"""Networks for jobs and endpoints made of several containers.

- :class:`Network`: a per-job bridge network; containers join it under a hostname and aliases
  (``Container(..., network=net, hostname="algo-2")``), as the hosts of a multi-host training job
  reach each other by name.
- :class:`Pod`: containers sharing ONE network namespace (``network_mode="container:OWNER"``), as
  the containers of a SageMaker multi-container endpoint or inference pipeline reach each other on
  ``localhost`` at their own ports. The first member owns the namespace and publishes every port
  of the pod on 127.0.0.1.

Both carry Rosetta's cleanup label, so :func:`sagemaker_rosetta.containers.cleanup_all` removes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import docker.errors

from sagemaker_rosetta import dockerapi
from sagemaker_rosetta.dockerapi import DockerError

if TYPE_CHECKING:
    from sagemaker_rosetta.containers import Container, Server


def network_name(prefix: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in prefix)[:40]
    return f"rosetta-{safe}-{uuid.uuid4().hex[:8]}"


@dataclass
class Network:
    """A user-defined bridge network, created on enter (or :meth:`create`) and removed on exit.

    ``internal=True`` gives no route out of the host, like a training job with network isolation.
    Removal first disconnects (force) any container still attached.
    """

    name: str = field(default_factory=lambda: network_name("net"))
    internal: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)

    def create(self) -> Network:
        from sagemaker_rosetta.containers import LABEL, RUN_ID

        with dockerapi.translated(f"docker network create {self.name}"):
            dockerapi.api().create_network(self.name, driver="bridge", internal=self.internal,
                                           labels={LABEL: RUN_ID, **self.labels}, check_duplicate=True)
        return self

    def connect(self, container: str, *, aliases: Sequence[str] = ()) -> None:
        """Attach a running container (by name or id) under ``aliases``."""
        with dockerapi.translated(f"docker network connect {self.name} {container}"):
            dockerapi.api().connect_container_to_network(container, self.name, aliases=list(aliases) or None)

    def disconnect(self, container: str) -> None:
        try:
            dockerapi.api().disconnect_container_from_network(container, self.name, force=True)
        except docker.errors.NotFound:
            pass

    def containers(self) -> list[str]:
        """Names of the containers attached now."""
        with dockerapi.translated(f"docker network inspect {self.name}"):
            info = dockerapi.api().inspect_network(self.name)
        return sorted(str(c.get("Name", cid)) for cid, c in (info.get("Containers") or {}).items())

    def remove(self) -> None:
        """Disconnect whatever is attached, then remove; quiet when already gone."""
        try:
            attached = self.containers()
        except dockerapi.NotFound:
            return
        for name in attached:
            self.disconnect(name)
        try:
            dockerapi.api().remove_network(self.name)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise DockerError(f"docker network rm {self.name}: {dockerapi.explain(exc)}") from exc

    def __enter__(self) -> Network:
        return self.create()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.remove()


def remove_labelled(selector: str) -> None:
    """Remove every network whose labels match ``selector`` (after its containers are gone)."""
    try:
        found = dockerapi.api().networks(filters={"label": selector})
    except docker.errors.APIError:
        return
    for info in found:
        try:
            Network(str(info["Name"])).remove()
        except DockerError:
            pass


class Pod:
    """Containers in one network namespace: each listens on its own port, all reach each other on
    ``localhost``; from the host, member ports are published on 127.0.0.1 by the owner.

    ``ports``: every container port any member will listen on (fixed when the owner starts).
    The owner is the first container added; when it stops, the others lose their network, so add
    the longest-lived one first. ``network``/``hostname`` put the whole pod on a :class:`Network`::

        with Pod(ports=[8080, 8081]) as pod:
            first = pod.server("rosetta/python:latest", port=8080, env={...})
            second = pod.server("rosetta/r:latest", port=8081, env={"SAGEMAKER_BIND_TO_PORT": "8081"})
            first.invoke(...); second.invoke(...)   # published ports on 127.0.0.1
    """

    def __init__(self, ports: Sequence[int], *, network: Network | str | None = None,
                 hostname: str | None = None, aliases: Sequence[str] = ()) -> None:
        self.ports = list(ports)
        self.network, self.hostname, self.aliases = network, hostname, list(aliases)
        self.members: list[Container] = []

    @property
    def owner(self) -> str | None:
        return str(self.members[0].name) if self.members else None

    def _place(self, kw: dict[str, Any]) -> dict[str, Any]:
        if self.owner is None:
            kw.update(network=self.network, hostname=self.hostname, aliases=self.aliases,
                      publish=[p for p in self.ports if p != kw.get("port")])
        else:
            kw["network_mode"] = f"container:{self.owner}"
        return kw

    def server(self, image: str, **kw: Any) -> Server:
        """Start a :class:`~sagemaker_rosetta.containers.Server` in the pod (``port`` must be one of ``ports``)."""
        from sagemaker_rosetta.containers import Server

        port = int(kw.get("port", 8080))
        if port not in self.ports:
            raise ValueError(f"port {port} is not one of the pod's ports {self.ports}")
        server = Server(image, **self._place(kw))
        self._start(server)
        return server

    def container(self, image: str, **kw: Any) -> Container:
        """Start a plain :class:`~sagemaker_rosetta.containers.Container` in the pod."""
        from sagemaker_rosetta.containers import Container

        member = Container(image, **self._place(kw))
        self._start(member)
        return member

    def _start(self, member: Container) -> None:
        self.members.append(member)
        try:
            member.start()
        except BaseException:
            self.members.remove(member)
            raise

    def remove(self) -> None:
        """Remove every member, the owner last."""
        for member in reversed(self.members):
            member.remove()
        self.members.clear()

    def __enter__(self) -> Pod:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.remove()
