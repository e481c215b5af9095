"""Codecs and negotiation (S-16, B-06, B-08, B-09): one record out per record in, clear 400s."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from rosetta_runtime import codecs
from rosetta_runtime.codecs import CSV, JSON, JSONLINES, DecodeOptions
from rosetta_runtime.errors import BadRequest

OPTS = DecodeOptions()


@pytest.mark.parametrize("n", [1, 2, 1000])
@pytest.mark.parametrize("final_newline", [True, False])
def test_csv_record_counts(n: int, final_newline: bool) -> None:
    body = "\n".join(f"{i},{i + 0.5},-{i}e-3" for i in range(n)) + ("\n" if final_newline else "")
    X = codecs.decode_csv(body.encode(), {}, OPTS)
    assert X.shape == (n, 3)
    assert X[-1, 1] == n - 1 + 0.5


def test_single_row_is_not_a_header() -> None:  # B-09
    assert codecs.decode_csv(b"5.1,3.5,1.4,0.2\n", {}, OPTS).shape == (1, 4)


def test_header_opt_in_rfc4180_and_option() -> None:
    body = b"a,b\n1,2\n3,4\n"
    assert codecs.decode_csv(body, {"header": "present"}, OPTS).tolist() == [[1, 2], [3, 4]]
    assert codecs.decode_csv(body, {}, DecodeOptions(csv_header=True)).shape == (2, 2)
    with pytest.raises(BadRequest, match="row 1: 'a' is not a number"):
        codecs.decode_csv(body, {}, OPTS)


@pytest.mark.parametrize("body, expected", [
    (b"\xef\xbb\xbf1,2\n3,4", [[1, 2], [3, 4]]),  # BOM
    (b"1,2\r\n3,4\r\n", [[1, 2], [3, 4]]),  # CRLF
    (b"1,2\n\n3,4\n\n", [[1, 2], [3, 4]]),  # blank lines are not records
    (b' "1", 2\n3,"4"', [[1, 2], [3, 4]]),  # quoted numbers (slow path)
    (b" 1 , 2 \n3,4", [[1, 2], [3, 4]]),
])
def test_csv_tolerated_forms(body: bytes, expected: list[list[float]]) -> None:
    assert codecs.decode_csv(body, {}, OPTS).tolist() == expected


@pytest.mark.parametrize("body, message", [
    (b"", "empty payload"),
    (b"\n\n", "empty payload"),
    (b"1,2\n3", "row 2 has 1 columns, expected 2"),
    (b"1,2\n3,4,5\n6", "row 2 has 3 columns, expected 2"),  # totals match 3x2: the fast path must not be fooled
    (b"1,abc", "row 1: 'abc' is not a number"),
    (b"1,,3", "row 1: '' is not a number"),
    (b"1,2\nnan,3", "row 2: non-finite value"),
    (b"1,inf", "row 1: non-finite value"),
    (b"1,2\xff", "invalid UTF-8"),
    (b'"1,2', "is not a number"),
    (b"1_000,2", "row 1: '1_000' is not a number"),
    (b"0x1,2", "row 1: '0x1' is not a number"),
    (b'1,2\r3"x', "malformed CSV"),
])
def test_csv_bad_input(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        codecs.decode_csv(body, {}, OPTS)


def test_csv_n_features_checked() -> None:
    with pytest.raises(BadRequest, match="row 1 has 3 columns, expected 4"):
        codecs.decode_csv(b"1,2,3", {}, DecodeOptions(n_features=4))


@pytest.mark.parametrize("doc, shape", [
    ([[1, 2], [3, 4]], (2, 2)), ([1, 2, 3], (1, 3)), ({"instances": [[1], [2], [3]]}, (3, 1)),
])
def test_json_shapes(doc: object, shape: tuple[int, int]) -> None:
    assert codecs.decode_json(json.dumps(doc).encode(), {}, OPTS).shape == shape


@pytest.mark.parametrize("body, message", [
    (b"{not json", "malformed JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
    (b" [" * 33 + b"]" * 33, "JSON nested too deeply"),
    (b'{"rows": []}', "expected an array of rows"),
    (b"[[1, 2], [3]]", "row 2 has 1 columns, expected 2"),
    (b'[[1, "a"]]', 'row 1: "a" is not a number'),
    (b"[[true, 1]]", "row 1: true is not a number"),
    (b"[]", "empty payload"),
    (b"   ", "empty payload"),
])
def test_json_bad_input(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        codecs.decode_json(body, {}, OPTS)


def test_jsonlines() -> None:
    assert codecs.decode_jsonlines(b"[1,2]\n\n[3,4]\n", {}, OPTS).shape == (2, 2)
    with pytest.raises(BadRequest, match="line 1: JSON nested too deeply"):
        codecs.decode_jsonlines(b"[" * 40 + b"]" * 40, {}, OPTS)
    with pytest.raises(BadRequest, match="line 2: malformed JSON"):
        codecs.decode_jsonlines(b"[1,2]\n[3,\n", {}, OPTS)


def test_encoders_one_record_per_input() -> None:
    labels = np.array(["setosa", "virginica"])
    assert CSV.encode(labels) == b"setosa\nvirginica\n"
    assert CSV.encode(np.array([[0.25, 0.75], [1.0, 0.1]])) == b"0.25,0.75\n1.0,0.1\n"  # shortest round trip
    assert CSV.encode(np.array([1, 2])) == b"1\n2\n"
    assert CSV.encode(np.array([True, False])) == b"1\n0\n"
    assert CSV.encode(np.array([[np.nan, 1.0]])) == b"nan,1.0\n"  # not orjson's null
    tiny_huge = np.array([1e-05, 1e16, -0.1, 2.5e-300])
    assert [float(v) for v in CSV.encode(tiny_huge).split()] == tiny_huge.tolist()  # exact round trip
    assert JSON.encode(np.array([[0.5, 1.0]])) == b'{"predictions":[[0.5,1.0]]}'
    assert JSON.encode(np.array([np.inf])) == b'{"predictions":[Infinity]}'  # json's own, not orjson's null
    assert JSONLINES.encode(np.array([1.5, 2.0])) == b"1.5\n2.0\n"
    assert CSV.encode(np.array(['a,"b"'])) == b'"a,""b"""\n'
    assert JSON.encode(labels) == b'{"predictions":["setosa","virginica"]}'
    assert JSONLINES.encode(np.array([[1.5], [2.0]])) == b"[1.5]\n[2.0]\n"


@pytest.mark.parametrize("accept, preferred, expected", [
    (None, "text/csv", "text/csv"), ("", "text/csv", "text/csv"), ("*/*", "text/csv", "text/csv"),
    ("application/json", "application/json", "application/json"),
    ("APPLICATION/JSON; charset=utf-8", "application/json", "application/json"),
    ("text/html, application/jsonlines;q=0.5, application/json;q=0.9", "text/html", "application/json"),
    ("application/json;q=0, text/csv", "text/csv", "text/csv"),
    ("application/*", "application/json", "application/json"),
    ("application/x-jsonlines", "application/x-jsonlines", "application/jsonlines"),
    ("text/html", "text/html", None), ("application/json;q=0", None, None),
])
def test_negotiate(accept: str | None, preferred: str | None, expected: str | None) -> None:
    """(what a user output_fn is asked for, the codec otherwise) (D3)."""
    first, codec = codecs.negotiate(accept, "text/csv", "text/csv")
    assert first == preferred
    assert (codec.media_type if codec else None) == expected


def test_negotiate_default_without_codec() -> None:
    """SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT may name a type only output_fn produces; the codec falls back."""
    assert codecs.negotiate("*/*", "application/x-pipe", "text/csv") == ("application/x-pipe", CSV)
    assert codecs.negotiate("text/html, */*;q=0.1", "application/json", "application/json") == ("text/html", JSON)


def test_parse_media_type() -> None:
    assert codecs.parse_media_type("Text/CSV; Charset=UTF-8; header=present") == (
        "text/csv", {"charset": "utf-8", "header": "present"})


def test_arrow_accelerator_agrees_with_numpy_path() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40_000, 4))
    body = "".join("%r,%r,%r,%r\n" % tuple(r) for r in X.tolist()).encode()
    assert len(body) >= codecs.ARROW_MIN_BYTES
    assert codecs._csv_arrow(body.strip(), 4) is not None  # the accelerator is taken...
    assert np.array_equal(codecs.decode_csv(body, {}, OPTS), X)  # ...and exact
    assert np.array_equal(np.loadtxt(io.BytesIO(CSV.encode(X)), delimiter=","), X)  # shortest repr round-trips
    ragged = body + b"1,2\n"
    with pytest.raises(BadRequest, match="row 40001 has 2 columns, expected 4"):
        codecs.decode_csv(ragged, {}, OPTS)
    with pytest.raises(BadRequest, match="non-finite"):
        codecs.decode_csv(body + b"nan,1,2,3\n", {}, OPTS)


@pytest.mark.parametrize("rows", [3, 40_000])  # numpy's reader, Arrow's reader
def test_header_rule_is_the_same_on_every_reader(rows: int) -> None:  # D1
    body = "".join(f"{i},{i + 0.5}\n" for i in range(rows)).encode()
    if rows > 3:
        assert codecs._csv_arrow(body.strip(), 2) is not None
    for params, opts in (({"header": "present"}, OPTS), ({}, DecodeOptions(csv_header=True))):
        assert codecs.decode_csv(body, params, opts).shape == (rows, 2)  # a numeric first line is a record
        assert codecs.decode_csv(b'"a", b\n' + body, params, opts).shape == (rows, 2)  # a header is dropped
    named = DecodeOptions(features=("1", "2"))  # feature names that read as numbers: equal → a header
    assert codecs.decode_csv(b"1,2\n" + body, {"header": "present"}, named).shape == (rows, 2)
    with pytest.raises(BadRequest, match=r"^row 1: 'a' is not a number \(a header row\? send"):
        codecs.decode_csv(b"a,b\n" + body, {"header": "absent"}, DecodeOptions(csv_header=True))
    with pytest.raises(BadRequest, match=r"^row 2: 'a' is not a number$"):
        codecs.decode_csv(b"0,0\na,b\n" + body, {"header": "present"}, OPTS)  # only the first line may be one
