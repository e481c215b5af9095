"""Multi-model mode with two worker processes behaving as one server (D6), on the real server.

The server runs in the ``rosetta/python`` image (its locked dependencies) with this working tree's
``rosetta_runtime`` mounted over the image's, so the test needs the image but never a rebuild.
The test model predicts, per row, ``[sum * scale, pid of the worker that predicted, pid of the
worker that loaded this copy]``: an answer says which worker served it. Keep-alive connections
stay with the worker that accepted them, so a request can be sent to a chosen worker. Slow loads
wait for a "gate" file the test creates: nothing depends on timing, and a server that blocked
during a load would not answer at all (each request has a timeout).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagemaker_rosetta.containers import DockerError, Server, container_name

IMAGE = "rosetta/python:latest"
SOURCE = Path(__file__).resolve().parents[1] / "rosetta_runtime"
TIMEOUT = 20  # seconds a request may take; a blocked worker would take until the gate opens

MODEL = '''
import json, os, time
from pathlib import Path
import numpy as np

def fit(data, hp):
    raise NotImplementedError("serving only")

def load(model_dir):
    params = json.loads(Path(model_dir, "params.json").read_text())
    gate = params.get("gate")
    while gate and not Path(gate).exists():  # a slow load, released by the test
        time.sleep(0.01)
    return {"scale": params["scale"], "loaded_by": os.getpid()}

def predict(model, X):
    n = len(X)
    return np.column_stack([X.sum(axis=1) * model["scale"], np.full(n, os.getpid()), np.full(n, model["loaded_by"])])
'''
#: name → (scale, gate file under /gates or None)
MODELS = {"m0": (1, None), "m1": (2, None), "m2": (3, None), "slow": (5, "slow"), "lazy": (7, "lazy")}


pytestmark = pytest.mark.docker


class Conn:
    """One keep-alive connection, hence one worker."""

    def __init__(self, port: int) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)

    def send(self, method: str, path: str, body: bytes | None = None,
             content_type: str | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type} if content_type else {}
        self.http.request(method, path, body=body, headers=headers)
        resp = self.http.getresponse()
        return resp.status, resp.read()

    def load(self, name: str) -> tuple[int, bytes]:
        body = json.dumps({"model_name": name, "url": f"/opt/ml/models/{name}/model"}).encode()
        return self.send("POST", "/models", body, "application/json")

    def invoke(self, name: str) -> tuple[int, list[float]]:
        status, body = self.send("POST", f"/models/{name}/invoke", b"1,2,3\n", "text/csv")
        return status, [float(v) for v in body.decode().strip().split(",")] if status == 200 else []

    def listed(self) -> list[str]:
        status, body = self.send("GET", "/models")
        assert status == 200, body
        return [m["modelName"] for m in json.loads(body)["models"]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    tmp = tmp_path_factory.mktemp("mme-server")
    program, models, gates = tmp / "program", tmp / "models", tmp / "gates"
    program.mkdir()
    gates.mkdir()
    (program / "model.py").write_text(MODEL)
    for name, (scale, gate) in MODELS.items():
        folder = models / name / "model"
        folder.mkdir(parents=True)
        (folder / "params.json").write_text(json.dumps({"scale": scale, "gate": gate and f"/gates/{gate}"}))
        (folder / "rosetta.json").write_text(json.dumps({"runtime": "python", "features": None, "n_features": 3}))
    for p in (tmp, *tmp.rglob("*")):
        p.chmod(0o777 if p.is_dir() else 0o666)
    (gates / "lazy").touch()  # the first load of "lazy" passes; the test closes the gate afterwards
    srv = Server(IMAGE, env={"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_MODEL_SERVER_WORKERS": "2"},
                 volumes={SOURCE: "/opt/rosetta/lib/rosetta_runtime:ro", program: "/opt/program:ro",
                          models: "/opt/ml/models:ro", gates: "/gates:ro"},
                 name=container_name("pyrt-mme"))
    try:
        srv.start()
        srv.wait_ready(60)
        yield srv, gates
    except (DockerError, RuntimeError, TimeoutError) as exc:
        pytest.fail(f"server did not start (is {IMAGE} built? `rosetta build python`): {exc}")
    finally:
        srv.remove()


def test_two_workers_behave_as_one_server(server: tuple[Server, Path]) -> None:
    srv, _ = server
    assert Conn(srv.host_port).load("m0")[0] == 200
    # one keep-alive connection per worker, told apart by the pid in their answers
    by_worker: dict[int, list[Conn]] = {}
    for _ in range(40):
        conn = Conn(srv.host_port)
        status, (value, served_by, loaded_by) = conn.invoke("m0")
        assert status == 200 and value == 6
        assert loaded_by == served_by  # each worker predicts with its own copy, loaded in that worker
        by_worker.setdefault(int(served_by), []).append(conn)
        if len(by_worker) == 2 and all(len(c) >= 3 for c in by_worker.values()):
            break
    assert len(by_worker) == 2, f"connections reached only worker(s) {list(by_worker)}"
    (_, (a, *_)), (pid_b, (b, *_)) = by_worker.items()

    # loaded through A, served by B (B loads its copy on the first request)
    assert a.load("m1")[0] == 200
    status, (value, served_by, loaded_by) = b.invoke("m1")
    assert (status, value, served_by, loaded_by) == (200, 12, pid_b, pid_b)
    # 409 is decided across workers
    assert b.load("m1") == (409, b"model 'm1' is already loaded\n")
    # an unload through B takes effect in A, which held the model
    assert a.invoke("m1")[0] == 200
    assert b.send("DELETE", "/models/m1")[0] == 200
    assert a.invoke("m1")[0] == 404 and "m1" not in a.listed()
    assert a.send("GET", "/models/m1")[0] == 404
    # loaded again (a new load: both workers serve the new copy)
    assert b.load("m1")[0] == 200 and a.invoke("m1")[0] == 200 and b.invoke("m1")[0] == 200


def test_a_load_blocks_nothing_and_is_never_served_half_done(server: tuple[Server, Path]) -> None:
    srv, gates = server
    by_worker: dict[int, list[Conn]] = {}
    assert Conn(srv.host_port).load("m2")[0] == 200
    while len(by_worker) < 2 or any(len(c) < 3 for c in by_worker.values()):
        conn = Conn(srv.host_port)
        status, row = conn.invoke("m2")
        assert status == 200
        by_worker.setdefault(int(row[1]), []).append(conn)
        assert sum(len(c) for c in by_worker.values()) < 60, "connections reach one worker only"
    (_, (a, a2, *_)), (pid_b, (b, b2, b3, *_)) = by_worker.items()

    # A loads "slow" (its load waits for the gate); meanwhile both workers answer everything else
    result: dict[str, tuple[int, bytes]] = {}
    loading = threading.Thread(target=lambda: result.update(slow=a.load("slow")))
    loading.start()
    try:
        for _ in range(5):
            assert a2.invoke("m2")[0] == 200 and b.invoke("m2")[0] == 200  # A's other models too
            assert Conn(srv.host_port).send("GET", "/ping")[0] == 200
        assert b.load("slow")[0] == 409  # a load in progress holds the name, across workers
        for conn in (a2, b):  # never a half-loaded model: not listed, not described, not invoked
            assert conn.invoke("slow")[0] == 404
            assert conn.send("GET", "/models/slow")[0] == 404
            assert "slow" not in conn.listed()
        assert loading.is_alive()  # the gate is still closed: the checks above ran during the load
    finally:
        (gates / "slow").touch()
        loading.join(TIMEOUT)
    assert result["slow"][0] == 200
    status, (value, served_by, _) = b.invoke("slow")  # B loads its own copy now
    assert (status, value, served_by) == (200, 30, pid_b)

    # A registers "lazy"; with the gate closed again, B's first request for it waits for B's own
    # load to finish (never a half-loaded model) while B keeps serving its other models
    assert a.load("lazy")[0] == 200
    (gates / "lazy").unlink()
    waited: dict[str, tuple[int, list[float]]] = {}
    first = threading.Thread(target=lambda: waited.update(lazy=b.invoke("lazy")))
    first.start()
    try:
        for _ in range(5):
            assert b2.invoke("m2")[0] == 200 and b3.send("GET", "/ping")[0] == 200
        assert first.is_alive() and "lazy" not in waited
    finally:
        (gates / "lazy").touch()
        first.join(TIMEOUT)
    status, (value, served_by, loaded_by) = waited["lazy"]
    assert (status, value, served_by, loaded_by) == (200, 42, pid_b, pid_b)
