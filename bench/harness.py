"""Measurement primitives: containers, wrk load, cold start, batch transform, PSS.

Everything runs on this machine in one run; only ratios within one run are reported.
Traffic stays on 127.0.0.1 and every load is bounded in time.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sagemaker_rosetta.containers import Server, Volumes
from sagemaker_rosetta.engine import docker


@dataclass
class Contestant:
    """A serving container: an image plus how to start it, and the body it answers."""

    name: str
    image: str
    args: Sequence[str] = ("serve",)
    env: Mapping[str, str] = field(default_factory=dict)
    volumes: Volumes = field(default_factory=dict)
    extra: Sequence[str] = ()

    def server(self) -> Server:
        return Server(self.image, env=self.env, volumes=self.volumes, extra=self.extra, args=self.args)


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    detail: str = ""


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(port: int, body: bytes, connections: int, seconds: float, content_type: str = "text/csv") -> Load:
    """Closed-loop keep-alive load from Debian's wrk (1 thread) on one POST /invocations body."""
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body"
        body_file.write_bytes(body)
        script = Path(tmp) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f'wrk.headers["Content-Type"] = "{content_type}"\n'
            f'local f = io.open("{body_file}", "rb"); wrk.body = f:read("*a"); f:close()\n'
            "function response(status, headers, body) if status ~= 200 then errors_seen = true end end\n")
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s", "--latency", "-s", str(script),
             f"http://127.0.0.1:{port}/invocations"],
            capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    detail = (non2xx.group(0) if non2xx else "") + (" " + socket_errors.group(0) if socket_errors else "")
    return Load(rps, p50, p99, errors, detail.strip())


def post(port: int, body: bytes, content_type: str = "text/csv", timeout: float = 60) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": content_type})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def cold_start(contestant: Contestant, probe: bytes, timeout: float = 120) -> tuple[float, float, Server]:
    """Seconds from ``docker run`` to the first /ping 200 and to the first good /invocations."""
    server = contestant.server()
    t0 = time.monotonic()
    server.start()
    ping = invoke = 0.0
    while time.monotonic() - t0 < timeout:
        try:
            if not ping and server.request("GET", "/ping", timeout=2).status == 200:
                ping = time.monotonic() - t0
            if ping and post(server.host_port, probe, timeout=5)[0] == 200:
                invoke = time.monotonic() - t0
                return ping, invoke, server
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.01)
    server.remove()
    raise TimeoutError(f"{contestant.name} not ready after {timeout} s:\n{server.logs()[-2000:]}")


def split_payloads(rows: list[bytes], max_bytes: int) -> list[bytes]:
    """MultiRecord: as many whole records as fit in MaxPayloadInMB (B-08)."""
    payloads: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for row in rows:
        if size + len(row) > max_bytes and current:
            payloads.append(b"".join(current))
            current, size = [], 0
        current.append(row)
        size += len(row)
    if current:
        payloads.append(b"".join(current))
    return payloads


def advertised_payload_mb(port: int, default: int = 6) -> int:
    """MaxPayloadInMB a transform job would use: the container's `/execution-parameters` (B-03) when it
    answers, else SageMaker's default of 6 MB (the baselines have no such route)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/execution-parameters")
        res = conn.getresponse()
        body = res.read()
        if res.status == 200:
            value = json.loads(body).get("MaxPayloadInMB")
            if isinstance(value, int) and 1 <= value <= default:
                return value
    except (OSError, ValueError):
        pass
    finally:
        conn.close()
    return default


def batch_rows_per_second(port: int, payloads: list[bytes], concurrency: int, n_rows: int) -> float:
    """Batch transform of the payloads with MaxConcurrentTransforms = ``concurrency``."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda p: post(port, p, timeout=120), payloads))
    took = time.perf_counter() - t0
    for status, body in results:
        if status != 200:
            raise RuntimeError(f"batch payload failed: {status} {body[:200]!r}")
    if sum(body.count(b"\n") for _, body in results) != n_rows:
        raise RuntimeError("batch output record count differs from input")
    return n_rows / took


def container_pids(name: str) -> list[int]:
    out = subprocess.run([docker(), "top", name, "-eo", "pid"], capture_output=True, text=True, check=False).stdout
    return [int(x) for x in out.split()[1:] if x.isdigit()]


def pss_mb(name: str) -> float:
    """Summed PSS of the container's processes (host /proc, root)."""
    total = 0
    for pid in container_pids(name):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        m = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        total += int(m.group(1)) if m else 0
    return total / 1024


class PeakPss:
    """Sample PSS in the background while a load runs."""

    def __init__(self, name: str, interval: float = 0.5) -> None:
        self.name, self.interval, self.peak = name, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, pss_mb(self.name))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakPss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
