"""``./dev bench`` (``python -m bench``): serving and batch performance, side by side, in one run.

Contestants are interleaved over rounds in rotated order; medians and ratios to the baselines
measured in the same run go to ``docs/benchmarks.md`` with PNG plots. Never compare across runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import (
    Contestant,
    PeakPss,
    advertised_payload_mb,
    batch_rows_per_second,
    cold_start,
    post,
    split_payloads,
    wrk,
)
from sagemaker_rosetta import images
from sagemaker_rosetta.containers import ml_root, run

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "iris" / "data"
BASELINES = images.tag("bench-baselines")
PYTHON = images.tag("python")
ROW = b"5.1,3.5,1.4,0.2\n"
MIB = 1024 * 1024

TARGETS = [  # (measure, numerator, denominator, key, target, higher is better)
    ("Python runtime, 1 row, 8 connections / bare ASGI (1 worker)", "rosetta-2w", "bare-asgi", "row_c8", 1.2, True),
    ("Python runtime, 1 row, 1 connection / bare ASGI", "rosetta-2w", "bare-asgi", "row_c1", 0.9, True),
    ("Python runtime, 1,000 rows, 8 connections / bare ASGI", "rosetta-2w", "bare-asgi", "rows1k_c8", 1.5, True),
    ("Python runtime, batch rows/s / in-process predict limit", "rosetta-2w", "inproc", "batch_mct2", 0.5, True),
    ("Python runtime, cold start to first good invocation / bare ASGI", "rosetta-2w", "bare-asgi", "first_invoke_s",
     1.0, False),
    ("peak PSS, Python runtime 2 workers / FastAPI 2 workers", "rosetta-2w", "fastapi-2w", "pss_mb", 1.0, False),
    ("Julia, 1 row, 8 connections / Python runtime (same model family)", "julia-2t", "rosetta-2w", "row_c8", 1.0,
     True),
]

#: the other runtimes' example images, each serving the iris forest it trains itself (R: randomForest,
#: Julia: the example's own stdlib forest), measured in the same rounds as the Python contestants
EXAMPLES = {"r-plumber-2w": "iris-r", "r-rpy2-2w": "iris-r-rpy2", "julia-2t": "iris-julia"}

INPROC = r'''
import json, pickle, time, numpy as np
m = pickle.load(open("/opt/ml/model/model.pkl", "rb"))
rng = np.random.default_rng(0)
def rate(X, seconds):
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        m.predict_proba(X); n += 1
    return n / (time.perf_counter() - t0)
one = np.array([[5.1, 3.5, 1.4, 0.2]])
k = one + rng.normal(0, .1, (1000, 4))
big = one + rng.normal(0, .1, (200000, 4))
m.predict_proba(one)
t0 = time.perf_counter(); m.predict_proba(big); batch = 200000 / (time.perf_counter() - t0)
print(json.dumps({"row_c1": rate(one, SECONDS), "rows1k_c8": rate(k, SECONDS),
                  "batch_mct1": batch, "batch_mct2": batch}))
'''


def train_model(work: Path) -> Path:
    ml = ml_root(work / "ml", channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
    res = run(PYTHON, ["train"], volumes={ml: "/opt/ml", ROOT / "bench/model": "/opt/program:ro"})
    if res.returncode:
        sys.exit(f"training the benchmark model failed:\n{res.stderr}")
    return ml / "model"


def train_example(image: str, work: Path) -> Path:
    # R: the same 10-tree forest as the Python contestants
    hp = {"ntree": "10"} if image in (images.tag("iris-r"), images.tag("iris-r-rpy2")) else {}
    ml = ml_root(work, hyperparameters=hp, channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
    res = run(image, ["train"], volumes={ml: "/opt/ml"})
    if res.returncode:
        sys.exit(f"training {image} failed:\n{res.stderr}")
    return ml / "model"


def contestants(model: Path, examples: dict[str, Path]) -> list[Contestant]:
    vol = {model: "/opt/ml/model:ro"}
    code = {model: "/opt/ml/model:ro", ROOT / "bench/model": "/opt/program:ro"}
    uv = ["uvicorn", "--app-dir", "/opt/baselines", "--host", "0.0.0.0", "--port", "8080", "--no-access-log"]
    return [
        Contestant("bare-asgi", BASELINES, [*uv, "bare_asgi:app", "--loop", "uvloop", "--http", "httptools"],
                   volumes=vol),
        Contestant("fastapi-1w", BASELINES, [*uv, "fastapi_pandas:app"], volumes=vol),
        Contestant("fastapi-2w", BASELINES, [*uv, "fastapi_pandas:app", "--workers", "2"], volumes=vol),
        Contestant("rosetta-1w", PYTHON, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}, volumes=code),
        Contestant("rosetta-2w", PYTHON, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}, volumes=code),
        *[Contestant(name, images.EXAMPLES[EXAMPLES[name]].tag, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"},
                     volumes={path: "/opt/ml/model:ro"}) for name, path in examples.items()],
    ]


def measure(c: Contestant, seconds: float, rows: list[bytes], payloads: list[bytes], rows1k: bytes
            ) -> dict[str, float]:
    ping, invoke, server = cold_start(c, ROW)
    try:
        result: dict[str, float] = {"ping_s": ping, "first_invoke_s": invoke}
        with PeakPss(server.name) as pss:
            wrk(server.host_port, ROW, 1, 1)  # warm-up
            for key, body, conns in (("row_c1", ROW, 1), ("row_c8", ROW, 8), ("rows1k_c8", rows1k, 8)):
                load = wrk(server.host_port, body, conns, seconds)
                if load.errors:
                    raise RuntimeError(f"{c.name} {key}: {load.errors} errors")
                result[key], result[key + "_p50"], result[key + "_p99"] = load.rps, load.p50_ms, load.p99_ms
            t0 = time.perf_counter()
            status, _ = post(server.host_port, payloads[0])  # the largest MultiRecord payload (≤ 6 MB)
            result["payload_6mb_s"] = time.perf_counter() - t0 if status == 200 else float("nan")
            # like a transform job that sets no MaxPayloadInMB: the container's advertised size, else 6 MB
            mb = advertised_payload_mb(server.host_port)
            batch = payloads if mb == 6 else split_payloads(rows, mb * MIB)
            result["batch_payload_mb"] = mb
            result["batch_mct1"] = batch_rows_per_second(server.host_port, batch, 1, len(rows))
            result["batch_mct2"] = batch_rows_per_second(server.host_port, batch, 2, len(rows))
        result["pss_mb"] = pss.peak
        return result
    finally:
        server.remove()


def inproc(model: Path, seconds: float) -> dict[str, float]:
    script = INPROC.replace("SECONDS", str(seconds))
    res = run(BASELINES, ["python3", "-c", script], volumes={model: "/opt/ml/model:ro"})
    if res.returncode:
        raise RuntimeError(res.stderr)
    out: dict[str, float] = json.loads(res.stdout)
    out["row_c8"] = out["row_c1"]  # one thread: the per-call limit
    return out


def jittered_rows(n: int, seed: int) -> list[bytes]:
    import numpy as np

    rng = np.random.default_rng(seed)
    X = np.array([5.1, 3.5, 1.4, 0.2]) + rng.normal(0, 0.1, (n, 4))
    return [("%.3f,%.3f,%.3f,%.3f\n" % tuple(r)).encode() for r in X]


def versions() -> str:
    res = run(BASELINES, ["python3", "-c", "import sys, numpy, sklearn, uvicorn, fastapi, pandas; print("
              "f'Python {sys.version.split()[0]}, numpy {numpy.__version__}, scikit-learn {sklearn.__version__}, '"
              "f'uvicorn {uvicorn.__version__}, FastAPI {fastapi.__version__}, pandas {pandas.__version__}')"])
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return res.stdout.strip() + "; " + (wrk_v.stdout + wrk_v.stderr).splitlines()[0].split(" [")[0]


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace, meta: str, out: Path) -> str:
    med = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()}
    keys = [("ping_s", "/ping 200 s"), ("first_invoke_s", "first good invoke s"), ("pss_mb", "peak PSS MB"),
            ("row_c1", "1 row c1 rps (p50/p99 ms)"), ("row_c8", "1 row c8 rps (p50/p99 ms)"),
            ("rows1k_c8", "1k rows c8 rps (p50/p99 ms)"), ("batch_mct1", "batch rows/s MCT1"),
            ("batch_mct2", "batch rows/s MCT2"), ("payload_6mb_s", "one ~6 MB payload s")]
    lines = [f"| contestant | {' | '.join(h for _, h in keys)} |", "|---" * (len(keys) + 1) + "|"]
    for name, m in med.items():
        cells = []
        for k, _ in keys:
            if k not in m:
                cells.append("-")
            elif k + "_p50" in m:
                cells.append(f"{m[k]:,.0f} ({m[k + '_p50']:.2f}/{m[k + '_p99']:.1f})")
            elif k.endswith("_s") or k.endswith("6mb_s"):
                cells.append(f"{m[k]:.2f}")
            else:
                cells.append(f"{m[k]:,.0f}")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    ratio_keys = ["row_c1", "row_c8", "rows1k_c8", "batch_mct1", "batch_mct2"]
    ratios = ["| contestant | " + " | ".join(f"{k} / bare-asgi" for k in ratio_keys) + " |", "|---" * 6 + "|"]
    for name, m in med.items():
        ratios.append(f"| {name} | " + " | ".join(f"{m[k] / med['bare-asgi'][k]:.2f}" for k in ratio_keys) + " |")
    targets = ["| measure | target | measured | met |", "|---|---|---|---|"]
    for label, num, den, key, target, higher in TARGETS:
        value = med[num][key] / med[den][key]
        ok = value >= target if higher else value <= target
        targets.append(f"| {label} | {'≥' if higher else '≤'} {target} | {value:.2f} | {'yes' if ok else 'NO'} |")
    plot = plot_results(med, out.parent)
    return "\n".join([
        "# Benchmarks: the runtimes vs the baselines", "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({platform.machine()}, "
        f"{_cpus()} cores); {args.rounds} rounds, contestants rotated, {args.seconds:g} s per load point, "
        "medians. Same model for all (iris random forest, 10 trees, `predict_proba`, 3 columns out).", "",
        f"Versions: {meta}. Load: Debian wrk, 1 thread, keep-alive, 127.0.0.1.", "",
        "Contestants: `inproc` = `predict_proba` in a loop, no HTTP (the limit); `bare-asgi` = raw ASGI under "
        "uvicorn+uvloop+httptools, 1 worker, `np.loadtxt` in, one `%`-format out; `fastapi-Nw` = FastAPI + "
        "pandas, `uvicorn --workers N`; `rosetta-Nw` = `rosetta/python` with `SAGEMAKER_MODEL_SERVER_WORKERS=N`; "
        "`r-plumber-2w`, `r-rpy2-2w`, `julia-2t` = the iris example images with 2 workers (Julia: threads), "
        "each serving the model it trained itself (R: `randomForest`, 10 trees, class labels out; Julia: the "
        "example's multinomial logistic regression, a cheaper model than a forest), so these rows compare "
        "serving stacks, not identical models. "
        "Batch = 200,000 rows (4.6 MB of CSV) in MultiRecord payloads of the size a transform job that sets none "
        "would use: the container's `/execution-parameters` MaxPayloadInMB (Rosetta images: 2 MB, 3 payloads), "
        "else SageMaker's default 6 MB (the baselines: 1 payload); MaxConcurrentTransforms 1 and 2. "
        "\"one ~6 MB payload\" is the whole 4.6 MB body in one request.", "",
        "## Results", "", *lines, "", "## Ratios (same run)", "", *ratios, "", "## Targets", "", *targets, "",
        f"![throughput and p99]({plot.name})", "",
    ])


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def plot_results(med: dict[str, dict[str, float]], folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(med)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.25
    for i, key in enumerate(["row_c1", "row_c8", "rows1k_c8"]):
        xs = [j + i * width for j in range(len(names))]
        axes[0].bar(xs, [med[n].get(key, 0) for n in names], width, label=key)
        axes[1].bar(xs, [med[n].get(key + "_p99", 0) for n in names], width, label=key)
    for ax, title in zip(axes, ["requests/s", "p99 latency ms"], strict=True):
        ax.set_xticks([j + width for j in range(len(names))], names, rotation=20)
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    path = folder / "benchmarks-python.png"
    fig.savefig(path, dpi=90)
    return path


#: the per-runtime benchmarks, run after the Python one in the same session (each prints its own table)
OTHER_PARTS: dict[str, tuple[str, list[str]]] = {
    "r": ("R runtime: plumber and rpy2 flavours vs plumber as shipped", ["runtimes/r/bench.py"]),
    "julia": ("Julia runtime vs the Python runtime", ["runtimes/julia/bench.py"]),
    "pipeline": ("Local pipeline runner vs the SDK's LocalPipelineSession",
                 ["orchestrator/bench/local_vs_sdk.py", "--repeat", "5"]),  # one run is noisy: the median of 5
    "cached": ("Cached re-run of the iris pipeline: whole `rosetta pipeline run` commands",
               ["orchestrator/bench/cached_rerun.py", "--cli-only"]),
}


def other_parts(names: list[str]) -> str:
    sections = []
    for name in names:
        title, script = OTHER_PARTS[name]
        print(f"running {script[0]}…", flush=True)
        res = subprocess.run([sys.executable, *script], cwd=ROOT, capture_output=True, text=True, check=False)
        status = "" if res.returncode == 0 else f" (exit {res.returncode})"
        output = (res.stdout + ("\n" + res.stderr[-2000:] if res.returncode else "")).strip()
        output = re.sub(r"\x1b\[[0-9;]*m", "", output)  # docker-compose colours
        sections.append(f"\n## {title}{status}\n\n`python {script[0]}`, same session:\n\n```\n{output}\n```\n")
    return "".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--examples", nargs="*", default=list(EXAMPLES), choices=list(EXAMPLES),
                        help="the R and Julia example images measured in the same rounds")
    parser.add_argument("--parts", nargs="*", default=list(OTHER_PARTS), choices=list(OTHER_PARTS),
                        help="the other runtimes' benchmarks to run after the Python one")
    args = parser.parse_args(argv)
    images.build(["python"], print)
    if args.examples:
        specs = [images.EXAMPLES[EXAMPLES[name]] for name in args.examples]
        images.build(sorted({spec.runtime for spec in specs}), print)
        images.build_examples([EXAMPLES[name] for name in args.examples], print)
    images.docker_build(BASELINES, ROOT / "bench/baselines/Dockerfile", ROOT)
    rows = jittered_rows(200_000, 1)
    payloads = split_payloads(rows, 6 * MIB)
    rows1k = b"".join(jittered_rows(1000, 2))
    with tempfile.TemporaryDirectory() as tmp:
        model = train_model(Path(tmp))
        examples = {name: train_example(images.EXAMPLES[EXAMPLES[name]].tag, Path(tmp) / name)
                    for name in args.examples}
        field = contestants(model, examples)
        results: dict[str, list[dict[str, float]]] = {"inproc": [], **{c.name: [] for c in field}}
        for r in range(args.rounds):
            order = field[r % len(field):] + field[: r % len(field)]
            results["inproc"].append(inproc(model, args.seconds))
            for c in order:
                print(f"round {r + 1}/{args.rounds}: {c.name}", flush=True)
                results[c.name].append(measure(c, args.seconds, rows, payloads, rows1k))
        meta = versions()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = report(results, args, meta, args.out) + other_parts(args.parts)
    args.out.write_text(text)
    (args.out.parent / "benchmarks-python.json").write_text(json.dumps(results, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

