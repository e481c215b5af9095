"""Counting records on both sides of a batch-transform request (issue 13: nothing is lost).

A MultiRecord request with ``AssembleWith=Line`` must come back with one output record per input
record. Input records are the request's non-blank lines, less the file's header line when the
serving container will take it for one (decisions D1: the first line of a file, only when a header
is expected, and only if it is not a numeric record or equals the model's feature names). Output
records are counted by the response's content type; a type this module cannot count is not checked.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence

#: spellings of JSON Lines in the wild (the runtimes' codec registries accept these)
JSON_LINES = ("application/jsonlines", "application/x-jsonlines", "application/json-lines",
              "application/jsonl", "application/x-ndjson")
LINE_TYPES = ("text/csv", *JSON_LINES)
TRUE = ("true", "1", "yes", "y", "on")


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _params(content_type: str | None) -> dict[str, str]:
    out = {}
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.partition("=")
        out[key.strip().lower()] = value.strip().strip('"').lower()
    return out


def header_expected(content_type: str | None, env: Mapping[str, str]) -> bool:
    """D1: a CSV request may carry a header only with ``header=present`` or ROSETTA_CSV_HEADER
    true; ``header=absent`` wins over the environment variable."""
    if media_type(content_type) != "text/csv":
        return False
    header = _params(content_type).get("header")
    if header == "absent":
        return False
    if header == "present":
        return True
    return str(env.get("ROSETTA_CSV_HEADER", "")).strip().lower() in TRUE


def _fields(line: bytes) -> list[str]:
    text = line.decode("utf-8", errors="replace").strip("\r\n")
    row = next(csv.reader(io.StringIO(text)), [])
    return [f.strip().strip('"').strip() for f in row]


def is_numeric_record(line: bytes) -> bool:
    fields = _fields(line)
    if not fields:
        return False
    for f in fields:
        try:
            float(f)
        except ValueError:
            return False
    return True


def is_header(first_line: bytes, features: Sequence[str] | None) -> bool:
    """D1 (a) the fields equal the model's feature names, or (b) the line is not a numeric record."""
    if not first_line.strip():
        return False
    if features and _fields(first_line) == [str(f) for f in features]:
        return True
    return not is_numeric_record(first_line)


def nonblank_lines(body: bytes) -> int:
    return sum(1 for line in body.splitlines() if line.strip())


def output_records(body: bytes, content_type: str | None) -> int | None:
    """How many records a response holds, or None when its type cannot be counted."""
    kind = media_type(content_type)
    if kind in LINE_TYPES:
        return nonblank_lines(body)
    if kind == "application/json":
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        if isinstance(doc, dict) and isinstance(doc.get("predictions"), list):
            return len(doc["predictions"])
        if isinstance(doc, list):
            return len(doc)
    return None
