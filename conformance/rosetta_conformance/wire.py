"""Small helpers on what goes over the wire: hyperparameter encodings, output records, sockets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sagemaker_rosetta.containers import Container


def encode_str(hps: Mapping[str, Any]) -> dict[str, str]:
    """The SDK ``Estimator`` encoding: ``str(v)`` (``True`` → ``"True"``) (T-02)."""
    return {k: str(v) for k, v in hps.items()}


def encode_json(hps: Mapping[str, Any]) -> dict[str, str]:
    """The framework-estimator encoding: ``json.dumps(v)`` (``"abc"`` → ``"\\"abc\\""``) (T-02)."""
    return {k: json.dumps(v) for k, v in hps.items()}


def output_records(body: bytes, content_type: str) -> list[str]:
    """Split a response into records by its Content-Type (one per input record, B-08)."""
    ctype = content_type.split(";")[0].strip().lower()
    text = body.decode("utf-8", errors="replace")
    if ctype == "application/json":
        doc = json.loads(text)
        if isinstance(doc, dict):
            for key in ("predictions", "outputs", "instances"):
                if isinstance(doc.get(key), list):
                    doc = doc[key]
                    break
        if not isinstance(doc, list):
            raise ValueError(f"JSON response is not a list of records: {text[:80]!r}")
        return [json.dumps(x, sort_keys=True) for x in doc]
    if not text:
        return []
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def csv_rows(body: bytes) -> list[bytes]:
    """Non-blank lines of a CSV payload (the records a Line splitter would send)."""
    return [ln.rstrip(b"\r") for ln in body.split(b"\n") if ln.strip()]


def short(data: bytes | str, limit: int = 160) -> str:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else f"{text[:limit]}… ({len(data)} bytes)"


@dataclass(frozen=True)
class Listener:
    address: str
    port: int


def _parse_proc_net(text: str, v6: bool) -> list[Listener]:
    out = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 4 or parts[3] != "0A":  # 0A = TCP_LISTEN
            continue
        addr_hex, port_hex = parts[1].split(":")
        if v6:
            zero = set(addr_hex) == {"0"}
            loop = addr_hex.upper() == "00000000000000000000000001000000"
            addr = "::" if zero else "::1" if loop else addr_hex
        else:
            octets = [str(int(addr_hex[i:i + 2], 16)) for i in (6, 4, 2, 0)]
            addr = ".".join(octets)
        out.append(Listener(addr, int(port_hex, 16)))
    return out


def listeners(container: str) -> list[Listener] | None:
    """TCP listening sockets in a container's network namespace (M-03, S-04, S-05).

    Read from the host's ``/proc/<pid>/net/tcp{,6}`` of the container's PID 1, which needs
    nothing inside the image; fall back to ``docker exec cat`` for a remote engine.
    """
    handle = Container("", name=container)
    pid = handle.pid()
    found: list[Listener] = []
    for name, v6 in (("tcp", False), ("tcp6", True)):
        text = None
        if pid is not None:
            try:
                with open(f"/proc/{pid}/net/{name}") as fh:
                    text = fh.read()
            except OSError:
                text = None
        if text is None:
            res = handle.exec("cat", f"/proc/net/{name}")
            if res.returncode != 0:
                if v6:
                    continue
                return None
            text = res.stdout
        found += _parse_proc_net(text, v6)
    return found


def is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr == "::1"
