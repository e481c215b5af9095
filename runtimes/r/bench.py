"""Serving benchmark for the R runtime: one run, printed as a table (NOT a test).

    .venv/bin/python runtimes/r/bench.py [--seconds 5]

Needs the images ``rosetta-example/iris-r:latest`` and ``…:rpy2`` (see README) and Debian's
``wrk`` on the host. Each configuration runs alone (one container at a time) on 127.0.0.1:
req/s for one CSV row at c=1 keep-alive for the plumber flavour, the rpy2 flavour and one
plumber process "as shipped" (AWS example setup: plumb(), no NODELAY shim); plumber with 2
vs 1 worker at c=8; time from ``docker run`` to the first ``/ping`` 200.

Every point is the best of ``--rounds`` wrk runs of ``--seconds`` each: the build machines
are shared and noisy (other jobs steal CPU), and the best round is the least disturbed one.
"""

from __future__ import annotations

import argparse
import http.client
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sagemaker_rosetta.containers import Server, ml_root, run  # noqa: E402

PLUMBER = "rosetta-example/iris-r:latest"
RPY2 = "rosetta-example/iris-r:rpy2"
LUA = """wrk.method = "POST"
wrk.body = "5.9,3.0,5.1,1.8\\n"
wrk.headers["Content-Type"] = "text/csv"
wrk.headers["Accept"] = "text/csv"
"""
AS_SHIPPED = ("Rscript", "-e", 'pr <- plumber::plumb("/bench/as_shipped.R"); pr$run(host = "0.0.0.0", port = 8080)')


@dataclass
class Point:
    name: str
    rps: float
    p50_ms: float
    first_ping_s: float


def train(tmp: Path) -> Path:
    ml = ml_root(tmp / "ml", hyperparameters={"ntree": "100", "target": "species", "seed": "7"},
                 channels={"train": {"train.csv": (ROOT / "examples/iris/data/train.csv").read_text()}})
    res = run(PLUMBER, ["train"], volumes={ml: "/opt/ml"})
    if res.returncode != 0:
        raise SystemExit(f"training failed:\n{res.stderr}")
    return ml / "model"


def first_ping(srv: Server, t0: float, timeout: float = 60) -> float:
    while time.monotonic() - t0 < timeout:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", srv.host_port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return time.monotonic() - t0
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{srv.image} not ready:\n{srv.logs()[-2000:]}")


def wrk(port: int, conns: int, seconds: int, script: Path) -> tuple[float, float]:
    # one wrk thread drives 8 connections at these rates; a second one would only compete
    # with the two R workers for this machine's 2 cores
    out = subprocess.run(["wrk", "-t", "1", "-c", str(conns), "-d", f"{seconds}s", "--latency",
                          "-s", str(script), f"http://127.0.0.1:{port}/invocations"],
                         capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    p50 = float(m.group(1)) * scale[m.group(2)] if m else float("nan")
    return rps, p50


def measure(name: str, image: str, model: Path, script: Path, seconds: int, rounds: int, conns: int = 1,
            env: dict[str, str] | None = None, args: tuple[str, ...] = ("serve",),
            extra: tuple[str, ...] = ()) -> Point:
    volumes: dict[str | Path, str] = {model: "/opt/ml/model:ro", Path(__file__).parent / "bench": "/bench:ro"}
    srv = Server(image, env=env or {}, volumes=volumes, args=args, extra=extra)
    t0 = time.monotonic()
    try:
        srv.start()
        ready = first_ping(srv, t0)
        wrk(srv.host_port, conns, 1, script)  # warm-up
        rps, p50 = max(wrk(srv.host_port, conns, seconds, script) for _ in range(rounds))
        return Point(name, rps, p50, ready)
    finally:
        srv.remove()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per point (best is kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        script = tmp / "post.lua"
        script.write_text(LUA)
        model = train(tmp)
        s, n = args.seconds, args.rounds
        pts = [
            measure("plumber flavour (2 workers), c=1", PLUMBER, model, script, s, n),
            measure("rpy2 flavour (2 workers), c=1", RPY2, model, script, s, n),
            measure("as shipped (1 plumber, no shim), c=1", PLUMBER, model, script, s, n,
                    args=AS_SHIPPED, extra=("--entrypoint", "")),
            measure("plumber 2 workers, c=8", PLUMBER, model, script, s, n, conns=8,
                    env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}),
            measure("plumber 1 worker, c=8", PLUMBER, model, script, s, n, conns=8,
                    env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}),
        ]
    print(f"best of {args.rounds} x {args.seconds} s per point; one CSV row, keep-alive")
    print(f"{'configuration':42} {'req/s':>8} {'p50 ms':>8} {'first /ping 200':>16}")
    for p in pts:
        print(f"{p.name:42} {p.rps:8.0f} {p.p50_ms:8.2f} {p.first_ping_s:15.2f}s")
    base = pts[2].rps
    print(f"\nplumber / as shipped: {pts[0].rps / base:.1f}x (target >= 15x)")
    print(f"rpy2 / as shipped:    {pts[1].rps / base:.1f}x (target >= 35x)")
    print(f"plumber 2 vs 1 worker at c=8: {pts[3].rps / pts[4].rps:.2f}x (target >= 1.6x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
