"""Adaptive batching (D9) in the real server: two worker processes, concurrent HTTP clients.

Also: a burst of keep-alive connections spreads over the two workers (``listener.py``).

Like ``test_multimodel_server.py``, the server runs in the ``rosetta/python`` image with this working
tree's ``rosetta_runtime`` mounted over the image's (no rebuild needed). Differential: the mixed good
and bad requests of ``test_batching.py``, sent by 8 concurrent keep-alive clients to a batching server,
get byte for byte the answers one client gets from the same program with ``ROSETTA_BATCHING=off``.
The model's predict takes a few milliseconds (so requests queue, and it predicts on the event loop as
a fast model does with 2 workers) and appends the ids of every call to a file per worker process.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagemaker_rosetta.containers import DockerError, Server, container_name

from .test_batching import Request, mixed_requests

IMAGE = "rosetta/python:latest"
SOURCE = Path(__file__).resolve().parents[1] / "rosetta_runtime"
CLIENTS = 8

MODEL = '''
import json, os, time
from pathlib import Path
import numpy as np
from rosetta_runtime import rowwise

def fit(data, hp):
    raise NotImplementedError("serving only")

def load(model_dir):
    return json.loads(Path(model_dir, "params.json").read_text())

@rowwise
def predict(model, X):
    if (X[:, 0] == -7).all():  # which worker is this? (test_a_burst_of_connections_spreads_over_the_workers)
        return np.full((len(X), 2), float(os.getpid()))
    time.sleep(0.003)  # a model call's fixed cost: concurrent requests queue behind it
    with open(f"/calls/{os.getpid()}.log", "a") as fh:
        fh.write(json.dumps(X[:, 0].tolist()) + "\\n")
    if (X == -999).any():
        raise ValueError("boom")
    out = np.column_stack([X[:, 0], X.sum(axis=1) * model["scale"]])
    return out[:-1] if (X == -1).any() else out
'''

pytestmark = pytest.mark.docker

Answer = tuple[int, str | None, bytes]


def start(tmp: Path, name: str, env: dict[str, str]) -> Server:
    program, model, calls = tmp / "program", tmp / "model", tmp / f"calls-{name}"
    for folder in (program, model, calls):
        folder.mkdir(exist_ok=True)
    (program / "model.py").write_text(MODEL)
    (model / "params.json").write_text(json.dumps({"scale": 1.5}))
    (model / "rosetta.json").write_text(json.dumps({"runtime": "python", "features": None, "n_features": 3}))
    for p in (tmp, *tmp.rglob("*")):
        p.chmod(0o777 if p.is_dir() else 0o666)
    srv = Server(IMAGE, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2", **env},
                 volumes={SOURCE: "/opt/rosetta/lib/rosetta_runtime:ro", program: "/opt/program:ro",
                          model: "/opt/ml/model:ro", calls: "/calls"},
                 name=container_name(f"pyrt-batch-{name}"))
    try:
        srv.start()
        srv.wait_ready(60)
    except (DockerError, RuntimeError, TimeoutError) as exc:
        srv.remove()
        pytest.fail(f"server did not start (is {IMAGE} built? `rosetta build python`): {exc}")
    return srv


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server, Path]]:
    tmp = tmp_path_factory.mktemp("batching-server")
    batching = start(tmp, "on", {})
    try:
        reference = start(tmp, "off", {"ROSETTA_BATCHING": "off"})
        try:
            yield batching, reference, tmp
        finally:
            reference.remove()
    finally:
        batching.remove()


def send(conn: http.client.HTTPConnection, request: Request) -> Answer:
    method, path, body, headers = request
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.getheader("Content-Type"), resp.read()


def concurrently(port: int, requests: list[Request]) -> list[Answer]:
    """``CLIENTS`` keep-alive connections, each sending every CLIENTS-th request in turn."""
    answers: list[Answer | None] = [None] * len(requests)
    failures: list[BaseException] = []

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for i in range(k, len(requests), CLIENTS):
                answers[i] = send(conn, requests[i])
        except BaseException as exc:  # reported below, with the thread's request
            failures.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    assert all(a is not None for a in answers)
    return answers  # type: ignore[return-value]


def test_concurrent_clients_get_the_unbatched_answers(servers: tuple[Server, Server, Path]) -> None:
    batching, reference, tmp = servers
    requests = mixed_requests(7, 400)
    conn = http.client.HTTPConnection("127.0.0.1", reference.host_port, timeout=30)
    try:
        expected = [send(conn, r) for r in requests]
    finally:
        conn.close()
    got = concurrently(batching.host_port, requests)
    for i, (want, have) in enumerate(zip(expected, got, strict=True)):
        assert have == want, f"request {i} {requests[i][3]}: {have!r} != {want!r}"
    assert {a[0] for a in got} >= {200, 400, 406, 415, 500}

    def calls(name: str) -> list[list[float]]:
        return [json.loads(line) for log in sorted((tmp / f"calls-{name}").glob("*.log"))
                for line in log.read_text().splitlines()]

    shared = [c for c in calls("on") if len({int(i) // 100 for i in c}) > 1]
    assert shared, "no predict call was shared between requests"
    assert all(len({int(i) // 100 for i in c}) == 1 for c in calls("off"))  # warm-ups are one zero row
    assert "batching on: up to 512 rows per predict call" in batching.logs()
    assert "batching off (ROSETTA_BATCHING=off)" in reference.logs()


def test_a_burst_of_connections_spreads_over_the_workers(servers: tuple[Server, Server, Path]) -> None:
    """8 keep-alive connections opened at once (a load test, a transform job's concurrent connections):
    both workers get some, where an event loop accepting until its backlog is empty let the first
    worker to wake take them all. Each connection asks its worker's pid."""
    batching, _, _ = servers
    for burst in range(3):
        counts = _burst(batching.host_port)
        assert len(counts) == 2 and counts[0] >= 2, f"burst {burst + 1}: connections per worker {counts}"


def _burst(port: int) -> list[int]:
    """How many of CLIENTS connections opened back to back each worker took (sorted)."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(CLIENTS)]
    try:
        for conn in conns:  # back to back: all in the backlog before a worker wakes
            conn.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        pids = []
        for conn in conns:
            status, _, body = send(conn, ("POST", "/invocations", b"-7,0,0\n", {"Content-Type": "text/csv"}))
            assert status == 200, body
            pids.append(int(float(body.split(b",")[0])))
    finally:
        for conn in conns:
            conn.close()
    return sorted(pids.count(pid) for pid in set(pids))
