"""Property-based fuzzing of the codecs: any bytes → a matrix or a 400, never another exception."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rosetta_runtime import codecs
from rosetta_runtime.codecs import DecodeOptions
from rosetta_runtime.errors import BadRequest

OPTS = DecodeOptions()
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
grids = st.integers(1, 6).flatmap(lambda w: st.lists(st.lists(finite, min_size=w, max_size=w), min_size=1, max_size=40))
junk = st.binary(max_size=200) | st.text(alphabet=',.0123456789eE+-\n\r "naif[]{}:_x\t', max_size=200).map(str.encode)


@settings(max_examples=400, deadline=None)
@given(grids, st.booleans(), st.booleans())
def test_valid_csv_round_trips(rows: list[list[float]], final_newline: bool, crlf: bool) -> None:
    nl = "\r\n" if crlf else "\n"
    body = nl.join(",".join(repr(v) for v in r) for r in rows) + (nl if final_newline else "")
    X = codecs.decode_csv(body.encode(), {}, OPTS)
    assert X.shape == (len(rows), len(rows[0]))
    assert np.array_equal(X, np.asarray(rows))


@settings(max_examples=300, deadline=None)
@given(grids)
def test_valid_json_and_jsonlines(rows: list[list[float]]) -> None:
    assert codecs.decode_json(json.dumps(rows).encode(), {}, OPTS).shape == (len(rows), len(rows[0]))
    lines = "\n".join(json.dumps(r) for r in rows).encode()
    assert codecs.decode_jsonlines(lines, {}, OPTS).shape == (len(rows), len(rows[0]))


@settings(max_examples=1500, deadline=None)
@given(junk, st.sampled_from([codecs.decode_csv, codecs.decode_json, codecs.decode_jsonlines]))
def test_anything_is_a_matrix_or_a_400(body: bytes, decode: codecs.Decoder) -> None:
    try:
        X = decode(body, {}, OPTS)
    except BadRequest as exc:
        assert exc.status == 400 and exc.message and "\n" not in exc.message
        return
    assert X.ndim == 2 and X.shape[0] >= 1 and np.isfinite(X).all()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["5.1,3.5,1.4,0.2", "6.7,3.0,5.2,2.3"]), min_size=1, max_size=50))
def test_one_output_record_per_input(rows: list[str]) -> None:
    X = codecs.decode_csv("\n".join(rows).encode(), {}, OPTS)
    out = codecs.encode_csv(X.sum(axis=1))
    assert out.count(b"\n") == len(rows)


csv_ish = st.text(alphabet=",.0123456789eE+- \t\nnaif_x", max_size=120).map(str.encode)
#: also quotes (Arrow's quote handling is off for a body without one) and null spellings (none is a gap)
csv_ish_quoted = st.text(alphabet=',.0123456789eE+- \t\nnaif_x"NAul', max_size=120).map(str.encode)


def _agrees_with_precise_path(body: bytes, fast_reader: Callable[[bytes], np.ndarray | None]) -> None:
    """Whatever a fast reader accepts, the csv-module path accepts with the same values (or, for
    NaN/inf, refuses with the message decode_csv gives for the fast reader's matrix)."""
    data = body.strip(b"\n")
    while b"\n\n" in data:
        data = data.replace(b"\n\n", b"\n")
    fast = fast_reader(data)
    if fast is None:
        return
    try:
        slow = codecs._csv_slow(data.decode())
    except BadRequest as exc:
        bad = int(np.flatnonzero(~np.isfinite(fast).all(axis=1))[0]) + 1
        assert exc.message == f"row {bad}: non-finite value"
        return
    assert slow.shape == fast.shape
    assert np.array_equal(slow, fast, equal_nan=True)


@settings(max_examples=1500, deadline=None)
@given(csv_ish)
def test_fast_csv_path_agrees_with_the_precise_one(body: bytes) -> None:
    _agrees_with_precise_path(body, codecs._csv_fast)  # numpy's C reader


@settings(max_examples=1500, deadline=None)
@given(csv_ish_quoted, st.integers(1, 6))
def test_arrow_path_agrees_with_the_precise_one(body: bytes, width: int) -> None:
    _agrees_with_precise_path(body, lambda data: codecs._csv_arrow(data, width))  # Arrow, typed (big bodies)


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 30).flatmap(lambda n: st.lists(st.lists(finite, min_size=3, max_size=3), min_size=n,
                                                       max_size=n)))
def test_encoders_round_trip_floats(rows: list[list[float]]) -> None:
    P = np.asarray(rows)
    assert np.array_equal(np.loadtxt(io.BytesIO(codecs.encode_csv(P)), delimiter=",", ndmin=2), P)
    assert json.loads(codecs.encode_json(P))["predictions"] == rows
    assert [json.loads(line) for line in codecs.encode_jsonlines(P).splitlines()] == rows


@settings(max_examples=300, deadline=None)
@given(grids, st.data())
def test_split_headered_file_loses_no_row(rows: list[list[float]], data: st.DataObject) -> None:
    """Issue 13.1: a headered file cut into payloads at any line, each sent with header=present, gives
    exactly the rows of the file, in order: only the first payload's header is dropped (a payload of the
    header alone is a 400 ``empty payload``, D1, so the first cut comes after the first record)."""
    lines = [",".join(f"c{i}" for i in range(len(rows[0])))] + [",".join(repr(v) for v in r) for r in rows]
    cuts = sorted(data.draw(st.sets(st.integers(2, len(lines)), max_size=len(lines))))
    chunks = [lines[a:b] for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True) if b > a]
    out = [codecs.decode_csv(("\n".join(c) + "\n").encode(), {"header": "present"}, OPTS) for c in chunks]
    assert np.array_equal(np.vstack(out), np.asarray(rows))
    with pytest.raises(BadRequest, match=r"^empty payload$"):
        codecs.decode_csv((lines[0] + "\n").encode(), {"header": "present"}, OPTS)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40).flatmap(lambda n: st.integers(1, 5).flatmap(
    lambda w: st.lists(st.lists(finite, min_size=w, max_size=w), min_size=n, max_size=n))), st.booleans())
def test_csv_rows_are_orjsons_numbers_one_row_per_line(rows: list[list[float]], as_int: bool) -> None:
    """The in-place rewrite of orjson's flat array gives the bytes of its nested form with ``],[`` → newline."""
    orjson = pytest.importorskip("orjson")
    P = np.asarray(rows)
    if as_int:
        P = np.clip(P, -1e15, 1e15).astype(np.int64)
    nested = orjson.dumps(P, option=orjson.OPT_SERIALIZE_NUMPY)
    assert codecs.encode_csv(P) == nested[2:-2].replace(b"],[", b"\n") + b"\n"
    if P.shape[1] == 1:
        assert codecs.encode_csv(P[:, 0]) == codecs.encode_csv(P)
