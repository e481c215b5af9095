"""Run SageMaker-style containers on the local engine: jobs to completion, detached servers, cleanup.

The one place (with :mod:`~sagemaker_rosetta.networks` and :mod:`~sagemaker_rosetta.local_images`)
that talks to the Docker engine, through the Docker SDK for Python. Shared by the tests, the
conformance suite, the benchmarks and the local pipeline runner, so every caller publishes ports
on 127.0.0.1 only, labels its containers for cleanup and removes them, even on errors and Ctrl-C.

- :func:`run`: ``IMAGE ARGS`` to completion, stdout and stderr captured (a training job).
- :class:`Container`: a detached container and its lifecycle (wait, logs, kill, stop, exec, remove),
  optionally on a :class:`~sagemaker_rosetta.networks.Network` under a hostname and aliases, or in
  another container's network namespace (``network_mode="container:NAME"``).
- :class:`Server`: a :class:`Container` serving HTTP on a port published at ``127.0.0.1``.
- :func:`cleanup_all`: remove what this process (or every Rosetta run) left behind.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker.errors

from sagemaker_rosetta import dockerapi
from sagemaker_rosetta.dockerapi import DockerError, NotFound
from sagemaker_rosetta.httpclient import Response, request
from sagemaker_rosetta.local_images import config as image_config
from sagemaker_rosetta.mlroot import ml_root, pack_model, unpack_model

if TYPE_CHECKING:
    from sagemaker_rosetta.networks import Network

__all__ = [
    "LABEL", "RUN_ID", "Completed", "Container", "DockerError", "NotFound", "Process", "Response", "RunTimeout",
    "Server",
    "cleanup_all", "container_name", "follow_logs", "image_config", "ml_root", "pack_model", "remove_labelled",
    "run", "serving", "unpack_model",
]

LABEL = "io.rosetta.managed"
#: this process's label value, so Ctrl-C cleans up our containers and not another run's
RUN_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
#: ``{host_path: "/opt/ml/model:ro"}``
Volumes = Mapping[Path, str] | Mapping[str, str] | Mapping[str | Path, str]
LogFn = Callable[[str], None]
_counter = itertools.count()


def container_name(prefix: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in prefix)[:40]
    return f"rosetta-{safe}-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Process:
    """One process of a running container, with host PIDs (``docker top``)."""

    pid: int
    ppid: int
    args: str


@dataclass
class Completed:
    """What :func:`run` and :meth:`Container.exec` return (the fields of ``subprocess.CompletedProcess``)."""

    returncode: int
    stdout: str
    stderr: str
    name: str = ""


class RunTimeout(subprocess.TimeoutExpired):
    """:func:`run` outlived its timeout; the container was removed. A ``subprocess.TimeoutExpired``,
    as the CLI-based ``run`` raised, so callers written for it keep working."""


# -- container specification ------------------------------------------------------------------------

def _binds(volumes: Volumes | None) -> dict[str, dict[str, str]]:
    """``{host_path: "/opt/ml/model:ro"}`` → the SDK's ``{host: {"bind": ..., "mode": ...}}``."""
    out: dict[str, dict[str, str]] = {}
    for host, target in (volumes or {}).items():
        path, _, mode = str(target).partition(":")
        out[str(Path(host).resolve())] = {"bind": path, "mode": mode or "rw"}
    return out


#: ``docker run`` flags still accepted in ``extra`` (callers written for the CLI), and their keyword
_FLAGS = {"--entrypoint": "entrypoint", "--user": "user", "-u": "user", "--label": "labels", "-l": "labels",
          "-e": "env", "--env": "env", "--network": "network", "--hostname": "hostname", "-h": "hostname"}


def _parse_extra(extra: Sequence[str]) -> dict[str, Any]:
    """Translate CLI-style ``extra`` flags (``--entrypoint sh``, ``--user 1000``, ``--label k=v``, …)."""
    out: dict[str, Any] = {"labels": {}, "env": {}}
    items = list(extra)
    i = 0
    while i < len(items):
        flag, value = items[i], None
        if "=" in flag and flag.startswith("--"):
            flag, value = flag.split("=", 1)
        elif i + 1 < len(items):
            value = items[i + 1]
            i += 1
        key = _FLAGS.get(flag)
        if key is None or value is None:
            raise ValueError(f"unsupported docker run option in extra: {flag!r}; use the keyword arguments")
        if key in ("labels", "env"):
            k, _, v = value.partition("=")
            out[key][k] = v
        else:
            out[key] = value
        i += 1
    return out


@dataclass
class Container:
    """A detached container: created and started by :meth:`start`, always labelled for cleanup.

    ``network`` puts it on a user-defined network (a :class:`~sagemaker_rosetta.networks.Network`
    or its name) where other containers reach it by ``hostname`` and ``aliases``;
    ``network_mode="container:NAME"`` shares NAME's network namespace instead (then it publishes
    nothing itself: NAME must publish the ports). ``publish`` lists container ports to publish
    on ``127.0.0.1`` (a free host port each: :meth:`host_port_of`).
    """

    image: str
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    volumes: Volumes = field(default_factory=dict)
    name: str = field(default_factory=lambda: container_name("job"))
    entrypoint: str | Sequence[str] | None = None
    user: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    network: Network | str | None = None
    hostname: str | None = None
    aliases: Sequence[str] = ()
    network_mode: str | None = None
    publish: Sequence[int] = ()
    #: ``docker run --memory M --memory-swap M``: a hard limit, no swap beyond it (the OOM killer acts at M)
    memory_mb: int | None = None
    #: ``docker run`` flags from the CLI era (see :data:`_FLAGS`); prefer the keywords
    extra: Sequence[str] = ()

    def __post_init__(self) -> None:
        self._streams: list[Any] = []
        self._streams_lock = threading.Lock()

    # -- start -----------------------------------------------------------------------------------
    def _create_kwargs(self) -> dict[str, Any]:
        flags = _parse_extra(self.extra)
        entrypoint = flags.get("entrypoint", self.entrypoint)
        if isinstance(entrypoint, str):
            # `--entrypoint ""` resets the image's entrypoint (the CLI's meaning); the API wants [""]
            entrypoint = [entrypoint]
        kw: dict[str, Any] = {
            "command": list(self.args), "name": self.name, "detach": True,
            "environment": {**self.env, **flags["env"]},
            "labels": {LABEL: RUN_ID, **self.labels, **flags["labels"]},
            "volumes": _binds(self.volumes),
            "entrypoint": entrypoint, "user": flags.get("user", self.user),
        }
        network = flags.get("network", self.network)
        hostname = flags.get("hostname", self.hostname)
        if self.network_mode and (network or hostname or self.publish):
            raise ValueError("network_mode shares another container's network: no network, hostname or ports")
        if self.network_mode:
            kw["network_mode"] = self.network_mode
        if network is not None:
            net = network if isinstance(network, str) else network.name
            kw["network"] = net
            if self.aliases or hostname:
                aliases = [a for a in (hostname, *self.aliases) if a]
                kw["networking_config"] = {net: dockerapi.api().create_endpoint_config(aliases=aliases)}
        if hostname:
            kw["hostname"] = hostname
        if self.publish:
            kw["ports"] = {f"{p}/tcp": ("127.0.0.1", None) for p in self.publish}
        if self.memory_mb is not None:
            kw["mem_limit"] = kw["memswap_limit"] = f"{self.memory_mb}m"
        return {k: v for k, v in kw.items() if v is not None}

    def start(self) -> Container:
        """Create and start; raises :class:`DockerError` (the engine's reason) and leaves nothing behind."""
        with dockerapi.translated(f"docker run {self.image}"):
            created = dockerapi.client().containers.create(self.image, **self._create_kwargs())
        try:
            with dockerapi.translated(f"docker run {self.image}"):
                created.start()
        except DockerError:
            self.remove()
            raise
        return self

    # -- state -----------------------------------------------------------------------------------
    def inspect(self) -> dict[str, Any]:
        """The engine's ``docker inspect`` document; raises :class:`NotFound` once removed."""
        with dockerapi.translated(f"inspect {self.name}"):
            return dict(dockerapi.api().inspect_container(self.name))

    def _state(self) -> dict[str, Any]:
        try:
            return dict(self.inspect().get("State") or {})
        except NotFound:
            return {}

    def running(self) -> bool:
        return bool(self._state().get("Running"))

    def exit_code(self) -> int | None:
        code = self._state().get("ExitCode")
        return int(code) if isinstance(code, int) else None

    def pid(self) -> int | None:
        """PID 1 of the container as the host sees it (``None`` when not running)."""
        pid = self._state().get("Pid")
        return int(pid) if isinstance(pid, int) and pid > 0 else None

    def processes(self) -> list[Process]:
        """Its processes as the host sees them (``docker top``; PID 1 is :meth:`pid`); [] when not running."""
        try:
            top = dockerapi.api().top(self.name, ps_args="-eo pid,ppid,args")
        except docker.errors.APIError:
            return []
        titles = [t.upper() for t in top.get("Titles") or []]
        at = {t: titles.index(t) for t in ("PID", "PPID", "COMMAND") if t in titles}
        if len(at) < 3:
            return []
        return [Process(int(row[at["PID"]]), int(row[at["PPID"]]), str(row[at["COMMAND"]]))
                for row in top.get("Processes") or []]

    def host_port_of(self, port: int) -> int:
        """The 127.0.0.1 port where container port ``port`` is published (the namespace owner's
        when this container shares another's network)."""
        owner = self.name
        if self.network_mode and self.network_mode.startswith("container:"):
            owner = self.network_mode.split(":", 1)[1]
        with dockerapi.translated(f"ports of {owner}"):
            ports = dockerapi.api().inspect_container(owner)["NetworkSettings"]["Ports"] or {}
        for binding in ports.get(f"{port}/tcp") or []:
            if binding.get("HostIp") == "127.0.0.1" and binding.get("HostPort"):
                return int(binding["HostPort"])
        raise DockerError(f"no published 127.0.0.1 port for {owner}:{port} (published: {ports})")

    def ip_address(self, network: Network | str) -> str:
        """This container's address on ``network``."""
        net = network if isinstance(network, str) else network.name
        return str(self.inspect()["NetworkSettings"]["Networks"][net]["IPAddress"])

    # -- lifecycle -------------------------------------------------------------------------------
    def wait_exit(self, timeout: float | None) -> int | None:
        """Wait for the container to exit; its exit code, or None on timeout (or when it is gone)."""
        try:
            result = dockerapi.api().wait(self.name, timeout=timeout)
        except (docker.errors.NotFound, docker.errors.APIError):
            return None
        except Exception as exc:
            if dockerapi.is_timeout(exc):
                return None
            raise
        return int(result.get("StatusCode", -1))

    def kill(self, signal: str | int = "TERM") -> bool:
        """Send ``signal`` to PID 1; False when the container is not running (or gone)."""
        try:
            dockerapi.api().kill(self.name, signal=signal)
        except docker.errors.APIError:
            return False
        return True

    def stop(self, timeout: float = 10) -> int | None:
        """``docker stop``: SIGTERM, SIGKILL after ``timeout`` s; the exit code."""
        try:
            dockerapi.api().stop(self.name, timeout=int(timeout))
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise DockerError(f"stop {self.name}: {dockerapi.explain(exc)}") from exc
        return self.exit_code()

    def remove(self) -> None:
        """Force-remove (kills a running container); never raises for a container already gone.
        Also ends every log stream of this object (see :meth:`close_streams`)."""
        try:
            dockerapi.api().remove_container(self.name, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in dockerapi.explain(exc):
                raise DockerError(f"remove {self.name}: {dockerapi.explain(exc)}") from exc
        self.close_streams()

    def exec(self, *cmd: str, user: str | None = None) -> Completed:
        """Run ``cmd`` inside the running container (``docker exec``), output captured."""
        api = dockerapi.api()
        try:
            made = api.exec_create(self.name, list(cmd), stdout=True, stderr=True, user=user or "")
            out, err = api.exec_start(made["Id"], demux=True)
            code = api.exec_inspect(made["Id"]).get("ExitCode")
        except docker.errors.APIError as exc:
            return Completed(126, "", dockerapi.explain(exc), self.name)
        text = (out or b"").decode("utf-8", errors="replace"), (err or b"").decode("utf-8", errors="replace")
        return Completed(int(code) if isinstance(code, int) else 126, text[0], text[1], self.name)

    # -- output ----------------------------------------------------------------------------------
    def logs(self, *, stdout: bool = True, stderr: bool = True) -> str:
        """Everything written so far (interleaved in time when both streams); "" once removed."""
        try:
            data = dockerapi.api().logs(self.name, stdout=stdout, stderr=stderr)
        except docker.errors.APIError:
            return ""
        return bytes(data).decode("utf-8", errors="replace")

    def lines(self, *, follow: bool = True) -> Iterator[str]:
        """Output lines (stdout and stderr) from the start, live until the container exits when
        ``follow``; ends early when :meth:`close_streams` or :meth:`remove` is called."""
        try:
            stream = dockerapi.api().logs(self.name, stream=True, follow=follow)
        except docker.errors.APIError:
            return
        with self._streams_lock:
            self._streams.append(stream)
        try:
            yield from _split_lines(stream)
        finally:
            with self._streams_lock:
                if stream in self._streams:
                    self._streams.remove(stream)
            _close_quietly(stream)

    def follow(self, log: LogFn) -> threading.Thread:
        """Stream output lines to ``log`` from a daemon thread, until the container exits."""
        def pump() -> None:
            for line in self.lines():
                log(line)

        thread = threading.Thread(target=pump, daemon=True, name=f"logs-{self.name}")
        thread.start()
        return thread

    def close_streams(self) -> None:
        """End the log streams being read from this object (from another thread, e.g. on Ctrl-C)."""
        with self._streams_lock:
            streams, self._streams = self._streams, []
        for stream in streams:
            _close_quietly(stream)


def _split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    pending = b""
    try:
        for chunk in chunks:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.rstrip(b"\r").decode("utf-8", errors="replace")
    except Exception:  # the stream was closed under us (Ctrl-C, removal): keep what was read
        pass
    if pending:
        yield pending.decode("utf-8", errors="replace")


def _close_quietly(stream: Any) -> None:
    try:
        stream.close()
    except Exception:  # a half-closed socket: nothing left to release
        pass


def follow_logs(name: str, log: LogFn) -> threading.Thread:
    """Stream the output of the container ``name`` to ``log`` in a daemon thread."""
    return Container("", name=name).follow(log)


# -- run to completion ------------------------------------------------------------------------------

def _start_failure_code(message: str) -> int:
    """The exit code ``docker run`` gives when the engine cannot start the command."""
    lowered = message.lower()
    if "permission denied" in lowered:
        return 126
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    return 125


def run(image: str, args: Sequence[str] = (), *, env: Mapping[str, str] | None = None,
        volumes: Volumes | None = None, extra: Sequence[str] = (), timeout: float = 600, name: str | None = None,
        entrypoint: str | Sequence[str] | None = None, user: str | None = None,
        labels: Mapping[str, str] | None = None, network: Network | str | None = None,
        hostname: str | None = None, aliases: Sequence[str] = (), network_mode: str | None = None) -> Completed:
    """``IMAGE ARGS`` to completion (a training job), output captured, container removed.

    An image that cannot start gives ``docker run``'s codes (125, or 126/127 for the command) with
    the engine's reason in ``stderr``; a job still running after ``timeout`` s raises :class:`RunTimeout`.
    """
    job = Container(image, args, env=env or {}, volumes=volumes or {}, name=name or container_name("job"),
                    entrypoint=entrypoint, user=user, labels=labels or {}, network=network, hostname=hostname,
                    aliases=aliases, network_mode=network_mode, extra=extra)
    try:
        job.start()
    except DockerError as exc:
        return Completed(_start_failure_code(str(exc)), "", f"docker: {exc}\n", job.name)
    try:
        code = job.wait_exit(timeout)
        out, err = job.logs(stderr=False), job.logs(stdout=False)
        if code is None:
            raise RunTimeout([image, *args], timeout, output=out, stderr=err)
        return Completed(code, out, err, job.name)
    finally:
        job.remove()


# -- serving ----------------------------------------------------------------------------------------

@dataclass
class Server(Container):
    """A detached ``IMAGE serve`` container whose ``port`` is published on 127.0.0.1 (``host_port``)."""

    args: Sequence[str] = ("serve",)
    name: str = field(default_factory=lambda: container_name("serve"))
    port: int = 8080
    host_port: int = 0

    def start(self) -> Server:
        shares = bool(self.network_mode and self.network_mode.startswith("container:"))
        if not shares and self.port not in self.publish:
            self.publish = (self.port, *self.publish)
        try:
            super().start()
            self.host_port = self.host_port_of(self.port)
        except DockerError as exc:
            self.remove()
            raise RuntimeError(str(exc)) from exc
        return self

    # -- HTTP -------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout: float = 60) -> Response:
        """One request on a fresh connection; only the headers given are sent (no default Accept)."""
        return request(self.host_port, method, path, body, headers, timeout)

    def invoke(self, body: bytes, content_type: str | None = "text/csv", accept: str | None = None,
               timeout: float = 60) -> Response:
        headers = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        return self.request("POST", "/invocations", body, headers, timeout)

    def wait_ready(self, timeout: float = 120, poll: float = 0.05) -> float:
        """Poll ``/ping`` until 200; return seconds waited. Raises with the log tail on failure."""
        import http.client

        t0 = last_check = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                if self.request("GET", "/ping", timeout=2).status == 200:
                    return time.monotonic() - t0
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() - last_check > 1:  # an inspect per poll would cost more than the poll
                last_check = time.monotonic()
                if not self.running():
                    raise RuntimeError(f"container {self.name} exited ({self.exit_code()}):\n{self.logs()[-3000:]}")
            time.sleep(poll)
        raise TimeoutError(f"{self.image} not ready after {timeout:.0f} s:\n{self.logs()[-3000:]}")


@contextmanager
def serving(image: str, *, ready: bool = True, ready_timeout: float = 120, **kw: Any) -> Iterator[Server]:
    """Start a serving container, optionally wait for ``/ping`` 200, always remove it."""
    server = Server(image, **kw)
    try:
        server.start()
        if ready:
            server.wait_ready(ready_timeout)
        yield server
    finally:
        server.remove()


# -- cleanup ----------------------------------------------------------------------------------------

def remove_labelled(selector: str) -> int:
    """Force-remove every container (then network) whose labels match ``selector`` (``key`` or
    ``key=value``), in parallel; how many containers were removed."""
    from sagemaker_rosetta import networks

    with dockerapi.translated("list containers"):
        found = dockerapi.api().containers(all=True, quiet=True, filters={"label": selector})
    names = [str(c["Id"]) for c in found]
    threads = [threading.Thread(target=Container("", name=n).remove, daemon=True) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    networks.remove_labelled(selector)
    return len(names)


def cleanup_all(every_run: bool = False) -> None:
    """Remove the containers and networks this process started (e.g. after Ctrl-C);
    ``every_run``: every Rosetta run's. Never raises (it runs on the way out)."""
    try:
        remove_labelled(LABEL if every_run else f"{LABEL}={RUN_ID}")
    except DockerError:
        pass
