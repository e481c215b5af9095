"""The bad-input matrix: the same request bytes for every runtime, with the status the contract promises.

Each case is sent raw over a socket (so nothing "fixes" it on the way) to an iris model with 4
features. ``records`` is the number of output records a 200 must carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROW = "5.1,3.5,1.4,0.2"
CSV = {"Content-Type": "text/csv"}
JSON = {"Content-Type": "application/json"}
JSONL = {"Content-Type": "application/jsonlines"}


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    records: int | None = None
    method: str = "POST"
    path: str = "/invocations"


def _rows(n: int) -> bytes:
    return ("\n".join([ROW] * n) + "\n").encode()


CASES: list[Case] = [
    # -- CSV: forms every runtime accepts (B-08, B-09) --
    Case("csv 1 row, final newline", _rows(1), CSV, 200, 1),
    Case("csv 1 row, no final newline", ROW.encode(), CSV, 200, 1),
    Case("csv 2 rows", _rows(2), CSV, 200, 2),
    Case("csv 1000 rows", _rows(1000), CSV, 200, 1000),
    Case("csv CRLF", f"{ROW}\r\n{ROW}\r\n".encode(), CSV, 200, 2),
    Case("csv BOM", b"\xef\xbb\xbf" + _rows(2), CSV, 200, 2),
    Case("csv blank lines between and after", f"{ROW}\n\n{ROW}\n\n".encode(), CSV, 200, 2),
    Case("csv spaces around fields", b" 5.1 , 3.5,1.4 ,0.2\n", CSV, 200, 1),
    Case("csv scientific notation", b"5.1e0,35e-1,1.4E+0,.2\n", CSV, 200, 1),
    Case("csv integers", b"5,3,1,0\n", CSV, 200, 1),
    Case("csv negative numbers", b"-5.1,-3.5,-1.4,-0.2\n", CSV, 200, 1),
    Case("csv header=present parameter", f"a,b,c,d\n{ROW}\n".encode(),
         {"Content-Type": "text/csv; header=present"}, 200, 1),
    Case("csv charset parameter", _rows(1), {"Content-Type": "text/csv; charset=utf-8"}, 200, 1),
    Case("csv upper-case media type", _rows(1), {"Content-Type": "TEXT/CSV"}, 200, 1),
    Case("missing Content-Type is csv", _rows(2), {}, 200, 2),
    # -- CSV: malformed → 400 --
    Case("csv header row (no opt-in)", f"sepal_length,sepal_width,petal_length,petal_width\n{ROW}\n".encode(),
         CSV, 400),
    Case("csv empty body", b"", CSV, 400),
    Case("csv only newlines", b"\n\n\n", CSV, 400),
    Case("csv whitespace only", b"   \n  ", CSV, 400),
    Case("csv 3 columns", b"5.1,3.5,1.4\n", CSV, 400),
    Case("csv 5 columns", b"5.1,3.5,1.4,0.2,9\n", CSV, 400),
    Case("csv trailing comma", b"5.1,3.5,1.4,0.2,\n", CSV, 400),
    Case("csv ragged rows", f"{ROW}\n5.1,3.5\n".encode(), CSV, 400),
    Case("csv ragged rows, equal totals", b"5.1,3.5,1.4,0.2,1,2\n5.1,3.5\n", CSV, 400),
    Case("csv empty field", b"5.1,,1.4,0.2\n", CSV, 400),
    Case("csv non-numeric value", b"5.1,abc,1.4,0.2\n", CSV, 400),
    Case("csv label column included", b"5.1,3.5,1.4,0.2,setosa\n", CSV, 400),
    Case("csv NaN", b"5.1,NaN,1.4,0.2\n", CSV, 400),
    Case("csv nan lower", b"nan,3.5,1.4,0.2\n", CSV, 400),
    Case("csv Inf", b"5.1,Inf,1.4,0.2\n", CSV, 400),
    Case("csv -inf", b"5.1,-inf,1.4,0.2\n", CSV, 400),
    Case("csv overflow to infinity", b"1e999,3.5,1.4,0.2\n", CSV, 400),
    Case("csv unterminated quote", b'"5.1,3.5,1.4,0.2\n', CSV, 400),
    Case("csv tab separated", b"5.1\t3.5\t1.4\t0.2\n", CSV, 400),
    Case("csv semicolon separated", b"5.1;3.5;1.4;0.2\n", CSV, 400),
    Case("csv digit separators", b"5_1,3.5,1.4,0.2\n", CSV, 400),
    Case("csv invalid UTF-8", b"5.1,3.5,1.4,0.2\xff\xfe\n", CSV, 400),
    Case("csv NUL bytes", b"5.1,3.5,\x00,0.2\n", CSV, 400),
    Case("csv 10,000 columns", (",".join(["1"] * 10_000) + "\n").encode(), CSV, 400),
    # -- JSON --
    Case("json rows", b"[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]", JSON, 200, 2),
    Case("json single flat row", b"[5.1,3.5,1.4,0.2]", JSON, 200, 1),
    Case("json instances", b'{"instances": [[5.1,3.5,1.4,0.2]]}', JSON, 200, 1),
    Case("json charset parameter", b"[[5.1,3.5,1.4,0.2]]", {"Content-Type": "application/json; charset=UTF-8"}, 200, 1),
    Case("json whitespace", b" \n [ [ 5.1 , 3.5 , 1.4 , 0.2 ] ] \n", JSON, 200, 1),
    Case("json malformed", b"[[5.1,3.5,1.4,0.2]", JSON, 400),
    Case("json trailing garbage", b"[[5.1,3.5,1.4,0.2]] x", JSON, 400),
    Case("json empty body", b"", JSON, 400),
    Case("json empty array", b"[]", JSON, 400),
    Case("json scalar", b"5", JSON, 400),
    Case("json string", b'"5.1,3.5,1.4,0.2"', JSON, 400),
    Case("json object without instances", b'{"rows": [[5.1,3.5,1.4,0.2]]}', JSON, 400),
    Case("json string in row", b'[["5.1",3.5,1.4,0.2]]', JSON, 400),
    Case("json null in row", b"[[null,3.5,1.4,0.2]]", JSON, 400),
    Case("json boolean in row", b"[[true,3.5,1.4,0.2]]", JSON, 400),
    Case("json ragged rows", b"[[5.1,3.5,1.4,0.2],[1,2]]", JSON, 400),
    Case("json wrong column count", b"[[5.1,3.5,1.4]]", JSON, 400),
    Case("json three levels", b"[[[5.1,3.5,1.4,0.2]]]", JSON, 400),
    Case("json nested 1,000 deep", b"[" * 1000 + b"]" * 1000, JSON, 400),
    Case("json nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, JSON, 400),
    Case("json number overflow", b"[[1e999,3.5,1.4,0.2]]", JSON, 400),
    Case("json invalid UTF-8", b"[[5.1,3.5,1.4,0.2]]\xff", JSON, 400),
    # -- JSON Lines --
    Case("jsonl 2 lines", b"[5.1,3.5,1.4,0.2]\n[6.7,3.0,5.2,2.3]\n", JSONL, 200, 2),
    Case("jsonl blank lines", b"\n[5.1,3.5,1.4,0.2]\n\n[6.7,3.0,5.2,2.3]\n\n", JSONL, 200, 2),
    Case("jsonl alias x-jsonlines", b"[5.1,3.5,1.4,0.2]\n", {"Content-Type": "application/x-jsonlines"}, 200, 1),
    Case("jsonl bad second line", b"[5.1,3.5,1.4,0.2]\n[6.7,3.0,\n", JSONL, 400),
    Case("jsonl object line", b'{"a": 1}\n', JSONL, 400),
    Case("jsonl empty", b"", JSONL, 400),
    # -- Content-Type / Accept (S-16) --
    Case("content-type text/plain", _rows(1), {"Content-Type": "text/plain"}, 415),
    Case("content-type form", _rows(1), {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    Case("content-type multipart", _rows(1), {"Content-Type": "multipart/form-data; boundary=x"}, 415),
    Case("content-type octet-stream", _rows(1), {"Content-Type": "application/octet-stream"}, 415),
    Case("accept json", _rows(2), {**CSV, "Accept": "application/json"}, 200, 2),
    Case("accept jsonlines", _rows(2), {**CSV, "Accept": "application/jsonlines"}, 200, 2),
    Case("accept */*", _rows(2), {**CSV, "Accept": "*/*"}, 200, 2),
    Case("accept text/*", _rows(2), {**CSV, "Accept": "text/*"}, 200, 2),
    Case("accept list with q-values", _rows(2), {**CSV, "Accept": "text/html, text/csv;q=0.5"}, 200, 2),
    Case("accept upper case with parameters", _rows(1), {**CSV, "Accept": "Application/JSON; charset=utf-8"}, 200, 1),
    Case("accept unsupported", _rows(1), {**CSV, "Accept": "text/html"}, 406),
    Case("accept only q=0", _rows(1), {**CSV, "Accept": "text/csv;q=0"}, 406),
    Case("accept image", _rows(1), {**CSV, "Accept": "image/png"}, 406),
    Case("unknown headers ignored", _rows(1), {**CSV, "X-Amzn-SageMaker-Custom-Attributes": "a=b", "X-Foo": "1"},
         200, 1),
    # -- routes --
    Case("GET /ping", method="GET", path="/ping"),
    Case("GET /execution-parameters", method="GET", path="/execution-parameters"),
    Case("GET /invocations", method="GET", status=405),
    Case("PUT /invocations", _rows(1), CSV, method="PUT", status=405),
    Case("POST /ping", method="POST", path="/ping", status=405),
    Case("GET /ping/ (trailing slash)", method="GET", path="/ping/", status=404),
    Case("GET /", method="GET", path="/", status=404),
    Case("POST /predict", _rows(1), CSV, method="POST", path="/predict", status=404),
    Case("GET /docs (no debug pages)", method="GET", path="/docs", status=404),
]
