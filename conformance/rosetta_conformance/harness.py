"""Shared, lazily created resources for one image: training runs and serving containers.

Checks run in a thread pool; the first check that needs a resource creates it, the others
wait for it (one lock per resource). A resource that cannot be provided raises
:class:`Blocked` naming the clause to blame, so dependent checks report BLOCKED, not FAIL.
Every container carries the run's label, so :meth:`Harness.cleanup` removes them all,
also after Ctrl-C.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rosetta_conformance import wire
from rosetta_conformance.manifest import Manifest
from rosetta_conformance.multimodel import ModelStore, MultiModelServer
from rosetta_conformance.outcome import Blocked, Skip
from sagemaker_rosetta import containers
from sagemaker_rosetta.containers import (
    LABEL,
    RUN_ID,
    Container,
    DockerError,
    NotFound,
    Response,
    RunTimeout,
    Server,
    ml_root,
    pack_model,
    unpack_model,
)

T = TypeVar("T")

#: seconds T-21 waits after a second SIGTERM (sent when the first got no exit within the timeout)
LATE_SIGNAL_WAIT = 10.0
#: the port used to check SAGEMAKER_BIND_TO_PORT (S-04, M-03) and the safe range given with it
ALT_PORT = 9123
SAFE_RANGE = (29000, 29010)


@dataclass
class TrainRun:
    name: str
    exit_code: int | None
    stdout: str
    stderr: str
    root: Path
    seconds: float
    note: str = ""

    @property
    def failure(self) -> str | None:
        path = self.root / "output" / "failure"
        return path.read_text(errors="replace") if path.is_file() else None

    @property
    def log_tail(self) -> str:
        return (self.stdout + self.stderr)[-600:]

    def model_files(self) -> list[Path]:
        model = self.root / "model"
        return sorted(p for p in model.rglob("*") if p.is_file()) if model.is_dir() else []


@dataclass
class SigtermRun:
    """One T-21 attempt: did SIGTERM land while training ran, and how did the container end."""

    repeat: int
    delay: float
    #: the container was still running when the signal was sent
    landed: bool
    #: None: still running ``timeout`` s after the signal
    exit_code: int | None
    #: seconds from start to exit, as the engine timed it
    ran: float | None
    after_signal: float | None
    timeout: float
    #: exit code after a second SIGTERM, sent when the first one got no exit within ``timeout``
    late_exit: int | None = None
    logs: str = ""
    failure: str | None = None

    @property
    def note(self) -> str:
        head = f"repeat {self.repeat}, SIGTERM at {self.delay:.1f} s: "
        if not self.landed:
            return head + f"training had already ended (exit {self.exit_code} after {self.ran or 0:.1f} s)"
        if self.exit_code is None:
            return head + f"still running {self.timeout:.0f} s later" + (
                f"; a second SIGTERM: exit {self.late_exit}" if self.late_exit is not None else "")
        first = (self.failure or "").strip().splitlines()[:1]
        return head + f"exit {self.exit_code} {self.after_signal or 0:.1f} s later" + (
            f"; failure: {first[0][:80]!r}" if first else "")


def _ran_seconds(job: Container) -> float | None:
    """Start-to-exit time from the engine's own clock (``State.StartedAt``/``FinishedAt``)."""
    try:
        state = job.inspect().get("State") or {}
        started = dt.datetime.fromisoformat(str(state["StartedAt"]))
        finished = dt.datetime.fromisoformat(str(state["FinishedAt"]))
    except (DockerError, KeyError, ValueError):
        return None
    seconds = (finished - started).total_seconds()
    return seconds if seconds >= 0 else None


@dataclass
class Startup:
    """What happened between ``docker run`` and the first ``/ping`` 200 (S-08, S-09)."""

    ready_seconds: float | None = None
    ping_statuses: list[int] = field(default_factory=list)
    slowest_ping: float = 0.0
    first_invocation: Response | None = None
    #: the sample's answer once /ping was 200, when it was a definite refusal (see :func:`definite`)
    refused: Response | None = None
    error: str = ""


@dataclass
class Served:
    server: Server
    startup: Startup
    kind: str


def definite(r: Response) -> bool:
    """A final answer, not "still loading": any 4xx, or a 5xx other than 503 that carries a body."""
    return 400 <= r.status < 500 or (r.status >= 500 and r.status != 503 and bool(r.body.strip()))


def _try_invoke(server: Server, body: bytes, ctype: str) -> Response | None:
    """The sample invocation, or ``None`` when nothing answered (refused, reset, timed out)."""
    try:
        return server.invoke(body, ctype)
    except (OSError, http.client.HTTPException):
        return None


class Harness:
    def __init__(self, image: str, manifest: Manifest, *, model_dir: Path | None = None,
                 workdir: Path | None = None, instance_type: str | None = None) -> None:
        self.image = image
        self.manifest = manifest
        self.model_dir_arg = model_dir
        #: ``--instance-type`` (else the manifest's): the hardware the image is meant for (C-08)
        self.instance_type = instance_type or manifest.instance_type
        self.run_id = uuid.uuid4().hex[:10]
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="rosetta-conform-"))
        self._locks: dict[str, threading.Lock] = {}
        self._values: dict[str, Any] = {}
        self._guard = threading.Lock()
        self.figures: dict[str, float] = {}

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def labels(self) -> dict[str, str]:
        """Labels of every container this harness starts (:meth:`cleanup` removes them by the second)."""
        return {LABEL: RUN_ID, "io.rosetta.conformance": self.run_id}

    @property
    def label_args(self) -> list[str]:
        """The same labels as ``docker run`` flags (for ``containers.run(extra=...)``; prefer :attr:`labels`)."""
        return [a for k, v in self.labels.items() for a in ("--label", f"{k}={v}")]

    def once(self, key: str, make: Callable[[], T]) -> T:
        """Create a resource once; every caller gets the value or the same exception."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                try:
                    self._values[key] = (True, make())
                except (Blocked, Skip) as exc:
                    self._values[key] = (False, exc)
            ok, value = self._values[key]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def cleanup(self) -> None:
        try:
            containers.remove_labelled(f"io.rosetta.conformance={self.run_id}")
        except DockerError:
            pass  # on the way out: the run label still finds them (`rosetta` cleans up on Ctrl-C)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def image_config(self) -> dict[str, Any]:
        def make() -> dict[str, Any]:
            try:
                return containers.image_config(self.image)
            except NotFound as exc:
                raise Blocked("C-01", f"image {self.image!r} not found: {exc}") from exc
        return self.once("config", make)

    # -- training ----------------------------------------------------------------------------
    def require_training(self) -> None:
        if self.manifest.training is None:
            raise Skip("no [training] section in the manifest")

    def _layout(self, name: str, *, encode: Callable[[Mapping[str, Any]], dict[str, str]] = wire.encode_str,
                hyperparameters: Mapping[str, Any] | None = None, hosts: tuple[str, ...] = ("algo-1",),
                content_type: str | None = "text/csv", data: bool = True, empty: bool = False,
                repeat: int = 1, checkpoint_dir: str | None = None) -> Path:
        tr = self.manifest.training
        assert tr is not None
        root = self.workdir / "train" / name
        stage = self.workdir / "stage" / name
        channels: dict[str, Path | Mapping[str, str]] = {}
        for ch, src in tr.channels.items():
            folder = stage / ch
            folder.mkdir(parents=True, exist_ok=True)
            files = sorted(p for p in src.iterdir() if p.is_file()) if src.is_dir() else [src]
            for f in files:
                if empty:
                    (folder / f.name).write_bytes(b"")
                elif repeat > 1:
                    lines = f.read_bytes().splitlines(keepends=True)
                    if lines and not lines[-1].endswith(b"\n"):
                        lines[-1] += b"\n"
                    (folder / f.name).write_bytes(b"".join(lines[:1] + lines[1:] * repeat))
                else:
                    shutil.copy(f, folder / f.name)
            channels[ch] = folder
        hps = tr.hyperparameters if hyperparameters is None else hyperparameters
        ml_root(root, hyperparameters=encode(hps), channels=channels, hosts=hosts, content_type=content_type)
        if not data:
            shutil.rmtree(root / "input" / "data")
        if checkpoint_dir is not None:  # as SageMaker writes it for a job with CheckpointConfig (T-13)
            (root / "input" / "config" / "checkpointconfig.json").write_text(json.dumps(
                {"LocalPath": checkpoint_dir, "S3Uri": "s3://rosetta-conformance/checkpoints"}))
        return root

    def train(self, name: str, *, ro_channels: bool = False, **layout: Any) -> TrainRun:
        """``IMAGE train`` on a fake /opt/ml (T-01, T-04, T-05, T-07); cached by ``name``."""
        self.require_training()
        tr = self.manifest.training
        assert tr is not None

        def make() -> TrainRun:
            root = self._layout(name, **layout)
            volumes: dict[str | Path, str] = {root: "/opt/ml"}
            if ro_channels:
                for ch in tr.channels:
                    volumes[root / "input" / "data" / ch] = f"/opt/ml/input/data/{ch}:ro"
            t0 = time.monotonic()
            try:
                res = containers.run(self.image, ["train"], env=tr.env, volumes=volumes, labels=self.labels,
                                     timeout=tr.timeout)
                code, out, err = res.returncode, res.stdout, res.stderr
            except RunTimeout:
                code, out, err = None, "", f"timed out after {tr.timeout:.0f} s"
            return TrainRun(name, code, out, err, root, time.monotonic() - t0)
        return self.once(f"train:{name}", make)

    def main_training(self) -> TrainRun:
        return self.train("main")

    def sigterm_run(self, attempt: int, *, repeat: int, delay: float) -> SigtermRun:
        """Start the ``[training.sigterm]`` workload with channel rows repeated ``repeat`` times,
        SIGTERM PID 1 ``delay`` s after start, wait ``timeout`` s for it to exit (one T-21 attempt)."""
        self.require_training()
        tr = self.manifest.training
        assert tr is not None
        spec = tr.sigterm
        hps = {**tr.hyperparameters, **spec.hyperparameters}
        root = self._layout(f"sigterm-{attempt}", hyperparameters=hps, repeat=repeat)
        job = Container(self.image, ["train"], env=tr.env, volumes={root: "/opt/ml"}, labels=self.labels,
                        name=containers.container_name("conform-sigterm"))
        try:
            job.start()
        except DockerError as exc:
            raise Blocked("C-01", f"docker run failed: {exc}") from exc
        t0 = time.monotonic()
        try:
            time.sleep(delay)
            t_signal = time.monotonic()
            landed = job.kill("TERM")
            code = job.wait_exit(spec.timeout if landed else 5)
            t_exit = time.monotonic() if code is not None else None
            late: int | None = None
            if landed and code is None and job.kill("TERM"):
                # was the first signal lost while the program was still starting (a slow host)?
                late = job.wait_exit(LATE_SIGNAL_WAIT)
            ran = _ran_seconds(job)
            if ran is None and t_exit is not None:
                ran = t_exit - t0
            failure = root / "output" / "failure"
            return SigtermRun(repeat=repeat, delay=delay, landed=landed, exit_code=code, ran=ran,
                              after_signal=(t_exit - t_signal) if landed and t_exit is not None else None,
                              timeout=spec.timeout, late_exit=late, logs=job.logs(),
                              failure=failure.read_text(errors="replace") if failure.is_file() else None)
        finally:
            job.remove()

    def channel_bytes(self) -> int:
        """Size of the training channels' files (bounds how far T-21 may repeat their rows)."""
        tr = self.manifest.training
        assert tr is not None
        files = [f for src in tr.channels.values()
                 for f in (sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src])]
        return sum(f.stat().st_size for f in files)

    # -- the model that serving checks use -----------------------------------------------------
    def model_tarball(self) -> Path:
        """``model.tar.gz`` of the model directory **contents**, as SageMaker packs it (T-14)."""
        def make() -> Path:
            if self.model_dir_arg is not None:
                source = self.model_dir_arg
            else:
                if self.manifest.training is None:
                    raise Skip("no model: give a manifest with [training] or --model-dir")
                run = self.main_training()
                if run.exit_code != 0:
                    raise Blocked("T-16", f"training exited {run.exit_code}: {run.log_tail}")
                if not run.model_files():
                    raise Blocked("T-14", "training wrote nothing to /opt/ml/model")
                source = run.root / "model"
            return pack_model(source, self.workdir / "model.tar.gz")
        return self.once("tarball", make)

    def fresh_model_dir(self, name: str) -> Path:
        """A new ``/opt/ml/model`` extracted from the tarball, like SageMaker before start (S-01)."""
        return unpack_model(self.model_tarball(), self.workdir / "models" / name)

    # -- serving -----------------------------------------------------------------------------
    def sample(self) -> tuple[str, bytes, int]:
        payloads = self.manifest.serving.payloads
        if not payloads:
            raise Skip("no [[serving.payloads]] in the manifest")
        p = self.manifest.csv or payloads[0]
        return p.content_type, p.body, p.records

    def _start(self, kind: str, *, env: Mapping[str, str] | None = None, port: int = 8080,
               ro: bool = False, watch: bool = True) -> Served:
        model = self.fresh_model_dir(kind)
        sv = self.manifest.serving
        server = Server(self.image, env={**sv.env, **(env or {})},
                        volumes={model: "/opt/ml/model:ro" if ro else "/opt/ml/model"},
                        port=port, labels=self.labels, name=containers.container_name(f"conform-{kind}"))
        try:
            server.start()
        except RuntimeError as exc:
            raise Blocked("C-01", str(exc)) from exc
        return Served(server, self._watch_startup(server) if watch else Startup(), kind)

    def _watch_startup(self, server: Server) -> Startup:
        """Poll /ping from ``docker run`` until 200, timing every answer; then invoke at once (S-09).

        If that first invocation fails (a /ping that said 200 too early), wait until the model
        really answers, so the other clauses measure the steady state, not the S-09 breakage.
        """
        st = Startup()
        t0 = time.monotonic()
        timeout = self.manifest.serving.ready_timeout
        next_look = t0 + 2.0
        while time.monotonic() - t0 < timeout:
            try:
                r = server.request("GET", "/ping", timeout=5)
                st.ping_statuses.append(r.status)
                st.slowest_ping = max(st.slowest_ping, r.seconds)
                if r.status == 200:
                    st.ready_seconds = time.monotonic() - t0
                    self._first_invocation(server, st, t0 + timeout)
                    return st
            except (OSError, http.client.HTTPException):
                pass
            if not server.running():
                st.error = f"container exited ({server.exit_code()}): {server.logs()[-800:]}"
                return st
            if time.monotonic() > next_look:
                # a server bound to loopback never becomes reachable: stop waiting (S-05)
                next_look = time.monotonic() + 2.0
                found = wire.listeners(server.name) or []
                mine = [ln for ln in found if ln.port == server.port]
                if mine and all(wire.is_loopback(ln.address) for ln in mine):
                    st.error = f"port {server.port} listens on loopback only"
                    return st
            time.sleep(0.1)
        st.error = f"no /ping 200 within {timeout:.0f} s"
        return st

    def _first_invocation(self, server: Server, st: Startup, deadline: float) -> None:
        """Send the sample right after the first /ping 200; while the model is still loading
        (no answer, 503, a bodiless 5xx) retry until ``deadline``. A definite answer stops at once:
        it is the server's verdict on the sample, and waiting would not change it (issue 13.2)."""
        try:
            ctype, body, _ = self.sample()
        except Skip:
            return
        answer = _try_invoke(server, body, ctype)
        st.first_invocation = answer
        while time.monotonic() < deadline:
            if answer is not None and answer.status == 200:
                return
            if answer is not None and definite(answer):
                st.refused = answer
                return
            time.sleep(0.2)
            answer = _try_invoke(server, body, ctype)

    def _diagnose(self, served: Served, port: int) -> Blocked:
        """Name the clause that explains why a serving container never became ready."""
        st = served.startup
        if st.error.startswith("container exited"):
            return Blocked("S-03", st.error)
        found = wire.listeners(served.server.name) or []
        on_port = [ln for ln in found if ln.port == port]
        if on_port and all(wire.is_loopback(ln.address) for ln in on_port):
            return Blocked("S-05", f"port {port} listens on loopback only")
        if not on_port:
            return Blocked("S-03" if port == 8080 else "S-04",
                           f"nothing listens on {port} (listening: {[ln.port for ln in found]})")
        return Blocked("S-08", st.error or "not ready")

    def server(self, kind: str) -> Served:
        """A ready serving container: ``main`` (defaults), ``ro`` (read-only model, S-02),
        ``port`` (SAGEMAKER_BIND_TO_PORT, S-04), ``batch`` (batch-transform env, B-01/B-02)."""
        def make() -> Served:
            port = ALT_PORT if kind == "port" else 8080
            env: dict[str, str] = {}
            if kind == "port":
                env = {"SAGEMAKER_BIND_TO_PORT": str(ALT_PORT),
                       "SAGEMAKER_SAFE_PORT_RANGE": f"{SAFE_RANGE[0]}-{SAFE_RANGE[1]}"}
            elif kind == "batch":
                env = {"SAGEMAKER_BATCH": "true", "SAGEMAKER_BATCH_STRATEGY": "MULTI_RECORD",
                       "SAGEMAKER_MAX_PAYLOAD_IN_MB": "6", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "1"}
            # the port server is judged by its sockets (S-04, M-03), not by waiting for /ping
            return self._start(kind, env=env, port=port, ro=kind == "ro", watch=kind != "port")
        served = self.once(f"server:{kind}", make)
        return served

    def ready(self, kind: str) -> Served:
        """The server of ``kind``, or Blocked if it never answered /ping 200."""
        served = self.server(kind)
        if served.startup.ready_seconds is None:
            port = ALT_PORT if kind == "port" else 8080
            raise self.once(f"diagnosis:{kind}", lambda: self._diagnose(served, port))
        return served

    # -- multi-model mode --------------------------------------------------------------------------
    def mme(self, kind: str = "shared") -> MultiModelServer:
        """A ready server in multi-model mode: ``shared`` (the MM-02 … MM-10 checks take turns on it) or
        ``memory`` (``docker run --memory [multi_model] memory_mb``, no swap: MM-11, MM-12)."""
        def make() -> MultiModelServer:
            shared = self._values.get("mme:shared")
            if kind != "shared" and shared is not None and not shared[0]:
                raise shared[1]  # the same start without a model already failed: no second wait
            source = self.once("mme-source", lambda: self.fresh_model_dir("mme-source"))
            store = ModelStore(self.workdir / "mme" / kind, source)
            store.root.mkdir(parents=True, exist_ok=True)
            store.root.chmod(0o755)
            mm = self.manifest.multi_model
            memory = mm.memory_mb if kind == "memory" else None
            server = Server(self.image, env={**self.manifest.serving.env, **mm.env, "SAGEMAKER_MULTI_MODEL": "true"},
                            volumes={store.root: "/opt/ml/models:ro"}, labels=self.labels, memory_mb=memory,
                            name=containers.container_name(f"conform-mme-{kind}"))
            # the memory server is MM-11's only when the limit is what stops it (killed, 137); a server
            # that never answers /ping 200 without a model breaks MM-02 whatever its memory
            blame = "MM-02"
            try:
                server.start()
            except RuntimeError as exc:
                raise Blocked("C-01", str(exc)) from exc
            t0 = time.monotonic()
            deadline = t0 + self.manifest.serving.ready_timeout
            seen: list[int] = []
            while time.monotonic() < deadline:
                try:
                    r = server.request("GET", "/ping", timeout=5)
                    seen.append(r.status)
                    if r.status == 200:
                        ready = MultiModelServer(server, store, time.monotonic() - t0, mm.load_timeout)
                        ready.first_listing = ready.listing()
                        return ready
                except (OSError, http.client.HTTPException):
                    pass
                found = wire.listeners(server.name) or []
                mine = [ln for ln in found if ln.port == server.port]
                if mine and all(wire.is_loopback(ln.address) for ln in mine):
                    raise Blocked("S-05", f"port {server.port} listens on loopback only")
                if not server.running():
                    code = server.exit_code()
                    killed = bool(memory) and code == 137
                    more = f": killed, raise [multi_model] memory_mb above {memory}" if killed else ""
                    raise Blocked("MM-11" if killed else blame, f"SAGEMAKER_MULTI_MODEL=true: container exited "
                                                                f"({code}{more}): {server.logs()[-600:]}")
                time.sleep(0.2)
            raise Blocked(blame, f"SAGEMAKER_MULTI_MODEL=true with no model: no /ping 200 within "
                                 f"{self.manifest.serving.ready_timeout:.0f} s (statuses {sorted(set(seen))})")
        return self.once(f"mme:{kind}", make)

    def listeners(self, served: Served, settle: float = 1.0) -> list[wire.Listener]:
        """Listening sockets once the server listens at all (then ``settle`` s for the rest)."""
        deadline = time.monotonic() + self.manifest.serving.ready_timeout
        while time.monotonic() < deadline:
            found = wire.listeners(served.server.name)
            if found is None:
                raise Skip("cannot read /proc/net/tcp of the container")
            if found:
                time.sleep(settle)
                return wire.listeners(served.server.name) or found
            if not served.server.running():
                raise Blocked("S-03", f"container exited ({served.server.exit_code()})")
            time.sleep(0.2)
        raise Blocked("S-08", "no listening socket")

