"""``./dev bench`` (``python -m bench [PART ...]``): every benchmark of the project, in one run.

Parts, each selectable by name and all in the default run: ``serving`` (the Python runtime vs bare
ASGI, FastAPI and the in-process limit, with the R and Julia example images in the same rounds; batch
transform), ``batching`` (D9 on/off per runtime at 1 and 8 connections), ``constant`` (the same constant
model in the three runtimes), then the scripts of :data:`OTHER_PARTS` (multi-model mode, the endpoint
hop, R, Julia, the pipeline runner, the cached re-run, multi-host and parallel tuning). Contestants are
interleaved over rounds in rotated order; every figure is a ratio to a baseline measured in the same run
(never compare across runs). A full run writes ``docs/benchmarks.md`` with PNG plots and issue 20's
targets table; a partial run prints its report (``--out`` to keep it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import batching, constant
from bench.batching import Figures
from bench.harness import (
    EXAMPLES,
    PYTHON,
    ROOT,
    ROW,
    Contestant,
    PeakPss,
    advertised_payload_mb,
    batch_rows_per_second,
    cold_start,
    jittered_rows,
    post,
    split_payloads,
    train_example,
    train_model,
    wrk,
)
from sagemaker_rosetta import images
from sagemaker_rosetta.containers import run

BASELINES = images.tag("bench-baselines")
#: the endpoint hop's benchmark (a module of the endpoint package; a part whose script is missing says so)
ENDPOINT_BENCH = "sagemaker_rosetta.endpoint.bench"
#: the batching part's runtime for each example contestant
BATCHING_RUNTIME = {"r-plumber-2w": "r-plumber", "r-rpy2-2w": "r-rpy2", "julia-2t": "julia"}
MIB = 1024 * 1024

#: the serving part's ratios (measure, numerator, denominator, key, target, higher is better); issue 20's
#: targets, which read several parts, are :data:`ISSUE_20`
TARGETS = [
    ("Python runtime, 1 row, 8 connections / bare ASGI (1 worker)", "rosetta-2w", "bare-asgi", "row_c8", 3.0, True),
    ("Python runtime, 1 row, 1 connection / bare ASGI", "rosetta-2w", "bare-asgi", "row_c1", 0.9, True),
    ("Python runtime, 1,000 rows, 8 connections / bare ASGI", "rosetta-2w", "bare-asgi", "rows1k_c8", 1.5, True),
    ("Python runtime, batch rows/s / in-process predict limit", "rosetta-2w", "inproc", "batch_mct2", 0.5, True),
    ("Python runtime, cold start to first good invocation / bare ASGI", "rosetta-2w", "bare-asgi", "first_invoke_s",
     1.0, False),
    ("peak PSS, Python runtime 2 workers / FastAPI 2 workers", "rosetta-2w", "fastapi-2w", "pss_mb", 1.0, False),
    ("Julia, 1 row, 8 connections / Python runtime (same model family)", "julia-2t", "rosetta-2w", "row_c8", 1.0,
     True),
]

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
def once(X):
    t0 = time.perf_counter(); m.predict_proba(X); return time.perf_counter() - t0
batch = 200000 / sorted(once(big) for _ in range(5))[2]  # the median of 5 calls: one call is noisy
print(json.dumps({"row_c1": rate(one, SECONDS), "rows1k_c8": rate(k, SECONDS),
                  "batch_mct1": batch, "batch_mct2": batch}))
'''


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
            for mct in (1, 2):  # the median of 3 passes, like the in-process limit's median of 5 calls
                result[f"batch_mct{mct}"] = statistics.median(
                    batch_rows_per_second(server.host_port, batch, mct, len(rows)) for _ in range(3))
        result["pss_mb"] = pss.peak
        result["load"] = os.getloadavg()[0]
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


def versions() -> str:
    res = run(BASELINES, ["python3", "-c", "import sys, numpy, sklearn, uvicorn, fastapi, pandas; print("
              "f'Python {sys.version.split()[0]}, numpy {numpy.__version__}, scikit-learn {sklearn.__version__}, '"
              "f'uvicorn {uvicorn.__version__}, FastAPI {fastapi.__version__}, pandas {pandas.__version__}')"])
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return res.stdout.strip() + "; " + (wrk_v.stdout + wrk_v.stderr).splitlines()[0].split(" [")[0]


def report(med: dict[str, dict[str, float]], args: argparse.Namespace, meta: str, out: Path | None) -> str:
    """The serving part's section from the medians per contestant (plots beside ``out``, when written)."""
    keys = [("ping_s", "/ping 200 s"), ("first_invoke_s", "first good invoke s"), ("pss_mb", "peak PSS MB"),
            ("row_c1", "1 row c1 rps (p50/p99 ms)"), ("row_c8", "1 row c8 rps (p50/p99 ms)"),
            ("rows1k_c8", "1k rows c8 rps (p50/p99 ms)"), ("batch_mct1", "batch rows/s MCT1"),
            ("batch_mct2", "batch rows/s MCT2"), ("payload_6mb_s", "one ~6 MB payload s"), ("load", "load")]
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
            elif k == "load":
                cells.append(f"{m[k]:.1f}")
            else:
                cells.append(f"{m[k]:,.0f}")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    ratio_keys = ["row_c1", "row_c8", "rows1k_c8", "batch_mct1", "batch_mct2"]
    ratios = ["| contestant | " + " | ".join(f"{k} / bare-asgi" for k in ratio_keys) + " |", "|---" * 6 + "|"]
    for name, m in med.items():
        ratios.append(f"| {name} | " + " | ".join(f"{m[k] / med['bare-asgi'][k]:.2f}" for k in ratio_keys) + " |")
    targets = ["| measure | target | measured | met |", "|---|---|---|---|"]
    for label, num, den, key, target, higher in TARGETS:
        if num not in med or den not in med:
            continue
        value = med[num][key] / med[den][key]
        ok = value >= target if higher else value <= target
        targets.append(f"| {label} | {'≥' if higher else '≤'} {target} | {value:.2f} | {'yes' if ok else 'NO'} |")
    plot = [f"![throughput and p99]({plot_results(med, out.parent).name})", ""] if out is not None else []
    return "\n".join([
        "## Python serving: the runtimes vs the baselines", "",
        f"{args.rounds} rounds, contestants rotated, {args.seconds:g} s per load point, "
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
        "### Results", "", *lines, "", "### Ratios (same run)", "", *ratios, "", "### Serving targets", "",
        *targets, "", *plot,
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


#: the benchmarks that run as their own scripts, after the in-process parts (each prints its own table and
#: its ratios vs a baseline of the same run); name → (section title, command line from the repository root)
OTHER_PARTS: dict[str, tuple[str, list[str]]] = {
    "mme": ("Multi-model mode of the Python runtime: warm invoke vs single-model, memory per model",
            ["runtimes/python/bench_mme.py"]),
    "mme-endpoint": ("Multi-model endpoint: 100 models round-robin at c=8 under a budget for 20, per runtime",
                     ["-m", "bench.mme_endpoint"]),
    "endpoint": ("Local endpoint: a serial inference pipeline through the front vs its containers called directly",
                 ["-m", ENDPOINT_BENCH]),
    "r": ("R runtime: plumber and rpy2 flavours vs plumber as shipped", ["runtimes/r/bench.py"]),
    "julia": ("Julia runtime vs the Python runtime", ["runtimes/julia/bench.py"]),
    "pipeline": ("Local pipeline runner vs the SDK's LocalPipelineSession",
                 ["orchestrator/bench/local_vs_sdk.py", "--repeat", "5"]),  # one run is noisy: the median of 5
    "pipeline-cache": ("Cached re-run of the iris pipeline: whole `rosetta pipeline run` commands",
                       ["orchestrator/bench/cached_rerun.py", "--cli-only"]),
    "scale-out": ("Multi-host XGBoost (1, 2, 3 hosts) and tuning with 1 vs 2 parallel jobs",
                  ["orchestrator/bench/scale_out.py"]),
}
METHOD = """\
`./dev bench [PART ...]` runs the parts named (all by default: serving, batching, constant, mme,
mme-endpoint, endpoint, r, julia, pipeline, pipeline-cache, scale-out); `--no-build` uses the images as they are.

Method. Everything runs on this machine, in containers started from the project's images, load from
Debian's `wrk` (1 thread, keep-alive) on 127.0.0.1; contestants of a part are measured in rotated or
alternating order over the rounds and medians are kept, so that a change of machine load hits all of
them alike. Every figure below is a ratio to a baseline measured in the same run: the in-process limit
(`predict_proba` in a loop, no HTTP), bare ASGI, the Python runtime, or the same image with batching off.
The load average is printed beside the parts: on a shared machine it says how much to trust them.
Batch transform = 200,000 iris rows in MultiRecord CSV payloads of the size the container advertises
(Rosetta: 2 MB, 3 payloads) with MaxConcurrentTransforms 1 and 2, each the median of 3 passes; its
in-process limit is the median of 5 `predict_proba` calls on the 200,000 rows (a first call also pays
the page faults of fresh memory, so it is slower; runs before 2 December used that one call)."""

#: the parts measured in this process, first (their figures feed issue 20's targets table)
INPROCESS_PARTS = ("serving", "batching", "constant")
PARTS = (*INPROCESS_PARTS, *OTHER_PARTS)
#: example images the script parts need (built in a full run)
PART_EXAMPLES = {"mme": ["iris-python"],
                 "mme-endpoint": ["iris-python", "iris-r", "iris-r-rpy2", "iris-julia"],
                 "endpoint": ["chain-r", "chain-python", "chain-julia"],
                 "pipeline": ["iris-python", "iris-r", "iris-julia"],
                 "pipeline-cache": ["iris-python", "iris-r", "iris-julia"], "scale-out": ["xgboost"]}


def other_parts(names: list[str]) -> dict[str, str]:
    """Run the script parts; their outputs as markdown sections by name."""
    sections = {}
    for name in names:
        title, script = OTHER_PARTS[name]
        module = script[0] == "-m"
        if not (_module_exists(script[1]) if module else (ROOT / script[0]).is_file()):
            sections[name] = (f"\n## {title}\n\nNot run: `{script[module]}` does not exist yet (its slot in "
                              "`./dev bench`).\n")
            continue
        print(f"running {' '.join(script)}…", flush=True)
        load = os.getloadavg()[0]
        res = subprocess.run([sys.executable, *script], cwd=ROOT, capture_output=True, text=True, check=False)
        status = "" if res.returncode == 0 else f" (exit {res.returncode})"
        output = (res.stdout + ("\n" + res.stderr[-2000:] if res.returncode else "")).strip()
        output = re.sub(r"\x1b\[[0-9;]*m", "", output)  # docker-compose colours
        sections[name] = (f"\n## {title}{status}\n\n`python {' '.join(script)}`, same session, load average "
                          f"{load:.1f} at its start:\n\n```\n{output}\n```\n")
    return sections


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its package is missing too
        return False


def _ratio_row(label: str, target: float, higher: bool, value: float | None, missing: str) -> str:
    if value is None:
        return f"| {label} | {'≥' if higher else '≤'} {target} | {missing} | - |"
    ok = value >= target if higher else value <= target
    return f"| {label} | {'≥' if higher else '≤'} {target} | {value:.2f} | {'yes' if ok else 'NO'} |"


def issue_20_targets(serving: dict[str, dict[str, float]] | None, batching: dict[str, Figures],
                     constant: dict[str, dict[str, float]] | None, sections: dict[str, str]) -> str:
    """Issue 20's table from whichever parts ran; a part that did not run says so in its row."""
    not_run = "not run in this session"

    def serve(num: str, den: str, key: str) -> float | None:
        if serving is None or num not in serving or den not in serving:
            return None
        return serving[num][key] / serving[den][key]

    rows = [_ratio_row("Python, 1 row, c=8, batching on / bare ASGI (1 worker)", 3.0, True,
                       serve("rosetta-2w", "bare-asgi", "row_c8"), not_run)]
    for label, runtime, conns, target in (("Python, 1 row, c=1, batching on / batching off", "python", 1, 0.95),
                                          ("R plumber, 1 row, c=8, batching on / off", "r-plumber", 8, 2.0),
                                          ("R rpy2, 1 row, c=8, batching on / off", "r-rpy2", 8, 2.0),
                                          ("Julia, 1 row, c=8, batching on / off", "julia", 8, 1.0)):
        fig = batching.get(runtime)
        missing = not_run if fig is None else fig.unsupported()
        rows.append(_ratio_row(label, target, True, fig.ratio(conns) if fig else None, missing))
    rows.append(_ratio_row("Python batch rows/s / in-process limit (MCT 2)", 0.5, True,
                           serve("rosetta-2w", "inproc", "batch_mct2"), not_run))
    julia_cold = None
    if constant and "julia" in constant and "python" in constant:  # the same model: a fair cold start
        julia_cold = constant["julia"]["first_invoke_s"] / constant["python"]["first_invoke_s"]
    rows.append(_ratio_row("Julia first good invocation / Python runtime's (constant model)", 1.0, False,
                           julia_cold, not_run))
    found = re.search(r"plumber 2 vs 1 worker at c=8: ([\d.]+)x", sections.get("r", ""))
    rows.append(_ratio_row("R plumber 2 workers / 1 worker at c=8 (R part)", 1.6, True,
                           float(found.group(1)) if found else None, not_run))
    return "\n".join(["| measure | target | measured | met |", "|---|---|---|---|", *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("parts", nargs="*", default=list(PARTS), choices=[[], *PARTS], metavar="PART",
                        help=f"the parts to run, by name (default: all): {', '.join(PARTS)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, help="the report (default: docs/benchmarks.md for a full run, "
                        "else printed only)")
    parser.add_argument("--examples", nargs="*", default=list(EXAMPLES), choices=list(EXAMPLES),
                        help="the R and Julia example images in the serving and batching parts")
    parser.add_argument("--no-build", action="store_true", help="use the images as they are (partial runs while "
                        "others work on the runtimes)")
    args = parser.parse_args(argv)
    parts = [p for p in PARTS if p in (args.parts or PARTS)]  # the default order, whatever the command line's
    full = parts == list(PARTS)
    out: Path | None = args.out or (ROOT / "docs" / "benchmarks.md" if full else None)
    examples = [EXAMPLES[name] for name in args.examples] if {"serving", "batching"} & set(parts) else []
    if not args.no_build:
        runtimes = {"python"} | {images.EXAMPLES[e].runtime for e in examples}
        if "constant" in parts:
            runtimes |= {"python", "r", "julia"}
        images.build(sorted(runtimes), print)
        needed = dict.fromkeys([*examples, *(e for p in parts for e in PART_EXAMPLES.get(p, []))])
        if needed:
            images.build_examples(list(needed), print)
        if "constant" in parts:
            constant.build(list(constant.LANGUAGES))
        if "serving" in parts:
            images.docker_build(BASELINES, ROOT / "bench/baselines/Dockerfile", ROOT)
    sections: list[str] = []
    med: dict[str, dict[str, float]] | None = None
    if "serving" in parts:
        results, meta = serving(args)
        med = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()}
        sections.append(report(med, args, meta, out))
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            (out.parent / "benchmarks-python.json").write_text(json.dumps(results, indent=1))
    batch_figures: dict[str, Figures] = {}
    if "batching" in parts:
        for runtime in ["python", *(BATCHING_RUNTIME[e] for e in args.examples)]:
            print(f"batching on/off: {runtime}…", flush=True)
            batch_figures[runtime] = batching.measure(runtime, args.seconds, args.rounds)
        sections.append("\n## Adaptive batching on / off (D9), 1 row per request, 2 workers\n\n"
                        "Each image twice, side by side: its defaults and `ROSETTA_BATCHING=off`; medians of "
                        f"{args.rounds} alternating rounds of {args.seconds:g} s. Load = 1-minute load average.\n\n"
                        + batching.table(list(batch_figures.values())) + "\n")
    const: dict[str, dict[str, float]] | None = None
    if "constant" in parts:
        const = constant.measure(list(constant.LANGUAGES), args.seconds, args.rounds)
        sections.append("\n## The same constant model in every runtime (serving overhead)\n\n"
                        "`bench/models/constant/{python,r,julia}`: 0.25,0.25,0.5 for every row; each image is "
                        "its runtime image plus that file, 2 workers (Julia: threads), defaults otherwise; "
                        f"{args.rounds} rounds rotated, {args.seconds:g} s per load point, medians.\n\n"
                        + constant.table(const) + "\n")
    scripts = other_parts([p for p in parts if p in OTHER_PARTS])
    head = [f"# Benchmarks{'' if full else ' (parts: ' + ', '.join(parts) + ')'}", "",
            f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({platform.machine()}, "
            f"{_cpus()} cores), load average at the end {os.getloadavg()[0]:.1f}. Only ratios within this one run "
            "are meaningful.", "", METHOD, "", "## Issue 20's targets (this run)", "",
            issue_20_targets(med, batch_figures, const, scripts), ""]
    text = "\n".join(head) + "\n" + "\n".join(sections) + "".join(scripts.values())
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    print(text)
    return 0


def serving(args: argparse.Namespace) -> tuple[dict[str, list[dict[str, float]]], str]:
    """The Python contestants and the example images, interleaved over the rounds (all medians per key)."""
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
        return results, versions()


if __name__ == "__main__":
    sys.exit(main())

