"""Benchmark (a script, not a test): Julia vs Python iris images, one run, bounded.

    .venv/bin/python runtimes/julia/bench.py

Prints req/s for a 1-row CSV POST on 8 keep-alive connections (wrk, 127.0.0.1, 4 s per
point after a 1 s warm-up) and the time from `docker run` to the first /ping 200.
"""

from __future__ import annotations

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


def main() -> int:
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA)
        for lang, image in IMAGES.items():
            hps = {"target": '"species"'}
            base = ml_root(Path(tmp) / lang, hyperparameters=hps,
                           channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
            res = run(image, ["train"], volumes={base: "/opt/ml"}, timeout=300)
            if res.returncode != 0:
                print(f"{lang}: training failed:\n{res.stderr[-2000:]}")
                return 1
            s = Server(image, volumes={base / "model": "/opt/ml/model:ro"})
            t0 = time.monotonic()
            try:
                s.start()
                s.wait_ready(180)
                first = time.monotonic() - t0
                rps = wrk_rps(s.host_port, 8, 4, script)
            finally:
                s.remove()
            results[lang] = (rps, first)
            print(f"{lang:7s} c=8 1-row: {rps:9.0f} req/s   first /ping 200: {first:5.2f} s", flush=True)
    j, p = results["julia"], results["python"]
    print(f"julia/python req/s: {j[0] / p[0]:.2f}x   time to first 200: {j[1] / p[1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
