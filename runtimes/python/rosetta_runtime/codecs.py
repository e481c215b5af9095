"""Codecs: one registry keyed by media type, and content negotiation (S-16, B-06, B-08, B-09).

Decoders turn a request body into a float64 matrix (records × features); encoders turn
predictions into one output record per input record, in order. CSV has a vectorised fast
path (one C parse of the whole body) and a precise slow path that only runs to explain an error.
"""

from __future__ import annotations

import csv
import functools
import importlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rosetta_runtime.errors import BadRequest

Decoder = Callable[[bytes, dict[str, str], "DecodeOptions"], np.ndarray]
Encoder = Callable[[Any], bytes]

_BOM = b"\xef\xbb\xbf"
#: above this size Apache Arrow's C++ CSV reader (if installed) parses several times faster than
#: numpy's; below, its call overhead is not worth it
ARROW_MIN_BYTES = 256 * 1024


@dataclass(frozen=True)
class DecodeOptions:
    n_features: int | None = None
    csv_header: bool = False


@dataclass(frozen=True)
class Codec:
    media_type: str
    decode: Decoder
    encode: Encoder
    aliases: tuple[str, ...] = ()


REGISTRY: dict[str, Codec] = {}


def register(codec: Codec) -> Codec:
    for name in (codec.media_type, *codec.aliases):
        if name in REGISTRY:
            raise ValueError(f"media type {name} already registered")
        REGISTRY[name] = codec
    return codec


def accepted_types() -> str:
    return ", ".join(dict.fromkeys(c.media_type for c in REGISTRY.values()))


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """``'Text/CSV; charset=utf-8'`` → ``('text/csv', {'charset': 'utf-8'})``."""
    main, *rest = value.split(";")
    params = {}
    for part in rest:
        key, _, val = part.partition("=")
        if key.strip():
            params[key.strip().lower()] = val.strip().strip('"').lower()
    return main.strip().lower(), params


def lookup(media_type: str) -> Codec | None:
    return REGISTRY.get(media_type)


def negotiate(accept: str | None, default: Codec) -> Codec | None:
    """The codec for an ``Accept`` header; absent/empty/``*/*`` → ``default``; nothing fits → None."""
    if accept is None or not accept.strip() or accept.strip() == "*/*":
        return default
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        media, params = parse_media_type(part)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 1.0
        if media and q > 0:
            ranked.append((-q, i, media))
    for _, _, media in sorted(ranked):
        if media == "*/*":
            return default
        if media.endswith("/*"):
            prefix = media[:-1]
            if default.media_type.startswith(prefix):
                return default
            for codec in REGISTRY.values():
                if codec.media_type.startswith(prefix):
                    return codec
            continue
        found = lookup(media)
        if found is not None:
            return found
    return None


# -- checks shared by all decoders ---------------------------------------------------------------

def _check_matrix(X: np.ndarray, opts: DecodeOptions) -> np.ndarray:
    if X.shape[0] == 0:
        raise BadRequest("empty payload")
    if opts.n_features is not None and X.shape[1] != opts.n_features:
        raise BadRequest(f"row 1 has {X.shape[1]} columns, expected {opts.n_features}")
    if not np.isfinite(X).all():
        bad = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0]) + 1
        raise BadRequest(f"row {bad}: non-finite value")
    return X


def rows_to_matrix(rows: list[Any], opts: DecodeOptions) -> np.ndarray:
    """A list of rows (lists of numbers) → matrix, with precise messages for what is wrong."""
    if not rows:
        raise BadRequest("empty payload")
    width = None
    for r, row in enumerate(rows, 1):
        if not isinstance(row, list):
            raise BadRequest(f"row {r}: expected an array of numbers")
        for value in row:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadRequest(f"row {r}: {json.dumps(value)[:40]} is not a number")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise BadRequest(f"row {r} has {len(row)} columns, expected {width}")
    if width == 0:
        raise BadRequest("row 1 has 0 columns")
    return _check_matrix(np.asarray(rows, dtype=np.float64), opts)


# -- text/csv ---------------------------------------------------------------------------------

def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("invalid UTF-8") from None


#: optional C accelerators (the image ships both); without them the numpy/stdlib paths run
ACCELERATORS = ("pyarrow.csv", "orjson")


@functools.cache
def accelerator(name: str) -> Any:
    """The module ``name`` (one of :data:`ACCELERATORS`), or None when it is not installed.
    Cached: looked up on the hot path; the server imports them all before forking its workers."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _csv_arrow(data: bytes, width: int) -> np.ndarray | None:
    """Big bodies: Arrow's parser with every column typed float64 (no type inference: 1.6x less CPU);
    None unless the body is a clean grid of ``width`` numeric columns (then the precise path explains)."""
    pa_csv = accelerator("pyarrow.csv")
    if pa_csv is None:
        return None
    import pyarrow  # loaded with pyarrow.csv

    names = [f"c{i}" for i in range(width)]
    try:
        table = pa_csv.read_csv(io.BytesIO(data), read_options=pa_csv.ReadOptions(column_names=names),
                                convert_options=pa_csv.ConvertOptions(
                                    column_types=dict.fromkeys(names, pyarrow.float64())))
    except Exception:  # ragged rows, text fields and the like
        return None
    columns = table.columns
    if not columns or any(c.null_count for c in columns):  # an empty field is a gap, not a number
        return None
    return np.column_stack([c.to_numpy() for c in columns])


def _csv_fast(data: bytes) -> np.ndarray | None:
    """Whole-body parse in numpy's C reader; None when the body is not a clean numeric grid (then the
    precise path explains). `loadtxt` beats `fromstring` from one row up (0.17 vs 0.24 ms for 1,000
    rows) and rejects ragged rows itself."""
    if b"\r" in data or b'"' in data or not data.strip():  # lone CR, quotes: the csv module's rules
        return None
    try:
        X = np.loadtxt(io.BytesIO(data), delimiter=",", dtype=np.float64, comments=None, ndmin=2,
                       encoding="latin-1")
    except ValueError:
        return None
    return X if X.size else None


#: what every runtime accepts as a CSV number (Python's float() alone would also take "1_000")
_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*|\s*[+-]?(?:nan|inf|infinity)\s*", re.I)


def _rows_or_400(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    row = 0
    while True:
        row += 1
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a lone carriage return inside a field
            raise BadRequest(f"row {row}: malformed CSV ({exc})") from None


def _csv_slow(text: str) -> np.ndarray:
    rows: list[list[float]] = []
    width = None
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    for r, fields in enumerate(_rows_or_400(reader), 1):
        values = []
        for field in fields:
            if not _NUMBER.fullmatch(field):
                raise BadRequest(f"row {r}: {field.strip()[:40]!r} is not a number")
            values.append(float(field))
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise BadRequest(f"row {r} has {len(values)} columns, expected {width}")
        rows.append(values)
    return np.asarray(rows, dtype=np.float64)


def decode_csv(body: bytes, params: dict[str, str], opts: DecodeOptions) -> np.ndarray:
    if body.startswith(_BOM):
        body = body[len(_BOM):]
    text = _utf8(body)  # validates; the fast path still works on bytes
    data = body.replace(b"\r\n", b"\n") if b"\r" in body else body
    data = data.strip(b"\n")
    if params.get("header") == "present" or opts.csv_header:
        _, _, data = data.partition(b"\n")
    while b"\n\n" in data:  # blank lines are not records (B-08)
        data = data.replace(b"\n\n", b"\n")
    if not data.strip():
        raise BadRequest("empty payload")
    X = None
    if len(data) >= ARROW_MIN_BYTES:
        X = _csv_arrow(data, opts.n_features or data.split(b"\n", 1)[0].count(b",") + 1)
    if X is None:
        X = _csv_fast(data)
    if X is None:
        X = _csv_slow(data.decode("utf-8") if data is not body else text)
    return _check_matrix(X, opts)


def _numeric_json(arr: np.ndarray) -> bytes | None:
    """A finite numeric array as JSON, by orjson (shortest round-trip floats, 1.5-10x faster than
    Arrow's CSV writer or ``%r``); None when orjson is missing or cannot write it exactly (NaN → null)."""
    orjson = accelerator("orjson")
    if orjson is None or arr.dtype.kind not in "fiu" or 0 in arr.shape:
        return None
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return None
    try:
        return orjson.dumps(np.ascontiguousarray(arr), option=orjson.OPT_SERIALIZE_NUMPY)  # type: ignore[no-any-return]
    except TypeError:  # a dtype orjson does not serialise
        return None


def _format_rows(arr: np.ndarray) -> bytes:
    n = arr.shape[0]
    if arr.ndim == 1:
        arr = arr.reshape(n, 1)
    elif arr.ndim > 2:
        arr = arr.reshape(n, -1)
    fast = _numeric_json(arr)
    if fast is not None:  # [[a,b],[c,d]] → a,b\nc,d\n: JSON numbers are CSV numbers
        return fast[2:-2].replace(b"],[", b"\n") + b"\n"
    if arr.dtype.kind == "f":  # shortest round-trip repr
        row = ",".join(["%r"] * arr.shape[1]) + "\n"
        return ((row * n) % tuple(arr.ravel().tolist())).encode()  # type: ignore[no-any-return]
    if arr.dtype.kind in "iub":
        row = ",".join(["%d"] * arr.shape[1]) + "\n"
        return ((row * n) % tuple(arr.ravel().tolist())).encode()  # type: ignore[no-any-return]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(arr.tolist())
    return out.getvalue().encode()


def encode_csv(predictions: Any) -> bytes:
    arr = np.asarray(predictions)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    return _format_rows(arr)


# -- application/json and application/jsonlines ----------------------------------------------

#: rows are depth 2; anything opening deeper than this is refused before parsing
MAX_JSON_DEPTH = 32


def _loads(text: str) -> Any:
    depth = 0
    for ch in text[: 4 * MAX_JSON_DEPTH]:
        if ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise BadRequest("JSON nested too deeply")
        elif ch not in " \t\r\n":
            break
    try:
        return json.loads(text)
    except RecursionError:
        raise BadRequest("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def decode_json(body: bytes, params: dict[str, str], opts: DecodeOptions) -> np.ndarray:
    if not body.strip():
        raise BadRequest("empty payload")
    doc = _loads(_utf8(body.removeprefix(_BOM)))
    if isinstance(doc, dict):
        if "instances" not in doc:
            raise BadRequest('expected an array of rows or {"instances": [...]}')
        doc = doc["instances"]
    if not isinstance(doc, list):
        raise BadRequest('expected an array of rows or {"instances": [...]}')
    if doc and all(isinstance(v, int | float) and not isinstance(v, bool) for v in doc):
        doc = [doc]  # a single row
    return rows_to_matrix(doc, opts)


def decode_jsonlines(body: bytes, params: dict[str, str], opts: DecodeOptions) -> np.ndarray:
    rows = []
    for n, line in enumerate(_utf8(body.removeprefix(_BOM)).splitlines(), 1):
        if line.strip():
            try:
                rows.append(_loads(line))
            except BadRequest as exc:
                raise BadRequest(f"line {n}: {exc.message}") from None
    return rows_to_matrix(rows, opts)


def _jsonable(predictions: Any) -> list[Any]:
    if isinstance(predictions, np.ndarray):
        return list(predictions.tolist()) if predictions.ndim else [predictions.tolist()]
    return [v.tolist() if isinstance(v, np.ndarray | np.generic) else v for v in predictions]


def encode_json(predictions: Any) -> bytes:
    fast = _numeric_json(predictions) if isinstance(predictions, np.ndarray) and predictions.ndim else None
    if fast is not None:
        return b'{"predictions":' + fast + b"}"
    return json.dumps({"predictions": _jsonable(predictions)}, separators=(",", ":")).encode()


def encode_jsonlines(predictions: Any) -> bytes:
    if isinstance(predictions, np.ndarray) and predictions.ndim in (1, 2):
        fast = _numeric_json(predictions)
        if fast is not None:  # [a,b] → a\nb\n; [[a],[b]] → [a]\n[b]\n: one JSON value per record
            if predictions.ndim == 2:
                return fast[1:-1].replace(b"],[", b"]\n[") + b"\n"
            return fast[1:-1].replace(b",", b"\n") + b"\n"
    return "".join(json.dumps(v, separators=(",", ":")) + "\n" for v in _jsonable(predictions)).encode()


CSV = register(Codec("text/csv", decode_csv, encode_csv))
JSON = register(Codec("application/json", decode_json, encode_json))
JSONLINES = register(Codec("application/jsonlines", decode_jsonlines, encode_jsonlines,
                           aliases=("application/x-jsonlines", "application/jsonl")))
