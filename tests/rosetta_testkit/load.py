"""Load and memory readings of a running container: wrk load points and PSS from the host's /proc.

Shared by the reliability checks (a short soak in CI, the long run in ``./dev reliability``) and
the benchmarks (``./dev bench``). Traffic stays on 127.0.0.1 and every load is bounded in time.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from sagemaker_rosetta.containers import Container


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


def container_pids(name: str) -> list[int]:
    """Host PIDs of the container's processes."""
    return [p.pid for p in Container("", name=name).processes()]


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
