"""Benchmark (a script, not a test): 100 models behind one local multi-model endpoint, per runtime (issue 17).

    .venv/bin/python -m bench.mme_endpoint [--runtimes python r-plumber r-rpy2 julia] [--models 100]
                                           [--fit 20] [--seconds 60] [--requests 2000] [--json FILE]

For each runtime's iris example image, one run:

1. trains the image's own iris model once and copies its ``model.tar.gz`` under ``--models`` keys
   (``m000.tar.gz`` …): one archive per key is what loading and the LRU see. Each archive carries
   :data:`PAD_BYTES` of incompressible padding: the runtimes charge a model ``max(size on disk,
   memory growth at load)`` (× workers for worker processes, D6), and an iris model alone costs a
   fraction of a MiB, too little for a whole-MiB ``ROSETTA_MME_MEMORY_MB`` to hold exactly ``--fit``
   models;
2. sets the endpoint's budget to ``--fit`` + ½ models at the least a model can cost by the runtime's
   own accounting, its size on disk × worker processes (Julia: one process). A load that grows the
   memory by more costs more, so fewer fit: what one model cost is read from the container's
   "loaded … (cost X MiB" log lines (median and max over every load of the run), and how many
   models it holds at the end is printed. (Measuring the cost on a throw-away container first gave a
   budget 1-4x too large: the first loads in fresh worker processes grow their heaps by several MiB,
   later loads do not);
3. brings up ``rosetta endpoint up NAME --multi-model FOLDER`` (2 workers; Julia: 2 threads) and
   calls it through boto3's ``invoke_endpoint(TargetModel=…)``:

   - **cold first invoke** (archive extracted, model loaded, then invoked: what the first call for a
     model waits) for ``--cold`` models one after the other, against **warm invokes** of the same
     models (each 5 more times): medians, and their ratio;
   - **round-robin**: ``--concurrency`` threads call the ``--models`` models in turn until
     ``--requests`` requests or ``--seconds`` have passed. With room for ``--fit`` models and LRU
     unloading, nearly every request finds its model unloaded: this is the load/unload path under
     concurrency, not warm serving. Requests/s, p50/p99, errors (each distinct one printed), the
     loads and unloads the container logged, and how many models it holds at the end;

then removes the endpoint (no container is left). One line per runtime; the exit status is 1 when
any request failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.harness import ROW, train_example
from sagemaker_rosetta import images, local_images
from sagemaker_rosetta.containers import Container
from sagemaker_rosetta.endpoint import daemon, deploy, spec
from sagemaker_rosetta.endpoint.state import State
from sagemaker_rosetta.httpclient import request
from sagemaker_rosetta.mlroot import pack_model

#: runtime → its iris example image (table name in :data:`sagemaker_rosetta.images.EXAMPLES`)
RUNTIMES = {"python": "iris-python", "r-plumber": "iris-r", "r-rpy2": "iris-r-rpy2", "julia": "iris-julia"}
#: incompressible bytes added to every archive (see the module's docstring)
PAD_BYTES = 1024 * 1024
WORKERS = "2"
#: the runtimes whose workers are threads of one process (a model is loaded once, not once per worker)
THREADED = {"julia"}
WARM_REPEATS = 5
LOADED = re.compile(r"model '([^']+)' loaded from \S+ in [\d.]+ s \(cost ([\d.]+) MiB")
UNLOADED = re.compile(r"model '[^']+' unloaded\s*$", re.M)


@dataclass
class Figures:
    runtime: str
    image: str
    floor_mib: float = 0.0
    costs_mib: list[float] = field(default_factory=list)
    budget_mib: int = 0
    cold_ms: list[float] = field(default_factory=list)
    warm_ms: list[float] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    loads: int = 0
    unloads: int = 0
    held_at_end: int = 0
    load_average: float = 0.0

    def line(self) -> str:
        cold, warm = statistics.median(self.cold_ms), statistics.median(self.warm_ms)
        lat = sorted(self.latencies_ms) or [float("nan")]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        n_err = sum(self.errors.values())
        costs = self.costs_mib or [float("nan")]
        return (f"{self.runtime}: cost per model {statistics.median(costs):.1f} MiB (max {max(costs):.1f}, least "
                f"{self.floor_mib:.1f}), budget {self.budget_mib} MiB | "
                f"cold first invoke {cold:.0f} ms (max {max(self.cold_ms):.0f}) vs warm {warm:.1f} ms = "
                f"{cold / warm:.0f}x | round-robin c=8: {self.requests:,} requests in {self.seconds:.1f} s = "
                f"{self.requests / self.seconds:.1f} req/s, p50 {statistics.median(lat):.0f} ms, p99 {p99:.0f} ms, "
                f"{n_err} errors, {self.loads:,} loads, {self.unloads:,} unloads, {self.held_at_end} models held "
                f"at the end | load {self.load_average:.1f}")


def archives(model: Path, folder: Path, models: int) -> list[str]:
    """``models`` copies of the model's archive (plus padding) under distinct keys."""
    staged = folder.parent / "staged"
    shutil.copytree(model, staged)
    (staged / "padding.bin").write_bytes(os.urandom(PAD_BYTES))
    first = pack_model(staged, folder.parent / "model.tar.gz")
    folder.mkdir(parents=True)
    keys = [f"m{i:03d}.tar.gz" for i in range(models)]
    for key in keys:
        shutil.copyfile(first, folder / key)
    return keys


def logged(container: str) -> str:
    return Container(image="", name=container).logs()


def floor_mib(archive: Path, runtime: str) -> float:
    """The least a loaded copy of ``archive`` costs: its files' sizes × the worker processes (D6)."""
    with tarfile.open(archive) as tar:
        size = sum(m.size for m in tar.getmembers() if m.isfile())
    return size * (1 if runtime in THREADED else int(WORKERS)) / 2**20


def client(url: str) -> Any:
    return boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local",
                        config=Config(retries={"max_attempts": 1}, max_pool_connections=16,
                                      read_timeout=300, connect_timeout=10))


def invoke(rt: Any, endpoint: str, key: str) -> float:
    """One call, in ms; raises on an error or an unexpected answer."""
    t0 = time.perf_counter()
    resp = rt.invoke_endpoint(EndpointName=endpoint, TargetModel=key, ContentType="text/csv", Body=ROW)
    body = resp["Body"].read()
    ms = (time.perf_counter() - t0) * 1e3
    if not body.strip():
        raise RuntimeError(f"{key}: empty answer")
    return ms


def describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code')}: {str(err.get('Message'))[:300]}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def round_robin(rt: Any, endpoint: str, keys: list[str], concurrency: int, requests: int, seconds: float,
                fig: Figures) -> None:
    lock = threading.Lock()
    nxt = iter(range(requests))
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                i = next(nxt, None)
            if i is None:
                return
            try:
                ms = invoke(rt, endpoint, keys[i % len(keys)])
            except Exception as exc:  # every failure is counted and shown, none stops the run
                with lock:
                    errors[describe(exc)] += 1
                continue
            with lock:
                latencies.append(ms)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fig.seconds = time.perf_counter() - t0
    fig.requests, fig.latencies_ms, fig.errors = len(latencies) + sum(errors.values()), latencies, dict(errors)


def measure(runtime: str, model: Path, work: Path, args: argparse.Namespace, say: Callable[[str], None]) -> Figures:
    image = images.tag(RUNTIMES[runtime])
    fig = Figures(runtime, image)
    folder = work / "models"
    keys = archives(model, folder, args.models)
    fig.floor_mib = floor_mib(folder / keys[0], runtime)
    fig.budget_mib = max(1, int((args.fit + 0.5) * fig.floor_mib + 0.5))
    state = State(work / "state")
    name = f"bench-mme-{runtime}"
    made = spec.from_create_model({"PrimaryContainer": {
        "Image": image, "Mode": "MultiModel", "ModelDataUrl": str(folder),
        "Environment": {"ROSETTA_MME_MEMORY_MB": str(fig.budget_mib), "SAGEMAKER_MODEL_SERVER_WORKERS": WORKERS}}},
        source="bench")
    ep = deploy.up(state, name, made)  # removes what it started when it fails
    try:
        container, port = ep.members[0].container, ep.members[0].host_port
        rt = client(daemon.ensure_front(state))
        cold = keys[: args.cold]
        fig.cold_ms = [invoke(rt, name, k) for k in cold]
        fig.warm_ms = [invoke(rt, name, k) for _ in range(WARM_REPEATS) for k in cold]
        text = logged(container)
        loads, unloads = len(LOADED.findall(text)), len(UNLOADED.findall(text))
        fig.load_average = os.getloadavg()[0]
        round_robin(rt, name, keys, args.concurrency, args.requests, args.seconds, fig)
        text = logged(container)
        fig.loads, fig.unloads = len(LOADED.findall(text)) - loads, len(UNLOADED.findall(text)) - unloads
        fig.costs_mib = [float(m.group(2)) for m in LOADED.finditer(text)]
        listing = request(port, "GET", "/models?limit=1000", None, {}, 30)
        fig.held_at_end = len(json.loads(listing.body)["models"])
    finally:
        deploy.down(state, name)
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mme_endpoint", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=list(RUNTIMES))
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--fit", type=int, default=20, help="models the memory budget holds")
    parser.add_argument("--cold", type=int, default=10, help="models measured cold, then warm")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000, help="round-robin: at most this many requests")
    parser.add_argument("--seconds", type=float, default=60, help="round-robin: at most this long")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    missing = [RUNTIMES[r] for r in args.runtimes if not local_images.exists(images.tag(RUNTIMES[r]))]
    if missing:
        print(f"error: image(s) {', '.join(missing)} missing: run `rosetta setup --examples`", file=sys.stderr)
        return 2
    print(f"{args.models} models (one iris model.tar.gz + {PAD_BYTES // 1024} KiB padding under {args.models} keys), "
          f"budget for {args.fit} + 1/2 at a model's least cost (size x worker processes), {WORKERS} workers "
          "(Julia: threads); "
          f"cold = first invoke of {args.cold} models (extract + load + invoke), warm = the same models "
          f"{WARM_REPEATS} more times; round-robin over all {args.models} at c={args.concurrency}, at most "
          f"{args.requests:,} requests or {args.seconds:g} s; boto3 invoke_endpoint(TargetModel=...) through the "
          "local endpoint; medians; load = 1-minute load average at the round-robin's start.", flush=True)
    results: list[Figures] = []
    failed = False
    state_root: Path | None = None
    with tempfile.TemporaryDirectory(prefix="rosetta-bench-mme-endpoint-") as tmp:
        trained: dict[str, Path] = {}
        try:
            for runtime in args.runtimes:
                example = images.EXAMPLES[RUNTIMES[runtime]]
                say(f"{runtime}: training {example.tag}…")
                if example.folder not in trained:  # R plumber and rpy2 serve the same trained model
                    trained[example.folder] = train_example(example.tag, Path(tmp) / "train" / runtime)
                work = Path(tmp) / runtime
                state_root = work / "state"
                try:
                    fig = measure(runtime, trained[example.folder], work, args, say)
                except Exception as exc:  # the other runtimes still run
                    print(f"{runtime}: failed: {describe(exc)}", flush=True)
                    failed = True
                    continue
                finally:
                    daemon.stop_front(State(state_root))
                results.append(fig)
                print(fig.line(), flush=True)
                for error, count in fig.errors.items():
                    print(f"  {count} x {error}", flush=True)
                failed |= bool(fig.errors)
        finally:
            if state_root is not None:
                daemon.stop_front(State(state_root))
    if args.json:
        args.json.write_text(json.dumps([asdict(f) for f in results], indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
