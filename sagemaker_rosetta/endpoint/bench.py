"""Hop overhead of a serial inference pipeline behind the local endpoint front.

One iris row through examples/chain's three containers (R standardiser → Python model → Julia
post-processor) as one InvokeEndpoint call through the front, against the same three containers
called directly one after the other by the client (the same-run baseline: the sum of the three
hops without the front). p50/p99 per request at concurrency 1 and 8, keep-alive connections on
both sides, and the ratio chain / direct::

    python -m sagemaker_rosetta.endpoint.bench [--requests 300] [--json out.json]

Needs the chain images (``rosetta setup --examples``); trains the three models first (seconds).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sagemaker_rosetta import images
from sagemaker_rosetta.containers import ml_root, pack_model, run
from sagemaker_rosetta.endpoint import daemon, deploy, spec
from sagemaker_rosetta.endpoint.state import State
from sagemaker_rosetta.images import project_root

STEPS = {"standardise": "chain-r", "model": "chain-python", "label": "chain-julia"}
ROW = b"5.9,3.0,4.2,1.5\n"


def _train(image: str, work: Path) -> Path:
    data = project_root() / "examples" / "iris" / "data" / "train.csv"
    ml = ml_root(work / "ml", hyperparameters={"target": '"species"'},
                 channels={"train": {"train.csv": data.read_text()}})
    res = run(image, ["train"], timeout=300, volumes={ml: "/opt/ml"})
    if res.returncode != 0:
        raise SystemExit(f"error: training {image} failed:\n{res.stdout[-1500:]}{res.stderr[-1500:]}")
    return pack_model(ml / "model", work / "model.tar.gz")


class _Conn:
    """One keep-alive connection per port, per thread."""

    def __init__(self) -> None:
        self.conns: dict[int, http.client.HTTPConnection] = {}

    def post(self, port: int, path: str, body: bytes, ctype: str) -> tuple[bytes, str]:
        conn = self.conns.get(port)
        if conn is None:
            conn = self.conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", path, body=body, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"port {port}{path}: HTTP {resp.status}: {data[:200]!r}")
        return data, resp.getheader("Content-Type") or ""


def _measure(call: Callable[[_Conn], None], concurrency: int, per_thread: int) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        conn = _Conn()
        for _ in range(3):  # warm: connections open, code paths compiled
            call(conn)
        mine = []
        for _ in range(per_thread):
            t0 = time.perf_counter()
            try:
                call(conn)
            except Exception as exc:  # a failed request is counted, never timed
                errors.append(str(exc))
                continue
            mine.append(time.perf_counter() - t0)
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"error: {len(errors)} failed requests, first: {errors[0]}")
    return times


def _pct(xs: list[float], q: int) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] * 1000 if len(xs) > 1 else xs[0] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sagemaker_rosetta.endpoint.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per run (default 300)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rosetta-bench-chain-") as tmp:
        base = Path(tmp)
        archives = {host: _train(images.tag(name), base / host) for host, name in STEPS.items()}
        model = spec.ModelSpec([spec.ContainerSpec(images.tag(STEPS[h]), str(a), h) for h, a in archives.items()],
                               source="bench").checked()
        state = State(base / "state")
        try:
            ep = deploy.up(state, "chain", model, ready_timeout=300)
            url = daemon.ensure_front(state)
            front = int(url.rsplit(":", 1)[1])
            ports = [m.host_port for m in ep.members]

            def chain(conn: _Conn) -> None:
                conn.post(front, "/endpoints/chain/invocations", ROW, "text/csv")

            def direct(conn: _Conn) -> None:
                body, ctype = ROW, "text/csv"
                for port in ports:
                    body, ctype = conn.post(port, "/invocations", body, ctype)

            rows: list[dict[str, Any]] = []
            for c in (1, 8):
                per = max(1, args.requests // c)
                # interleaved halves, so a drift in machine load hits both sides alike
                d1, ch1 = _measure(direct, c, per // 2), _measure(chain, c, per // 2)
                d2, ch2 = _measure(direct, c, per - per // 2), _measure(chain, c, per - per // 2)
                d, ch = d1 + d2, ch1 + ch2
                rows.append({"concurrency": c, "requests": len(ch),
                             "chain_p50_ms": _pct(ch, 50), "chain_p99_ms": _pct(ch, 99),
                             "direct_p50_ms": _pct(d, 50), "direct_p99_ms": _pct(d, 99),
                             "ratio_p50": _pct(ch, 50) / _pct(d, 50), "ratio_p99": _pct(ch, 99) / _pct(d, 99),
                             "hop_overhead_p50_ms": (_pct(ch, 50) - _pct(d, 50)) / len(ports),
                             "loadavg": os.getloadavg()[0]})
        finally:
            deploy.down(state, "chain")
            daemon.stop_front(state)
    print("one iris row through R → Python → Julia: via the front (one InvokeEndpoint) vs the three containers "
          "called directly in turn (same containers, same run)")
    print(f"{'c':>2}  {'n':>4}  {'chain p50':>9}  {'p99':>7}  {'direct p50':>10}  {'p99':>7}  "
          f"{'ratio p50':>9}  {'p99':>5}  {'per hop':>8}  load")
    for r in rows:
        print(f"{r['concurrency']:>2}  {r['requests']:>4}  {r['chain_p50_ms']:>7.2f}ms  {r['chain_p99_ms']:>5.2f}ms  "
              f"{r['direct_p50_ms']:>8.2f}ms  {r['direct_p99_ms']:>5.2f}ms  {r['ratio_p50']:>8.2f}x  "
              f"{r['ratio_p99']:>4.2f}x  {r['hop_overhead_p50_ms']:>6.2f}ms  {r['loadavg']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
