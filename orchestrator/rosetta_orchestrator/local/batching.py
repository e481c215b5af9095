"""Batch-transform semantics as pure functions: split, batch, assemble (B-07, B-08, B-10)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

MIB = 1024 * 1024


class BatchError(ValueError):
    """A record cannot be sent (e.g. larger than MaxPayloadInMB)."""


def normalize_strategy(value: str | None) -> str | None:
    """``MULTI_RECORD``/``MultiRecord`` → ``MultiRecord`` (the API spelling); None stays None."""
    if value is None:
        return None
    key = str(value).replace("_", "").lower()
    if key == "multirecord":
        return "MultiRecord"
    if key == "singlerecord":
        return "SingleRecord"
    raise BatchError(f"unknown BatchStrategy {value!r}")


def split_records(data: bytes, split_type: str | None) -> list[bytes]:
    """``None``: the whole file is one record; ``Line``: one record per line, newline kept (B-07).

    A last line without newline is still a record; an empty file has no records.
    """
    if split_type in (None, "None"):
        return [data] if data else []
    if split_type == "Line":
        return data.splitlines(keepends=True)
    raise BatchError(f"SplitType {split_type!r} is not supported by the local runner (None, Line)")


def batches(records: list[bytes], strategy: str, max_payload_mb: int) -> Iterator[bytes]:
    """SingleRecord: one record per request; MultiRecord: as many whole records as fit in
    ``max_payload_mb`` MiB (0 = unlimited). A record over the limit fails the file (B-05, B-08)."""
    for request in plan(records, strategy, max_payload_mb * MIB if max_payload_mb else None,
                        limit_name=f"MaxPayloadInMB={max_payload_mb}"):
        yield request.body


@dataclass(frozen=True)
class Request:
    """One request's body and where it lies in its file (bytes ``start`` to ``end - 1``)."""

    index: int
    start: int
    end: int
    body: bytes


def plan(records: list[bytes], strategy: str, limit: int | None, *, limit_name: str = "") -> list[Request]:
    """The requests for a file's records, with their byte ranges: SingleRecord one record each,
    MultiRecord as many whole records as fit in ``limit`` bytes (None = unlimited)."""
    for r in records:
        if limit is not None and len(r) > limit:
            raise BatchError(f"a record of {len(r)} bytes exceeds {limit_name or f'{limit} bytes'}")
    bodies: list[bytes] = []
    if strategy == "SingleRecord":
        bodies = list(records)
    else:
        buf: list[bytes] = []
        size = 0
        for r in records:
            if buf and limit is not None and size + len(r) > limit:
                bodies.append(b"".join(buf))
                buf, size = [], 0
            buf.append(r)
            size += len(r)
        if buf:
            bodies.append(b"".join(buf))
    out: list[Request] = []
    offset = 0
    for i, body in enumerate(bodies):
        out.append(Request(i, offset, offset + len(body), body))
        offset += len(body)
    return out


def assemble(responses: list[bytes], assemble_with: str | None) -> bytes:
    """``None``: responses concatenated as they are; ``Line``: each response ends with exactly one
    newline added if it has none, so no blank lines appear between responses (B-10)."""
    if assemble_with in (None, "None"):
        return b"".join(responses)
    if assemble_with == "Line":
        return b"".join(r if r.endswith(b"\n") else r + b"\n" for r in responses)
    raise BatchError(f"AssembleWith {assemble_with!r} is not supported (None, Line)")
