"""Measurement primitives: contestants, cold start, batch transform (load and PSS: :mod:`rosetta_testkit.load`).

Everything runs on this machine in one run; only ratios within one run are reported.
Traffic stays on 127.0.0.1 and every load is bounded in time.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rosetta_testkit.load import Load, PeakPss, pss_mb, wrk
from sagemaker_rosetta import images
from sagemaker_rosetta.containers import Server, Volumes, ml_root, run

__all__ = ["DATA", "EXAMPLES", "PYTHON", "ROOT", "ROW", "Contestant", "Load", "PeakPss", "advertised_payload_mb",
           "batch_rows_per_second", "cold_start", "jittered_rows", "post", "pss_mb", "split_payloads", "train_example",
           "train_model", "wrk"]

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "iris" / "data"
PYTHON = images.tag("python")
ROW = b"5.1,3.5,1.4,0.2\n"

#: the other runtimes' example images, each serving the iris forest it trains itself (R: randomForest,
#: Julia: the example's own model), measured in the same rounds as the Python contestants
EXAMPLES = {"r-plumber-2w": "iris-r", "r-rpy2-2w": "iris-r-rpy2", "julia-2t": "iris-julia"}


def jittered_rows(n: int, seed: int) -> list[bytes]:
    """``n`` iris-like CSV rows (the first iris flower plus noise), 3 decimals each."""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = np.array([5.1, 3.5, 1.4, 0.2]) + rng.normal(0, 0.1, (n, 4))
    return [("%.3f,%.3f,%.3f,%.3f\n" % tuple(r)).encode() for r in X]


def train_model(work: Path) -> Path:
    """The benchmark model (bench/model: iris forest, 10 trees) trained by the Python runtime image."""
    ml = ml_root(work / "ml", channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
    res = run(PYTHON, ["train"], volumes={ml: "/opt/ml", ROOT / "bench/model": "/opt/program:ro"})
    if res.returncode:
        sys.exit(f"training the benchmark model failed:\n{res.stderr}")
    return ml / "model"


def train_example(image: str, work: Path) -> Path:
    """An example or benchmark image's own model, trained on the iris training table."""
    # R: the same 10-tree forest as the Python contestants
    hp = {"ntree": "10"} if image in (images.tag("iris-r"), images.tag("iris-r-rpy2")) else {}
    ml = ml_root(work, hyperparameters=hp, channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
    res = run(image, ["train"], volumes={ml: "/opt/ml"})
    if res.returncode:
        sys.exit(f"training {image} failed:\n{res.stderr}")
    return ml / "model"


@dataclass
class Contestant:
    """A serving container: an image plus how to start it, and the body it answers."""

    name: str
    image: str
    args: Sequence[str] = ("serve",)
    env: Mapping[str, str] = field(default_factory=dict)
    volumes: Volumes = field(default_factory=dict)

    def server(self) -> Server:
        return Server(self.image, env=self.env, volumes=self.volumes, args=self.args)


def post(port: int, body: bytes, content_type: str = "text/csv", timeout: float = 60) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": content_type})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def cold_start(contestant: Contestant, probe: bytes, timeout: float = 120) -> tuple[float, float, Server]:
    """Seconds from ``docker run`` to the first /ping 200 and to the first good /invocations."""
    server = contestant.server()
    t0 = time.monotonic()
    server.start()
    ping = invoke = 0.0
    while time.monotonic() - t0 < timeout:
        try:
            if not ping and server.request("GET", "/ping", timeout=2).status == 200:
                ping = time.monotonic() - t0
            if ping and post(server.host_port, probe, timeout=5)[0] == 200:
                invoke = time.monotonic() - t0
                return ping, invoke, server
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.01)
    server.remove()
    raise TimeoutError(f"{contestant.name} not ready after {timeout} s:\n{server.logs()[-2000:]}")


def split_payloads(rows: list[bytes], max_bytes: int) -> list[bytes]:
    """MultiRecord: as many whole records as fit in MaxPayloadInMB (B-08)."""
    payloads: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for row in rows:
        if size + len(row) > max_bytes and current:
            payloads.append(b"".join(current))
            current, size = [], 0
        current.append(row)
        size += len(row)
    if current:
        payloads.append(b"".join(current))
    return payloads


def advertised_payload_mb(port: int, default: int = 6) -> int:
    """MaxPayloadInMB a transform job would use: the container's `/execution-parameters` (B-03) when it
    answers, else SageMaker's default of 6 MB (the baselines have no such route)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/execution-parameters")
        res = conn.getresponse()
        body = res.read()
        if res.status == 200:
            value = json.loads(body).get("MaxPayloadInMB")
            if isinstance(value, int) and 1 <= value <= default:
                return value
    except (OSError, ValueError):
        pass
    finally:
        conn.close()
    return default


def batch_rows_per_second(port: int, payloads: list[bytes], concurrency: int, n_rows: int) -> float:
    """Batch transform of the payloads with MaxConcurrentTransforms = ``concurrency``."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda p: post(port, p, timeout=120), payloads))
    took = time.perf_counter() - t0
    for status, body in results:
        if status != 200:
            raise RuntimeError(f"batch payload failed: {status} {body[:200]!r}")
    if sum(body.count(b"\n") for _, body in results) != n_rows:
        raise RuntimeError("batch output record count differs from input")
    return n_rows / took
