"""Adaptive batching (D9) on and off, per runtime, at 1 and 8 connections: one iris row per request.

Each runtime's image serves a row-wise model twice, side by side: with its defaults (batching on
when the image supports it) and with ``ROSETTA_BATCHING=off``; both with 2 workers, measured in
alternating order over the rounds. An image whose start-up log never says ``batching on`` ignores
the setting: its row reads "n/a (not supported by image)" instead of a ratio of two equal servers.

    .venv/bin/python -m bench.batching [--runtimes python r-plumber r-rpy2 julia] [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.harness import EXAMPLES, PYTHON, ROOT, ROW, Contestant, cold_start, train_example, train_model, wrk
from sagemaker_rosetta import images

CONNECTIONS = (1, 8)
#: the runtimes measured: the Python runtime with the benchmark model, the iris example images
RUNTIMES = ("python", "r-plumber", "r-rpy2", "julia")
NOT_SUPPORTED = "n/a (not supported by image)"


@dataclass
class Figures:
    """Medians over the rounds; ``supported`` False when the image ignores ROSETTA_BATCHING."""

    runtime: str
    supported: bool
    #: what the "on" server's start-up log says about batching (its first such line), or that it says nothing
    log_line: str
    rps: dict[str, float]  # "on_c1", "off_c8", ...
    p99_ms: dict[str, float]
    load: float  # 1-minute load average at the end of the runtime's measurement

    def unsupported(self) -> str:
        """Why there is no ratio: the image ignores the setting, or its log says batching is off."""
        return NOT_SUPPORTED if self.log_line == "nothing about batching" else f"n/a (log: {self.log_line})"

    def ratio(self, connections: int) -> float | None:
        if not self.supported:
            return None
        return self.rps[f"on_c{connections}"] / self.rps[f"off_c{connections}"]


def _contestants(runtime: str, work: Path) -> tuple[Contestant, Contestant]:
    if runtime == "python":
        model = train_model(work)
        image, volumes = PYTHON, {model: "/opt/ml/model:ro", ROOT / "bench/model": "/opt/program:ro"}
    else:
        example = images.EXAMPLES[EXAMPLES[{"r-plumber": "r-plumber-2w", "r-rpy2": "r-rpy2-2w",
                                            "julia": "julia-2t"}[runtime]]]
        model = train_example(example.tag, work)
        image, volumes = example.tag, {model: "/opt/ml/model:ro"}
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
    return (Contestant(f"{runtime}-on", image, env=env, volumes=volumes),
            Contestant(f"{runtime}-off", image, env={**env, "ROSETTA_BATCHING": "off"}, volumes=volumes))


def measure(runtime: str, seconds: float, rounds: int) -> Figures:
    """Batching on vs off for one runtime (both servers up at once, alternating rounds)."""
    with tempfile.TemporaryDirectory(prefix="rosetta-bench-batching-") as tmp:
        on, off = _contestants(runtime, Path(tmp))
        servers = {}
        try:
            for c in (on, off):
                servers[c.name] = cold_start(c, ROW)[2]
            said = re.search(r"batching (on|off)[^\n]*", servers[on.name].logs())
            supported = bool(said and said.group(1) == "on")
            log_line = said.group(0) if said else "nothing about batching"
            runs: dict[str, list[tuple[float, float]]] = {}
            for c in (on, off):
                wrk(servers[c.name].host_port, ROW, 8, 1)  # warm-up: every worker has predicted
            for r in range(rounds):
                order = (on, off) if r % 2 == 0 else (off, on)
                for conns in CONNECTIONS:
                    for c in order:
                        load = wrk(servers[c.name].host_port, ROW, conns, seconds)
                        if load.errors:
                            raise RuntimeError(f"{c.name} c={conns}: {load.errors} errors")
                        key = f"{c.name.rsplit('-', 1)[1]}_c{conns}"
                        runs.setdefault(key, []).append((load.rps, load.p99_ms))
        finally:
            for server in servers.values():
                server.remove()
    rps = {k: statistics.median(v[0] for v in vs) for k, vs in runs.items()}
    p99 = {k: statistics.median(v[1] for v in vs) for k, vs in runs.items()}
    return Figures(runtime, supported, log_line, rps, p99, os.getloadavg()[0])


def table(figures: list[Figures]) -> str:
    lines = ["| runtime | c=1 on / off req/s | c=1 on/off | c=8 on / off req/s | c=8 on/off | p99 ms c=8 on / off "
             "| load |", "|---|---|---|---|---|---|---|"]
    for f in figures:
        cells = [f.runtime]
        for conns in CONNECTIONS:
            ratio = f.ratio(conns)
            cells.append(f"{f.rps[f'on_c{conns}']:,.0f} / {f.rps[f'off_c{conns}']:,.0f}")
            cells.append(f.unsupported() if ratio is None else f"{ratio:.2f}")
        cells.append(f"{f.p99_ms['on_c8']:.1f} / {f.p99_ms['off_c8']:.1f}")
        cells.append(f"{f.load:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batching", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runtimes", nargs="*", default=list(RUNTIMES), choices=RUNTIMES)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    figures = []
    for runtime in args.runtimes:
        print(f"batching on/off: {runtime}…", flush=True)
        figures.append(measure(runtime, args.seconds, args.rounds))
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
