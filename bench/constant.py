"""The fair cross-language table: each runtime serving the same constant model (issue 20, item 5).

The model (bench/models/constant/{python,r,julia}) returns the fixed vector 0.25,0.25,0.5 for every
row, so what is measured is each runtime's serving overhead: HTTP, decoding, the call into user
code, encoding; not a model. Each image is the runtime image plus that one file (a user's image),
trained by the runtime on the iris table (so the request columns are recorded the same way, D2) and
served with its defaults and 2 workers (Julia: 2 threads). Contestants are interleaved over the
rounds in rotated order; ratios are against the Python runtime in the same run.

    .venv/bin/python -m bench.constant [--seconds 5] [--rounds 3] [--runtimes python r julia]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import ROOT, ROW, Contestant, cold_start, jittered_rows, train_example, wrk
from sagemaker_rosetta import images

LANGUAGES = ("python", "r", "julia")
RUNTIME_IMAGE = {"python": "python", "r": "r", "julia": "julia"}
#: load points: (key, rows per request, connections)
POINTS = (("row_c1", 1, 1), ("row_c8", 1, 8), ("rows1k_c8", 1000, 8))
EXPECTED = b"0.25,0.25,0.5\n"


def tag(language: str) -> str:
    return f"rosetta-bench/constant-{language}:latest"


def build(languages: list[str], say: Any = print, runtimes: bool = False) -> None:
    """One small image per language FROM its runtime image (``runtimes``: rebuild those first)."""
    if runtimes:
        images.build(sorted({RUNTIME_IMAGE[lang] for lang in languages}), say)
    for lang in languages:
        folder = ROOT / "bench" / "models" / "constant" / lang
        say(f"building {tag(lang)} ({folder.relative_to(ROOT)})…")
        images.docker_build(tag(lang), folder / "Dockerfile", folder, say=say)


def measure_one(c: Contestant, seconds: float, rows1k: bytes) -> dict[str, float]:
    ping, invoke, server = cold_start(c, ROW)
    try:
        answer = server.invoke(ROW)
        if answer.body != EXPECTED:  # the same answer in every language, or the table compares nothing
            raise RuntimeError(f"{c.name} answered {answer.body[:80]!r}, expected {EXPECTED!r}")
        result = {"ping_s": ping, "first_invoke_s": invoke}
        wrk(server.host_port, ROW, 8, 1)  # warm-up
        for key, n_rows, conns in POINTS:
            load = wrk(server.host_port, ROW if n_rows == 1 else rows1k, conns, seconds)
            if load.errors:
                raise RuntimeError(f"{c.name} {key}: {load.errors} errors")
            result[key], result[key + "_p50"], result[key + "_p99"] = load.rps, load.p50_ms, load.p99_ms
        result["batching"] = 1.0 if re.search(r"batching on", server.logs()) else 0.0
        result["load"] = os.getloadavg()[0]
        return result
    finally:
        server.remove()


def measure(languages: list[str], seconds: float, rounds: int, say: Any = print) -> dict[str, dict[str, float]]:
    """Medians over the rounds per language (the images must exist: :func:`build`)."""
    rows1k = b"".join(jittered_rows(1000, 2))
    with tempfile.TemporaryDirectory(prefix="rosetta-bench-constant-") as tmp:
        field = [Contestant(lang, tag(lang), env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"},
                            volumes={train_example(tag(lang), Path(tmp) / lang): "/opt/ml/model:ro"})
                 for lang in languages]
        runs: dict[str, list[dict[str, float]]] = {c.name: [] for c in field}
        for r in range(rounds):
            for c in field[r % len(field):] + field[: r % len(field)]:
                say(f"constant model, round {r + 1}/{rounds}: {c.name}")
                runs[c.name].append(measure_one(c, seconds, rows1k))
    return {name: {k: statistics.median(run[k] for run in rs) for k in rs[0]} for name, rs in runs.items()}


def table(med: dict[str, dict[str, float]]) -> str:
    base = med.get("python")
    head = ("| runtime (constant model) | /ping 200 s | first good invoke s | 1 row c1 rps (p50/p99 ms) "
            "| 1 row c8 rps (p50/p99 ms) | 1k rows c8 rps (p50/p99 ms) | batching | load |")
    lines = [head, "|---" * 8 + "|"]
    for name, m in med.items():
        cells = [name, f"{m['ping_s']:.2f}", f"{m['first_invoke_s']:.2f}"]
        cells += [f"{m[k]:,.0f} ({m[k + '_p50']:.2f}/{m[k + '_p99']:.1f})" for k, _, _ in POINTS]
        cells += ["on" if m["batching"] else "off", f"{m['load']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if base:
        lines += ["", "| runtime / Python runtime | first good invoke | 1 row c1 | 1 row c8 | 1k rows c8 |",
                  "|---|---|---|---|---|"]
        for name, m in med.items():
            lines.append(f"| {name} | {m['first_invoke_s'] / base['first_invoke_s']:.2f} | "
                         + " | ".join(f"{m[k] / base[k]:.2f}" for k, _, _ in POINTS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.constant", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runtimes", nargs="*", default=list(LANGUAGES), choices=LANGUAGES)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--build-runtimes", action="store_true",
                        help="rebuild the runtime images first (by default the constant images use them as they are)")
    args = parser.parse_args(argv)
    build(args.runtimes, runtimes=args.build_runtimes)
    print(table(measure(args.runtimes, args.seconds, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
