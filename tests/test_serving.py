"""Serving, the same requests to every runtime: the trained iris example answers every status (S-*, B-*).

All tests share the session's server of their runtime (tests/conftest.py); none of them changes it.
"""

from __future__ import annotations

import csv
import http.client
import json
import re
import statistics
import time
from pathlib import Path

import pytest

from rosetta_testkit.jobs import ROW, rows
from rosetta_testkit.runtimes import DATA
from sagemaker_rosetta.containers import Server

pytestmark = pytest.mark.docker

ACCEPTED = "text/csv, application/json, application/jsonlines"
LIMIT = 6 * 1024 * 1024


def test_accuracy_and_no_accept_answers_csv(server: Server) -> None:
    with (DATA / "test.csv").open() as fh:
        table = list(csv.DictReader(fh))
    body = (DATA / "test_features.csv").read_bytes()
    r = server.invoke(body, "text/csv", accept=None)  # B-06: a transform job sends no Accept
    assert r.status == 200 and r.headers["content-type"] == "text/csv", r.text
    predicted = r.text.splitlines()
    assert len(predicted) == len(table)  # B-08
    accuracy = sum(p == t["species"] for p, t in zip(predicted, table, strict=True)) / len(table)
    assert accuracy >= 0.9


def test_ping_and_head(server: Server) -> None:  # S-07
    assert server.request("GET", "/ping").status == 200
    assert server.request("HEAD", "/ping").status == 200


@pytest.mark.parametrize("n", [1, 2, 1000])
@pytest.mark.parametrize("final_newline", [True, False])
def test_one_record_per_row(server: Server, n: int, final_newline: bool) -> None:  # B-08, B-09: no header row
    r = server.invoke(rows(n, final_newline), "text/csv", "text/csv")
    assert r.status == 200, r.text
    assert r.text.endswith("\n") and r.text.splitlines() == ["setosa"] * n


def test_single_headerless_row_is_not_eaten(server: Server) -> None:
    r = server.invoke(ROW, "text/csv")
    assert (r.status, r.text) == (200, "setosa\n")


BODIES = [
    ("application/json", b"[[5.1,3.5,1.4,0.2],[6.9,3.1,5.4,2.1]]"),
    ("application/json", b'{"instances": [[5.1,3.5,1.4,0.2],[6.9,3.1,5.4,2.1]]}'),
    ("application/jsonlines", b"[5.1,3.5,1.4,0.2]\n[6.9,3.1,5.4,2.1]\n"),
    ("application/x-jsonlines", b"[5.1,3.5,1.4,0.2]\n[6.9,3.1,5.4,2.1]\n"),
    ("text/csv; charset=utf-8", b"5.1,3.5,1.4,0.2\r\n6.9,3.1,5.4,2.1\r\n"),
]


@pytest.mark.parametrize(("ctype", "body"), BODIES, ids=["json", "json-instances", "jsonl", "x-jsonl", "csv-crlf"])
@pytest.mark.parametrize("accept", ["application/json", "application/jsonlines", "text/csv", "*/*"])
def test_codecs(server: Server, ctype: str, body: bytes, accept: str) -> None:  # S-16
    r = server.invoke(body, ctype, accept)
    assert r.status == 200, r.text
    media = ctype.split(";")[0]
    # */*: the request's own type when a codec writes it (the x-jsonlines alias is written as jsonlines)
    want = accept if accept != "*/*" else "application/jsonlines" if media.endswith("jsonlines") else media
    assert r.headers["content-type"] == want
    if want == "application/json":
        assert json.loads(r.body) == {"predictions": ["setosa", "virginica"]}
    elif want == "application/jsonlines":
        assert [json.loads(line) for line in r.text.splitlines()] == ["setosa", "virginica"]
    else:
        assert r.text == "setosa\nvirginica\n"


def test_accept_list_with_q_values(server: Server) -> None:
    r = server.invoke(b"[5.1,3.5,1.4,0.2]", "application/jsonlines", "text/html;q=0.9, text/csv")
    assert (r.status, r.headers["content-type"], r.text) == (200, "text/csv", "setosa\n")


@pytest.mark.parametrize(("ctype", "body", "pattern"), [
    ("text/csv", b"1,2,3,4\n1,2,abc,4\n", re.escape("row 2: 'abc' is not a number")),
    ("text/csv", b"1,2,3\n", "row 1 has 3 columns, expected 4"),
    ("text/csv", b"1,2,3,4\n1,2,3\n", "row 2 has 3 columns, expected 4"),
    ("text/csv", b"", "empty payload"),
    ("text/csv", b"nan,1,2,3\n", "row 1: non-finite value"),
    ("text/csv", b"\xff\xfe,1,2,3", "invalid UTF-8"),
    # the JSON parser's own words may follow (the golden cases' pattern: "malformed JSON(: .*)?");
    # Julia still says "invalid JSON: ..." (its runtime helper aligns it with the golden cases)
    ("application/json", b"[[1,2,3,4]", "(malformed|invalid) JSON(: .*)?"),
    ("application/json", b"[" * 40 + b"]" * 40, "JSON nested too deeply|invalid JSON: nesting deeper than .*"),
], ids=["not-a-number", "3-columns", "row-2-short", "empty", "nan", "utf-8", "json-malformed", "json-deep"])
def test_bad_requests_are_400_with_one_line(server: Server, ctype: str, body: bytes, pattern: str) -> None:
    r = server.invoke(body, ctype, "text/csv")
    assert r.status == 400, r.text
    assert r.headers["content-type"].startswith("text/plain")  # S-17: a short text, one line
    assert r.text.endswith("\n") and r.text.count("\n") == 1, r.text
    assert re.fullmatch(pattern, r.text[:-1]), r.text


def test_415_406_404_405(server: Server) -> None:
    r = server.invoke(b"x", "text/plain")
    assert (r.status, r.text) == (415, f"unsupported Content-Type 'text/plain'; accepted: {ACCEPTED}\n")
    r = server.invoke(ROW, "text/csv", "image/png")
    assert (r.status, r.text) == (406, f"cannot produce 'image/png'; available: {ACCEPTED}\n")
    r = server.request("GET", "/nope")
    assert (r.status, r.text) == (404, "not found\n")
    for method in ("GET", "DELETE"):
        r = server.request(method, "/invocations")
        assert (r.status, r.text, r.headers["allow"]) == (405, "method not allowed\n", "POST")
    r = server.request("POST", "/ping")
    assert r.status == 405 and "GET" in r.headers["allow"]


def test_payload_limit(server: Server) -> None:  # S-12
    ok = rows(int(5.9 * 1024 * 1024) // (len(ROW) + 1))
    r = server.invoke(ok, "text/csv", "text/csv", timeout=120)
    assert r.status == 200, r.text[:200]
    assert r.body.count(b"\n") == ok.count(b"\n")
    big = b"1" * (LIMIT + 1)
    r = server.invoke(big, "text/csv")
    assert (r.status, r.text) == (413, f"payload too large: {LIMIT + 1} bytes > limit {LIMIT} bytes\n")


def test_execution_parameters(server: Server) -> None:  # B-03: 2 workers
    r = server.request("GET", "/execution-parameters")
    assert r.status == 200 and r.headers["content-type"].startswith("application/json")
    assert json.loads(r.body) == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 2}


def test_unknown_headers_ignored(server: Server) -> None:  # S-10
    r = server.request("POST", "/invocations", ROW, {"Content-Type": "text/csv", "X-Foo": "bar",
                                                     "X-Amzn-SageMaker-Custom-Attributes": "a=b"})
    assert (r.status, r.text) == (200, "setosa\n")


def test_only_the_bind_port_listens(server: Server) -> None:
    """M-03: workers sit on unix sockets or share the one socket; read from the host's /proc."""
    pid = server.pid()
    assert pid is not None
    listening = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                listening.add(int(fields[1].rsplit(":", 1)[1], 16))
    assert listening == {8080}


def test_keepalive_latency_no_nagle_stall(server: Server) -> None:
    """c=1 keep-alive: a Nagle/delayed-ACK stall would cost ≥ 40 ms per request."""
    conn = http.client.HTTPConnection("127.0.0.1", server.host_port, timeout=10)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        conn.request("POST", "/invocations", body=ROW, headers={"Content-Type": "text/csv"})
        assert conn.getresponse().read() == b"setosa\n"
        times.append(time.perf_counter() - t0)
    conn.close()
    assert statistics.median(times) < 0.02, f"median {statistics.median(times) * 1e3:.1f} ms"

