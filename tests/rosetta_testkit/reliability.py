"""The reliability client: the same request bytes to every runtime image, and the faults.

A bad-input matrix (:mod:`rosetta_testkit.cases`) sent raw over a socket, hypothesis-generated
payloads, slow-loris connections, a soak with PSS drift, and faults (SIGTERM and kill -9 under
load, a corrupt model, shell-injection hyperparameters, a non-root user). ``tests/test_reliability.py``
runs the short version in CI; ``python -m bench.reliability`` the long one (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosetta_testkit.cases import CASES, Case
from rosetta_testkit.load import pss_mb, wrk
from rosetta_testkit.runtimes import DATA, RUNTIMES, Runtime
from sagemaker_rosetta.containers import Server, ml_root, run

#: runtime key → example image (the images the reliability run drives)
IMAGES: dict[str, str] = {rt.key: rt.example for rt in RUNTIMES}
#: runtimes whose workers are processes (kill -9 of one worker is meaningful); Julia uses threads
MULTIPROCESS = {rt.key for rt in RUNTIMES if rt.multiprocess}


# -- raw HTTP -------------------------------------------------------------------------------------

def raw_request(port: int, method: str, path: str, headers: dict[str, str], body: bytes,
                timeout: float = 30) -> tuple[int, bytes]:
    """Send exactly these bytes (no client adds Accept or fixes anything); status 0 = no answer."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if body or method in {"POST", "PUT"}:
        head += f"Content-Length: {len(body)}\r\n"
    data = head.encode("latin-1") + b"\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (e.g. 413) before reading everything
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    response = b"".join(chunks)
    if not response.startswith(b"HTTP/1."):
        return 0, response
    status = int(response.split(b" ", 2)[1])
    head_end = response.find(b"\r\n\r\n")
    headers_raw = response[:head_end].decode("latin-1").lower()
    payload = response[head_end + 4:]
    if "transfer-encoding: chunked" in headers_raw:
        payload = _dechunk(payload)
    return status, payload


def _dechunk(data: bytes) -> bytes:
    out: list[bytes] = []
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[end + 2:end + 2 + size])
        pos = end + 2 + size + 2


def records(body: bytes, case: Case) -> int:
    accept = case.headers.get("Accept", "").lower()
    ctype = case.headers.get("Content-Type", "text/csv").lower()
    media = accept.split(";")[0].strip() if accept and accept != "*/*" else ctype.split(";")[0].strip()
    if media == "application/json":
        return len(json.loads(body)["predictions"])
    return len([line for line in body.split(b"\n") if line.strip()])


# -- the pieces -------------------------------------------------------------------------------------

@dataclass
class CaseResult:
    status: int
    records: int | None
    ok: bool
    body: bytes


def run_matrix(port: int, cases: list[Case] = CASES) -> dict[str, CaseResult]:
    def one(case: Case) -> tuple[str, CaseResult]:
        status, body = raw_request(port, case.method, case.path, case.headers, case.body)
        n = None
        if status == 200 and case.records is not None:
            try:
                n = records(body, case)
            except (ValueError, KeyError):
                n = -1
        ok = status == case.status and (case.records is None or n == case.records)
        if status >= 400:  # every 4xx has a short message (S-17)
            ok = ok and 0 < len(body.strip()) <= 1024 and b"Traceback" not in body
        return case.name, CaseResult(status, n, ok, body[:300])

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, cases))


def oversize(port: int, limit_mb: int = 6) -> int:
    row = b"5.1,3.5,1.4,0.2\n"
    status, _ = raw_request(port, "POST", "/invocations", {"Content-Type": "text/csv"},
                            row * ((limit_mb + 1) * 1024 * 1024 // len(row)))
    return status


def slowloris(port: int, connections: int = 50, seconds: float = 5) -> tuple[int, float]:
    """Hold partial requests open; count /ping answers during that time and the slowest (S-07)."""
    socks = []
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Le")
        socks.append(s)
    answered, slowest = 0, 0.0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            t1 = time.monotonic()
            status, _ = raw_request(port, "GET", "/ping", {}, b"", timeout=5)
            slowest = max(slowest, time.monotonic() - t1)
            answered += status == 200
            time.sleep(0.2)
    finally:
        for s in socks:
            s.close()
    return answered, slowest


def fuzz(port: int, examples: int, failures: list[str] | None = None) -> dict[str, int]:
    """Generated CSV/JSON payloads: valid ones → one record per row; anything → never 5xx or silence."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
    rows = st.lists(st.lists(finite, min_size=4, max_size=4), min_size=1, max_size=50)
    garbage = st.binary(max_size=300) | st.text(alphabet=",.0123456789eE+-\n\r \"naif[]{}:", max_size=200).map(
        str.encode)
    failures = [] if failures is None else failures
    counts = {"payloads": 0, "server_errors": 0, "no_answer": 0, "wrong_record_count": 0}
    lock = threading.Lock()

    def check(status: int, ok_records: bool, body: bytes = b"", answer: bytes = b"") -> None:
        with lock:
            counts["payloads"] += 1
            counts["server_errors"] += status >= 500
            counts["no_answer"] += status == 0
            counts["wrong_record_count"] += not ok_records
            if (status >= 500 or status == 0 or not ok_records) and len(failures) < 5:
                failures.append(f"{status}: {body[:80]!r} -> {answer[:120]!r}")

    cfg = settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))

    @cfg
    @given(rows, st.sampled_from(["csv", "json", "jsonl"]), st.booleans())
    def valid(data: list[list[float]], kind: str, final_newline: bool) -> None:
        if kind == "csv":
            body = "\n".join(",".join(repr(v) for v in r) for r in data) + ("\n" if final_newline else "")
            ctype = "text/csv"
        elif kind == "json":
            body, ctype = json.dumps(data), "application/json"
        else:
            body, ctype = "\n".join(json.dumps(r) for r in data), "application/jsonlines"
        status, out = raw_request(port, "POST", "/invocations", {"Content-Type": ctype, "Accept": "text/csv"},
                                  body.encode())
        n = len([line for line in out.split(b"\n") if line.strip()]) if status == 200 else -1
        check(status, status == 200 and n == len(data), body.encode(), out)

    @cfg
    @given(garbage, st.sampled_from(["text/csv", "application/json", "application/jsonlines"]))
    def anything(body: bytes, ctype: str) -> None:
        status, out = raw_request(port, "POST", "/invocations", {"Content-Type": ctype}, body)
        check(status, True, body, out)

    valid()
    anything()
    return counts


def soak(server: Server, seconds: float, connections: int = 32, warmup: float | None = None) -> dict[str, Any]:
    """`seconds` of keep-alive load; PSS drift measured from the end of a warm-up at the same load.

    The first seconds at 32 connections allocate what a server keeps for that load (connection
    buffers, worker heaps growing to their working size, JIT-compiled paths); a leak is growth after
    that. PSS from the idle server is reported too (`pss_idle_mb`), as is the drift over the second half
    (`pss_growth_2nd_half_pct`), which is ~0 for a plateau and keeps rising for a leak.
    """
    warmup = max(5.0, seconds / 8) if warmup is None else warmup
    idle = pss_mb(server.name)
    wrk(server.host_port, b"5.1,3.5,1.4,0.2\n", connections, warmup)
    before = pss_mb(server.name)
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append(pss_mb(server.name))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        load = wrk(server.host_port, b"5.1,3.5,1.4,0.2\n", connections, seconds)
    finally:
        stop.set()
        sampler.join()
    after = pss_mb(server.name)
    middle = samples[len(samples) // 2] if samples else before

    def pct(a: float, b: float) -> float:
        return 100 * (b - a) / a if a else 0.0

    return {"seconds": seconds, "connections": connections, "rps": load.rps, "errors": load.errors,
            "error_detail": load.detail, "warmup_s": warmup, "pss_idle_mb": idle,
            "pss_before_mb": before, "pss_peak_mb": max([before, after, *samples]), "pss_after_mb": after,
            "pss_growth_pct": pct(before, after), "pss_growth_2nd_half_pct": pct(middle, after)}


def _load_until(port: int, stop: threading.Event, results: list[tuple[float, int]]) -> None:
    while not stop.is_set():
        t = time.monotonic()
        try:
            status, _ = raw_request(port, "POST", "/invocations", {"Content-Type": "text/csv"}, b"5.1,3.5,1.4,0.2\n",
                                    timeout=10)
        except OSError:
            status = 0
        results.append((t, status))


def sigterm_under_load(server: Server) -> dict[str, float]:
    stop, results = threading.Event(), []  # type: ignore[var-annotated]
    threads = [threading.Thread(target=_load_until, args=(server.host_port, stop, results)) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    server.kill("TERM")
    code = server.wait_exit(35)
    took = time.monotonic() - t0
    stop.set()
    for t in threads:
        t.join()
    # in flight at SIGTERM: requests started before it must have been answered 200
    before = [s for t, s in results if t < t0]
    return {"exit_code": -1 if code is None else code, "exit_seconds": took,
            "requests_before_sigterm": len(before), "failed_before_sigterm": sum(s != 200 for s in before)}


def kill_worker_under_load(server: Server, rt: Runtime, seconds: float = 5) -> dict[str, float]:
    """kill -9 one serving worker (from the host) while 4 clients load the server."""
    stop, results = threading.Event(), []  # type: ignore[var-annotated]
    threads = [threading.Thread(target=_load_until, args=(server.host_port, stop, results)) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    workers = rt.workers(server.processes(), server.pid())
    t0 = time.monotonic()
    killed = False
    if workers:
        try:
            os.kill(workers[0], signal.SIGKILL)
            killed = True
        except ProcessLookupError:
            pass
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    after = [s for t, s in results if t >= t0]
    errors = sum(s != 200 for s in after)
    return {"killed": float(killed), "requests": len(after), "errors": errors,
            "error_pct": 100 * errors / max(1, len(after)), "serving_after": float(
                raw_request(server.host_port, "POST", "/invocations", {"Content-Type": "text/csv"},
                            b"5.1,3.5,1.4,0.2\n")[0] == 200)}


def corrupt_model(image: str, work: Path) -> dict[str, float]:
    model = work / "corrupt-model"
    model.mkdir(exist_ok=True)
    for name in ("model.pkl", "model.rds", "model.jls"):
        (model / name).write_bytes(b"\x00garbage, not a model\xff" * 10)
    server = Server(image, volumes={model: "/opt/ml/model:ro"})
    t0 = time.monotonic()
    server.start()
    try:
        code = server.wait_exit(60)
        return {"exit_code": -1 if code is None else code, "seconds": time.monotonic() - t0,
                "reason_in_log": float(any(w in server.logs().lower() for w in ("corrupt", "cannot", "error")))}
    finally:
        server.remove()


def injection(image: str, work: Path) -> dict[str, float]:
    """Hyperparameters never reach a shell: a `$(...)` value must not run."""
    hp = {"target": "$(touch /tmp/pwned)", "x": "`touch /tmp/pwned2`; touch /tmp/pwned3"}
    ml = ml_root(work / "inject-ml", hyperparameters=hp,
                 channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
    res = run(image, ["-c", "train; ls /tmp/pwned /tmp/pwned2 /tmp/pwned3 2>/dev/null | wc -l"],
              volumes={ml: "/opt/ml"}, entrypoint="sh")
    out = res.stdout.strip().splitlines()
    return {"executed": float(out[-1] != "0") if out else 1.0,
            "failure_file": float((ml / "output" / "failure").is_file())}


def non_root(image: str, work: Path, user: str = "1000:1000") -> dict[str, Any]:
    """Train and serve as a non-root user (`docker run --user`): model written, one row predicted."""
    ml = ml_root(work / "nonroot-ml", channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
    for path in [ml, *ml.rglob("*")]:  # as SageMaker mounts /opt/ml: writable by the job's user
        path.chmod(0o777 if path.is_dir() else 0o666)
    res = run(image, ["train"], volumes={ml: "/opt/ml"}, user=user, timeout=300)
    trained = res.returncode == 0 and any((ml / "model").iterdir())
    status, uid = 0, ""
    if trained:
        server = Server(image, volumes={ml / "model": "/opt/ml/model:ro"}, user=user).start()
        try:
            server.wait_ready(120)
            status = server.request("POST", "/invocations", b"5.1,3.5,1.4,0.2\n",
                                    {"Content-Type": "text/csv"}).status
            uid = server.exec("id", "-u").stdout.strip()
        finally:
            server.remove()
    return {"train_exit": res.returncode, "trained": int(trained), "serve_status": status, "uid": uid,
            "detail": "" if trained else (res.stdout + res.stderr)[-300:]}


def train_model(image: str, work: Path) -> Path:
    ml = ml_root(work / "ml", channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
    res = run(image, ["train"], volumes={ml: "/opt/ml"})
    if res.returncode:
        raise RuntimeError(f"training {image} failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return ml / "model"


def openapi_parity(sequences: dict[str, list[int]], cases: list[str] | None = None) -> list[str]:
    """schemathesis cases (the same cases in the same order for every image) answered with different
    statuses; ``cases`` describes each request (:func:`openapi_fuzz.describe`) for the report."""
    out = []
    for i, statuses in enumerate(zip(*sequences.values(), strict=False)):
        if len(set(statuses)) > 1:
            what = f" {cases[i]}" if cases and i < len(cases) else ""
            out.append(f"schemathesis case {i}{what}: " + ", ".join(f"{rt}={s}" for rt, s in zip(sequences, statuses,
                                                                                                  strict=True)))
    if len({len(s) for s in sequences.values()}) > 1:
        out.append("schemathesis: different case counts " + str({rt: len(s) for rt, s in sequences.items()}))
    return out


def parity(matrices: dict[str, dict[str, CaseResult]]) -> list[str]:
    """Cases where runtimes disagree on status code or record count."""
    out = []
    for case in CASES:
        seen = {rt: (m[case.name].status, m[case.name].records) for rt, m in matrices.items() if case.name in m}
        if len(set(seen.values())) > 1:
            out.append(f"{case.name}: " + ", ".join(f"{rt}={s}/{n}" for rt, (s, n) in seen.items()))
    return out


