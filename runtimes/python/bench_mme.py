"""Benchmark (a script, not a test): multi-model mode of the Python runtime, issue 17's Python part.

    .venv/bin/python runtimes/python/bench_mme.py [--models 20] [--seconds 4] [--rounds 3] [--json FILE]

With the real server in the iris example image (2 workers), one run measures:

- **cold first invoke**: ``POST /models`` of a model never loaded, then its first invocation on a
  fresh connection (that worker may have to load its own copy first): the time SageMaker's first
  ``InvokeEndpoint`` for that model would wait, load included; median and max over ``--models``;
- **warm invoke latency**: wrk, one keep-alive connection (c=1) and eight (c=8), one iris row,
  ``/models/<name>/invoke`` vs ``/invocations`` of the same model in single-model mode, both
  servers up at once and measured in alternating rounds (the ratio is the figure: target ≤ 1.1);
- **memory per loaded model**: the container's summed PSS after every model was invoked through
  both workers, minus before the first load, divided by the number of models.

``measure()`` returns the figures as a dict, for ``./dev bench`` to call.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sagemaker_rosetta.containers import Server, container_name, ml_root, run

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "iris" / "data"
IMAGE = "rosetta-example/iris-python:latest"
ROW = b"5.1,3.5,1.4,0.2\n"
WORKERS = "2"


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wrk(port: int, path: str, connections: int, seconds: float) -> dict[str, float]:
    """req/s, p50 and p99 (ms) and errors of a closed keep-alive loop posting one iris row to ``path``."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/csv"\n'
                          f'wrk.body = "{ROW.decode().strip()}\\n"\n')
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script),
                              f"http://127.0.0.1:{port}{path}"],
                             capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50_ms": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
            "p99_ms": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
            "errors": float(non2xx.group(1)) if non2xx else 0.0}


def pss_mib(server: Server) -> float:
    """The summed PSS of the container's processes (host /proc: run as root)."""
    total = 0
    for proc in server.processes():
        try:
            text = Path(f"/proc/{proc.pid}/smaps_rollup").read_text()
        except OSError:
            continue
        found = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        total += int(found.group(1)) if found else 0
    return total / 1024


def call(port: int, method: str, path: str, body: bytes | None = None,
         content_type: str = "text/csv") -> tuple[int, bytes, float]:
    """One request on a fresh connection: status, body, seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.perf_counter()
    try:
        conn.request(method, path, body=body, headers={"Content-Type": content_type} if body is not None else {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, time.perf_counter() - t0
    finally:
        conn.close()


def trained_model(image: str, work: Path) -> Path:
    base = ml_root(work / "train", hyperparameters={"target": "species"},
                   channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
    done = run(image, ["train"], volumes={base: "/opt/ml"}, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"training failed:\n{done.stderr[-2000:]}")
    return base / "model"


def measure(image: str = IMAGE, models: int = 20, seconds: float = 4, rounds: int = 3,
            say: Any = print) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rosetta-bench-mme-") as tmp:
        work = Path(tmp)
        model = trained_model(image, work)
        names = [f"customer-{i:02d}" for i in range(models)]
        for name in names:
            shutil.copytree(model, work / "models" / name / "model")
        for p in [work, *work.rglob("*")]:
            p.chmod(0o777 if p.is_dir() else 0o666)
        single = Server(image, env={"SAGEMAKER_MODEL_SERVER_WORKERS": WORKERS},
                        volumes={model: "/opt/ml/model:ro"}, name=container_name("pyrt-bench-single"))
        multi = Server(image, env={"SAGEMAKER_MODEL_SERVER_WORKERS": WORKERS, "SAGEMAKER_MULTI_MODEL": "true"},
                       volumes={work / "models": "/opt/ml/models:ro"}, name=container_name("pyrt-bench-mme"))
        try:
            for s in (single, multi):
                s.start()
                s.wait_ready(120)
            idle_pss = pss_mib(multi)
            cold: list[float] = []
            for name in names:
                body = json.dumps({"model_name": name, "url": f"/opt/ml/models/{name}/model"}).encode()
                status, text, loading = call(multi.host_port, "POST", "/models", body, "application/json")
                assert status == 200, text
                status, text, first = call(multi.host_port, "POST", f"/models/{name}/invoke", ROW)
                assert status == 200, text
                cold.append(loading + first)
            for name in names:  # every worker holds every model (fresh connections spread over workers)
                for _ in range(8):
                    assert call(multi.host_port, "POST", f"/models/{name}/invoke", ROW)[0] == 200
            loaded_pss = pss_mib(multi)
            say(f"cold first invoke (load included): median {statistics.median(cold) * 1e3:.0f} ms, "
                f"max {max(cold) * 1e3:.0f} ms over {models} models")
            say(f"memory: {loaded_pss - idle_pss:.1f} MiB PSS for {models} models on {WORKERS} workers = "
                f"{(loaded_pss - idle_pss) / models:.2f} MiB per model (idle server {idle_pss:.0f} MiB)")
            targets = {"single": (single.host_port, "/invocations"),
                       "multi": (multi.host_port, f"/models/{names[0]}/invoke")}
            results: dict[str, dict[int, list[dict[str, float]]]] = {k: {1: [], 8: []} for k in targets}
            for port, path in targets.values():
                wrk(port, path, 8, 1)  # warm-up: every worker has predicted with its copy
            for r in range(rounds):
                order = list(targets) if r % 2 == 0 else list(reversed(targets))
                for c in (1, 8):
                    for key in order:
                        results[key][c].append(wrk(*targets[key], c, seconds))
        finally:
            single.remove()
            multi.remove()

    def med(key: str, c: int, field: str) -> float:
        return statistics.median(x[field] for x in results[key][c])

    figures: dict[str, Any] = {
        "models": models, "workers": int(WORKERS),
        "cold_first_invoke_ms": {"median": statistics.median(cold) * 1e3, "max": max(cold) * 1e3},
        "pss_per_model_mib": (loaded_pss - idle_pss) / models, "idle_pss_mib": idle_pss,
        "warm": {k: {c: {f: med(k, c, f) for f in ("rps", "p50_ms", "p99_ms")} for c in (1, 8)} for k in targets},
        "errors": sum(x["errors"] for k in results for c in results[k] for x in results[k][c]),
    }
    figures["ratio_p50_c1"] = med("multi", 1, "p50_ms") / med("single", 1, "p50_ms")
    figures["ratio_rps_c1"] = med("single", 1, "rps") / med("multi", 1, "rps")
    figures["ratio_rps_c8"] = med("single", 8, "rps") / med("multi", 8, "rps")
    for c in (1, 8):
        s, m = figures["warm"]["single"][c], figures["warm"]["multi"][c]
        say(f"warm c={c}: single {s['rps']:7.0f} req/s p50 {s['p50_ms']:.2f} ms p99 {s['p99_ms']:.2f} ms | "
            f"multi {m['rps']:7.0f} req/s p50 {m['p50_ms']:.2f} ms p99 {m['p99_ms']:.2f} ms")
    say(f"multi/single (same run, median of {rounds} rounds): p50 latency c=1 {figures['ratio_p50_c1']:.3f}x, "
        f"time per request c=1 {figures['ratio_rps_c1']:.3f}x, c=8 {figures['ratio_rps_c8']:.3f}x "
        f"(target ≤ 1.1); errors {figures['errors']:.0f}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = measure(args.image, args.models, args.seconds, args.rounds)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
