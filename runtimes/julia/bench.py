"""Benchmark (a script, not a test): Julia vs Python iris images, one run, bounded.

    .venv/bin/python runtimes/julia/bench.py [--repeat N] [--image NAME=IMAGE ...]

For each image: the time from `docker run` to the first /ping 200 and to the first 200 of
/invocations (polled alternately every 20 ms, median of N starts), and req/s for a 1-row CSV
POST on 1 and on 8 keep-alive connections (wrk, 127.0.0.1, 4 s after a 1 s warm-up). `--image`
adds images (e.g. an older build, `before=rosetta-tmp/iris-julia-before`) to the same run, optionally
with serve's environment: `julia-nobatch=rosetta-example/iris-julia:latest,ROSETTA_BATCHING=off`,
`julia-nosysimage=rosetta-example/iris-julia:latest,ROSETTA_SYSIMAGE=off`. Prints the load average.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sagemaker_rosetta.containers import Server, ml_root, run

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "iris" / "data"
IMAGES = {"julia": "rosetta-example/iris-julia:latest", "python": "rosetta-example/iris-python:latest"}
LUA = 'wrk.method = "POST"\nwrk.body = "5.1,3.5,1.4,0.2\\n"\nwrk.headers["Content-Type"] = "text/csv"\n'
ROW = b"5.1,3.5,1.4,0.2\n"


def wrk_rps(port: int, connections: int, seconds: int, script: Path) -> float:
    url = f"http://127.0.0.1:{port}/invocations"
    subprocess.run(["wrk", "-t1", "-c", str(connections), "-d1s", "-s", str(script), url],
                   capture_output=True, timeout=30, check=False)
    out = subprocess.run(["wrk", "-t1", "-c", str(connections), f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=60, check=False).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(out)


def status(port: int, method: str, path: str, body: bytes | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "text/csv"} if body else {})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def cold_start(image: str, model: Path, script: Path | None,
               env: dict[str, str]) -> tuple[float, float, tuple[float, float] | None]:
    """(first /ping 200, first 200 invocation) in seconds from `docker run`; req/s at c=1 and c=8 if `script`."""
    s = Server(image, volumes={model: "/opt/ml/model:ro"}, env=env)
    t0 = time.monotonic()
    try:
        s.start()
        ping = inv = None
        while time.monotonic() - t0 < 180 and (ping is None or inv is None):
            if inv is None and status(s.host_port, "POST", "/invocations", ROW) == 200:
                inv = time.monotonic() - t0
            if ping is None and status(s.host_port, "GET", "/ping") == 200:
                ping = time.monotonic() - t0
            time.sleep(0.02)
        if ping is None or inv is None:
            raise RuntimeError(f"{image} not ready:\n{s.logs()[-2000:]}")
        rps = (wrk_rps(s.host_port, 1, 4, script), wrk_rps(s.host_port, 8, 4, script)) if script else None
        return ping, inv, rps
    finally:
        s.remove()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="cold starts per image (median)")
    parser.add_argument("--image", action="append", default=[], help="NAME=IMAGE, added to the run")
    args = parser.parse_args()
    images = dict(IMAGES, **dict(i.split("=", 1) for i in args.image))
    rows: dict[str, tuple[float, float, tuple[float, float]]] = {}
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at start", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA)
        trained: dict[str, Path] = {}
        for name, spec in images.items():
            image, *pairs = spec.split(",")
            env = dict(p.split("=", 1) for p in pairs)
            if image not in trained:
                base = ml_root(Path(tmp) / name, hyperparameters={"target": '"species"'},
                               channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
                res = run(image, ["train"], volumes={base: "/opt/ml"}, timeout=300)
                if res.returncode != 0:
                    print(f"{name}: training failed:\n{res.stderr[-2000:]}")
                    return 1
                trained[image] = base / "model"
            runs = [cold_start(image, trained[image], script if i == 0 else None, env) for i in range(args.repeat)]
            ping = statistics.median(r[0] for r in runs)
            inv = statistics.median(r[1] for r in runs)
            rps = runs[0][2] or (0.0, 0.0)
            rows[name] = (ping, inv, rps)
            print(f"{name:16s} first /ping 200 {ping:5.2f} s  first 200 invocation {inv:5.2f} s  "
                  f"1-row c=1 {rps[0]:7.0f} req/s  c=8 {rps[1]:7.0f} req/s   ({spec})", flush=True)
    if "julia" in rows and "python" in rows:
        j, p = rows["julia"], rows["python"]
        print(f"julia/python: first /ping 200 {j[0] / p[0]:.2f}x, first invocation {j[1] / p[1]:.2f}x, "
              f"c=8 req/s {j[2][1] / p[2][1]:.2f}x")
    if "julia" in rows and "julia-nobatch" in rows:
        j, n = rows["julia"], rows["julia-nobatch"]
        print(f"julia batching on/off: c=1 {j[2][0] / n[2][0]:.2f}x, c=8 {j[2][1] / n[2][1]:.2f}x")
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
