"""Run SageMaker-style containers on the local engine: training jobs and serving containers.

Shared by the tests, the conformance suite and the local pipeline runner, so every
caller publishes ports on 127.0.0.1 only, labels its containers for cleanup and
removes them, even on errors and Ctrl-C.
"""

from __future__ import annotations

import http.client
import itertools
import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sagemaker_rosetta.engine import docker

LABEL = "io.rosetta.managed"
#: this process's label value, so Ctrl-C cleans up our containers and not another run's
RUN_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
#: ``{host_path: "/opt/ml/model:ro"}``
Volumes = Mapping[Path, str] | Mapping[str, str] | Mapping[str | Path, str]
_counter = itertools.count()


def container_name(prefix: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in prefix)[:40]
    return f"rosetta-{safe}-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:6]}"


def _env_args(env: Mapping[str, str] | None) -> list[str]:
    return [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]


def _volume_args(volumes: Volumes | None) -> list[str]:
    """``{host_path: "/opt/ml/model:ro"}`` → ``-v host:container[:ro]``."""
    return [a for host, target in (volumes or {}).items() for a in ("-v", f"{Path(host).resolve()}:{target}")]


def run(
    image: str,
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    volumes: Volumes | None = None,
    extra: Sequence[str] = (),
    timeout: float = 600,
    name: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``docker run --rm`` to completion (a training job); output captured."""
    cname = name or container_name("job")
    cmd = [docker(), "run", "--rm", "--name", cname, "--label", f"{LABEL}={RUN_ID}",
           *_env_args(env), *_volume_args(volumes), *extra, image, *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    finally:
        subprocess.run([docker(), "rm", "-f", cname], capture_output=True, check=False)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Server:
    """A detached ``IMAGE serve`` container published on 127.0.0.1."""

    image: str
    env: Mapping[str, str] = field(default_factory=dict)
    volumes: Volumes = field(default_factory=dict)
    port: int = 8080
    extra: Sequence[str] = ()
    args: Sequence[str] = ("serve",)
    name: str = field(default_factory=lambda: container_name("serve"))
    host_port: int = 0

    def start(self) -> Server:
        cmd = [docker(), "run", "-d", "--name", self.name, "--label", f"{LABEL}={RUN_ID}",
               "-p", f"127.0.0.1::{self.port}", *_env_args(self.env), *_volume_args(self.volumes),
               *self.extra, self.image, *self.args]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"docker run {self.image} failed: {res.stderr.strip()}")
        out = subprocess.run([docker(), "port", self.name, f"{self.port}/tcp"],
                             capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("127.0.0.1:"):
                self.host_port = int(line.rsplit(":", 1)[1])
        if not self.host_port:
            raise RuntimeError(f"no published port for {self.name}: {out!r}")
        return self

    # -- HTTP -------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout: float = 60) -> Response:
        """One request on a fresh connection; only the headers given are sent (no default Accept)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.host_port, timeout=timeout)
        t0 = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data,
                            time.perf_counter() - t0)
        finally:
            conn.close()

    def invoke(self, body: bytes, content_type: str | None = "text/csv", accept: str | None = None,
               **kw: object) -> Response:
        headers = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        return self.request("POST", "/invocations", body, headers, **kw)  # type: ignore[arg-type]

    def wait_ready(self, timeout: float = 120) -> float:
        """Poll ``/ping`` until 200; return seconds waited. Raises with the log tail on failure."""
        t0 = last_check = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                if self.request("GET", "/ping", timeout=2).status == 200:
                    return time.monotonic() - t0
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() - last_check > 1:  # docker inspect is slow: not on every poll
                last_check = time.monotonic()
                if not self.running():
                    raise RuntimeError(f"container {self.name} exited ({self.exit_code()}):\n{self.logs()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.image} not ready after {timeout:.0f} s:\n{self.logs()[-3000:]}")

    # -- lifecycle ----------------------------------------------------------------------------
    def running(self) -> bool:
        out = subprocess.run([docker(), "inspect", "-f", "{{.State.Running}}", self.name],
                             capture_output=True, text=True, check=False).stdout.strip()
        return out == "true"

    def exit_code(self) -> int | None:
        out = subprocess.run([docker(), "inspect", "-f", "{{.State.ExitCode}}", self.name],
                             capture_output=True, text=True, check=False).stdout.strip()
        return int(out) if out.lstrip("-").isdigit() else None

    def logs(self) -> str:
        res = subprocess.run([docker(), "logs", self.name], capture_output=True, text=True, check=False)
        return res.stdout + res.stderr

    def kill(self, signal: str = "TERM") -> None:
        subprocess.run([docker(), "kill", "-s", signal, self.name], capture_output=True, check=False)

    def wait_exit(self, timeout: float) -> int | None:
        """Wait for the container to exit; its exit code, or None on timeout."""
        try:
            out = subprocess.run([docker(), "wait", self.name], capture_output=True, text=True,
                                 timeout=timeout, check=False).stdout.strip()
            return int(out) if out.lstrip("-").isdigit() else None
        except subprocess.TimeoutExpired:
            return None

    def exec(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([docker(), "exec", self.name, *cmd], capture_output=True, text=True, check=False)

    def remove(self) -> None:
        subprocess.run([docker(), "rm", "-f", self.name], capture_output=True, check=False)


@contextmanager
def serving(image: str, *, ready: bool = True, ready_timeout: float = 120, **kw: object) -> Iterator[Server]:
    """Start a serving container, optionally wait for ``/ping`` 200, always remove it."""
    server = Server(image, **kw)  # type: ignore[arg-type]
    try:
        server.start()
        if ready:
            server.wait_ready(ready_timeout)
        yield server
    finally:
        server.remove()


def cleanup_all(every_run: bool = False) -> None:
    """Remove the containers this process started (e.g. after Ctrl-C); ``every_run``: all Rosetta's."""
    selector = LABEL if every_run else f"{LABEL}={RUN_ID}"
    ids = subprocess.run([docker(), "ps", "-aq", "--filter", f"label={selector}"],
                         capture_output=True, text=True, check=False).stdout.split()
    if ids:
        subprocess.run([docker(), "rm", "-f", *ids], capture_output=True, check=False)


def image_config(image: str) -> dict[str, object]:
    """``docker image inspect`` Config section."""
    import json

    out = subprocess.run([docker(), "image", "inspect", image], capture_output=True, text=True, check=True).stdout
    cfg = json.loads(out)[0]["Config"]
    return dict(cfg)


def ml_root(base: Path, *, hyperparameters: Mapping[str, str] | None = None,
            channels: Mapping[str, Path | Mapping[str, str]] | None = None,
            hosts: Sequence[str] = ("algo-1",), content_type: str | None = "text/csv") -> Path:
    """Lay out a fake ``/opt/ml`` under ``base`` (T-01, T-04, T-05, T-07).

    ``channels`` maps a channel name to a directory to copy, or to ``{filename: text}``.
    """
    import json
    import shutil

    cfg = base / "input" / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    for sub in ("model", "output/data", "checkpoints"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (cfg / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters or {})))
    data_cfg: dict[str, dict[str, str]] = {}
    for ch, src in (channels or {}).items():
        dst = base / "input" / "data" / ch
        dst.mkdir(parents=True, exist_ok=True)
        if isinstance(src, Path):
            for f in src.iterdir():
                if f.is_file():
                    shutil.copy(f, dst / f.name)
        else:
            for fname, text in src.items():
                (dst / fname).write_text(text)
        entry = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                 "RecordWrapperType": "None"}
        if content_type:
            entry["ContentType"] = content_type
        data_cfg[ch] = entry
    (cfg / "inputdataconfig.json").write_text(json.dumps(data_cfg))
    (cfg / "resourceconfig.json").write_text(json.dumps(
        {"current_host": hosts[0], "hosts": sorted(hosts), "network_interface_name": "eth0"}))
    # containers may run as another user: let them write outputs
    for p in [base, *base.rglob("*")]:
        if p.is_dir():
            p.chmod(0o777)
    return base


def pack_model(model_dir: Path, tarball: Path) -> Path:
    """``model.tar.gz`` of the model dir's *contents*, files at the archive root, as SageMaker packs it (T-14)."""
    import tarfile

    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "w:gz") as tar:
        for p in sorted(model_dir.iterdir()):
            tar.add(p, arcname=p.name)
    return tarball


def unpack_model(tarball: Path, dest: Path) -> Path:
    """Extract ``model.tar.gz`` into a fresh model dir, as SageMaker does before ``serve`` (S-01).

    Readable by any container user; callers mount it read-only (S-02).
    """
    import tarfile

    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest
