"""What the image suite's session fixtures hold: trained models, running servers, reliability runs.

Each is created on first use and kept for the session (tests/conftest.py), so no test depends on
which test, file or xdist worker came first.
"""

from __future__ import annotations

import fcntl
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from rosetta_testkit import openapi_fuzz
from rosetta_testkit import reliability as rel
from rosetta_testkit.runtimes import DATA, Runtime
from sagemaker_rosetta.containers import Server, ml_root, pack_model, run, unpack_model


@dataclass
class Trained:
    """The example trained in its own image: what training printed, and the model as SageMaker
    hands it to ``serve`` (model.tar.gz of the model dir, extracted to a fresh dir, S-01)."""

    runtime: Runtime
    stdout: str
    stderr: str
    ml: Path
    model: Path


class Models:
    """The iris example of each runtime, trained once per test run (read-only channel, T-08).

    ``base`` is shared by the xdist workers of one run: a file lock per runtime makes the first
    worker that needs a model train it and the others read it. A failed training is remembered
    (every test that needs the model fails with its log), not repeated per test.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self._done: dict[str, Trained | AssertionError] = {}
        self._lock = threading.Lock()

    def get(self, rt: Runtime) -> Trained:
        with self._lock:
            if rt.key not in self._done:
                try:
                    self._done[rt.key] = self._once(rt)
                except AssertionError as exc:
                    self._done[rt.key] = exc
            found = self._done[rt.key]
        if isinstance(found, AssertionError):
            raise AssertionError(str(found))
        return found

    def _once(self, rt: Runtime) -> Trained:
        work = self.base / rt.key
        work.mkdir(parents=True, exist_ok=True)
        with (work / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            done = work / "trained.json"
            if done.is_file():
                logs = json.loads(done.read_text())
                return Trained(rt, logs["stdout"], logs["stderr"], work / "ml", work / "model")
            trained = self._train(rt, work)
            done.write_text(json.dumps({"stdout": trained.stdout, "stderr": trained.stderr}))
            return trained

    def _train(self, rt: Runtime, work: Path) -> Trained:
        ml = ml_root(work / "ml", hyperparameters=rt.hyperparameters,
                     channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
        res = run(rt.example, ["train"], timeout=300,
                  volumes={ml: "/opt/ml", ml / "input/data/train": "/opt/ml/input/data/train:ro"})
        assert res.returncode == 0, f"{rt}: training failed:\n{res.stdout[-3000:]}{res.stderr[-3000:]}"
        model = unpack_model(pack_model(ml / "model", work / "model.tar.gz"), work / "model")
        return Trained(rt, res.stdout, res.stderr, ml, model)


class Servers:
    """One serving container per runtime for the whole session: the trained example, model mounted
    read-only (S-02), 2 workers. Tests that stop or break a server start their own instead."""

    def __init__(self, models: Models) -> None:
        self.models = models
        self._running: dict[str, Server] = {}
        self._lock = threading.Lock()

    def get(self, rt: Runtime) -> Server:
        with self._lock:
            server = self._running.get(rt.key)
            if server is None or not server.running():
                if server is not None:
                    server.remove()
                model = self.models.get(rt).model
                server = Server(rt.example, volumes={model: "/opt/ml/model:ro"},
                                env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}).start()
                self._running[rt.key] = server
                server.wait_ready(rt.ready_timeout)
            return server

    def remove_all(self) -> None:
        for server in self._running.values():
            server.remove()


#: schemathesis cases per runtime in the image suite (the same cases for every runtime)
OPENAPI_EXAMPLES = 150


class Reliability:
    """The bad-input matrix and the schemathesis run of each runtime, once per session, for the tests
    of each runtime and the cross-runtime parity test (which asks for all of them itself)."""

    def __init__(self, servers: Servers) -> None:
        self.servers = servers
        self._matrix: dict[str, dict[str, rel.CaseResult]] = {}
        self._openapi: dict[str, openapi_fuzz.FuzzResult] = {}
        self._lock = threading.Lock()

    def matrix(self, rt: Runtime) -> dict[str, rel.CaseResult]:
        with self._lock:
            if rt.key not in self._matrix:
                self._matrix[rt.key] = rel.run_matrix(self.servers.get(rt).host_port)
            return self._matrix[rt.key]

    def openapi(self, rt: Runtime) -> openapi_fuzz.FuzzResult:
        with self._lock:
            if rt.key not in self._openapi:
                self._openapi[rt.key] = openapi_fuzz.run(self.servers.get(rt).host_port, OPENAPI_EXAMPLES)
            return self._openapi[rt.key]
