"""L1 batch transform: the same ``serve`` with the batch environment (B-01 … B-09)."""

from __future__ import annotations

import json

from rosetta_conformance import wire
from rosetta_conformance.checks import check
from rosetta_conformance.harness import Harness, Served
from rosetta_conformance.outcome import Blocked, Outcome, Skip
from sagemaker_rosetta.containers import Response

STRATEGIES = {"MULTI_RECORD", "SINGLE_RECORD", "MultiRecord", "SingleRecord"}


def _show(r: Response) -> str:
    return f"{r.status} {r.headers.get('content-type', '')} {wire.short(r.body, 80)}"


def _records(r: Response, request_type: str) -> list[str]:
    return wire.output_records(r.body, r.headers.get("content-type") or request_type)


@check("B-01")
def batch_serve(h: Harness) -> Outcome:
    served = h.ready("batch")
    ping = served.server.request("GET", "/ping", timeout=2)
    ctype, body, _ = h.sample()
    r = served.server.invoke(body, ctype)
    ok = ping.status == 200 and r.status == 200
    return Outcome(ok, "", "SAGEMAKER_BATCH=true serve; GET /ping; POST /invocations",
                   f"ping {ping.status}; invocation {_show(r)}")


@check("B-02")
def batch_env(h: Harness) -> Outcome:
    served = h.ready("batch")
    env = dict(served.server.env)
    ctype, body, _ = h.sample()
    r = served.server.invoke(body, ctype)
    return Outcome(r.status == 200 and served.server.running(), "", f"env {env}", _show(r))


def _execution_parameters(h: Harness) -> Response:
    return h.once("exec-params", lambda: h.ready("batch").server.request("GET", "/execution-parameters"))


@check("B-03")
def execution_parameters(h: Harness) -> Outcome:
    r = _execution_parameters(h)
    sent = "GET /execution-parameters"
    if r.status == 404:
        return Outcome(True, "404: SageMaker uses its defaults", sent, _show(r))
    if r.status != 200:
        return Outcome(False, "must be 200 with JSON or 404", sent, _show(r))
    try:
        doc = json.loads(r.body)
    except ValueError:
        return Outcome(False, "200 but not JSON", sent, _show(r))
    problems = []
    if not isinstance(doc, dict):
        problems.append("not a JSON object")
    else:
        if not isinstance(doc.get("MaxConcurrentTransforms"), int) or doc["MaxConcurrentTransforms"] < 1:
            problems.append("MaxConcurrentTransforms must be an integer ≥ 1")
        if doc.get("BatchStrategy") not in STRATEGIES:
            problems.append(f"BatchStrategy must be one of {sorted(STRATEGIES)}")
        if not isinstance(doc.get("MaxPayloadInMB"), int) or doc["MaxPayloadInMB"] < 0:
            problems.append("MaxPayloadInMB must be an integer ≥ 0")
    return Outcome(not problems, "; ".join(problems), sent, _show(r))


@check("B-05")
def execution_limits(h: Harness) -> Outcome:
    r = _execution_parameters(h)
    if r.status != 200:
        return Outcome(True, f"{r.status}: defaults apply", "GET /execution-parameters", _show(r))
    try:
        doc = json.loads(r.body)
        mb, n = int(doc["MaxPayloadInMB"]), int(doc["MaxConcurrentTransforms"])
    except (ValueError, KeyError, TypeError):
        raise Skip("no valid JSON (see B-03)") from None
    ok = mb <= 100 and mb * n <= 100
    return Outcome(ok, "" if ok else "CreateTransformJob rejects MaxPayloadInMB > 100 or concurrency × payload > 100",
                   "GET /execution-parameters", f"MaxPayloadInMB={mb}, MaxConcurrentTransforms={n}")


@check("B-06")
def no_accept(h: Harness) -> Outcome:
    served = h.ready("batch")
    shown = []
    ok = True
    for p in h.manifest.serving.payloads:
        r = served.server.invoke(p.body, p.content_type, accept=None)
        ok = ok and r.status == 200
        shown.append(f"{p.content_type}: {_show(r)}")
    if not shown:
        raise Skip("no payloads")
    return Outcome(ok, "" if ok else "a request without Accept must succeed (batch transform sends none)",
                   "POST /invocations without an Accept header", "; ".join(shown))


def _line_format(h: Harness) -> tuple[str, list[bytes]]:
    for ctype in ("text/csv", "application/jsonlines"):
        p = h.manifest.payload(ctype)
        if p is not None:
            return ctype, wire.csv_rows(p.body)
    raise Skip("needs a text/csv or application/jsonlines payload (line-split records)")


def _reference(h: Harness, served: Served) -> tuple[str, list[bytes], list[str]]:
    """The sample's rows and the predictions for them, one per row (checked against the manifest)."""
    ctype, rows = _line_format(h)
    r = served.server.invoke(b"\n".join(rows) + b"\n", ctype)
    if r.status != 200:
        raise Blocked("B-01", f"the sample is not served: {_show(r)}")
    return ctype, rows, _records(r, ctype)


@check("B-08")
def record_counts(h: Harness) -> Outcome:
    served = h.ready("batch")
    ctype, rows, ref = _reference(h, served)
    expected = h.manifest.payload(ctype)
    assert expected is not None
    problems = []
    got = [f"sample {len(rows)} rows → {len(ref)} records"]
    if len(ref) != expected.records or len(ref) != len(rows):
        problems.append(f"sample: {len(ref)} output records for {len(rows)} input rows "
                        f"(manifest expects {expected.records})")
    else:
        for n in (1, 2, 1000):
            picked = [rows[i % len(rows)] for i in range(n)]
            for final in (True, False):
                body = b"\n".join(picked) + (b"\n" if final else b"")
                r = served.server.invoke(body, ctype, timeout=60)
                label = f"{n} record(s) {'with' if final else 'without'} final newline"
                if r.status != 200:
                    problems.append(f"{label}: status {r.status}")
                    continue
                out = _records(r, ctype)
                got.append(f"{label} → {len(out)}")
                if len(out) != n:
                    problems.append(f"{label}: {len(out)} output records")
                elif out != [ref[i % len(rows)] for i in range(n)]:
                    problems.append(f"{label}: outputs out of order")
    return Outcome(not problems, "; ".join(problems),
                   f"{ctype} payloads of 1, 2, 1000 records, with and without a final newline", "; ".join(got))


@check("B-09")
def headerless_single_row(h: Harness) -> Outcome:
    p = h.manifest.csv
    if p is None:
        raise Skip("no text/csv payload")
    served = h.ready("batch")
    row = wire.csv_rows(p.body)[0]
    shown, problems = [], []
    for body in (row + b"\n", row):
        newline = "with" if body.endswith(b"\n") else "without"
        r = served.server.invoke(body, "text/csv")
        n = len(_records(r, "text/csv")) if r.status == 200 else None
        shown.append(f"{wire.short(body, 40)} → {_show(r)}")
        if n != 1:
            problems.append(f"{newline} newline: "
                            f"{'status ' + str(r.status) if n is None else f'{n} records'}")
    return Outcome(not problems, ("a single CSV row must give one prediction (header-less input): "
                                  + "; ".join(problems)) if problems else "",
                   "one headerless CSV row", "; ".join(shown))


#: lines per payload when B-13 splits a headered file (the first payload carries the header)
SPLITS = (2, 3, 7)


def split_lines(lines: list[bytes], per_payload: int) -> list[bytes]:
    """Consecutive lines, ``per_payload`` to a request, as a Line split with MultiRecord does."""
    return [b"\n".join(lines[i:i + per_payload]) + b"\n" for i in range(0, len(lines), per_payload)]


@check("B-13")
def headered_file_split(h: Harness) -> Outcome:
    p = h.manifest.csv
    if p is None:
        raise Skip("no text/csv payload")
    if p.header is None:
        raise Skip("the text/csv payload declares no `header` line: the image is not claimed to read headered CSV")
    served = h.ready("batch")
    _, rows, ref = _reference(h, served)
    ctype = "text/csv; header=present"
    lines = [p.header, *rows]
    sizes = sorted({*SPLITS, len(lines) // 2 + 1, len(lines)})
    got, problems = [], []
    for size in sizes:
        outputs: list[str] = []
        payloads = split_lines(lines, size)
        for i, body in enumerate(payloads, 1):
            r = served.server.invoke(body, ctype, accept=None, timeout=60)
            if r.status != 200:
                problems.append(f"{size} lines per payload: payload {i} of {len(payloads)} answered {_show(r)}")
                break
            outputs += _records(r, "text/csv")
        else:
            got.append(f"{len(payloads)} payload(s) → {len(outputs)}")
            if len(outputs) != len(rows):
                problems.append(f"{size} lines per payload ({len(payloads)} payloads): {len(outputs)} outputs for "
                                f"{len(rows)} data rows")
            elif outputs != ref:
                wrong = next(i for i, (a, b) in enumerate(zip(outputs, ref, strict=True)) if a != b)
                problems.append(f"{size} lines per payload: output {wrong + 1} is not row {wrong + 1}'s prediction "
                                f"({outputs[wrong]!r}, alone it gives {ref[wrong]!r})")
    return Outcome(not problems, "; ".join(problems),
                   f"header + {len(rows)} rows split into payloads of {', '.join(map(str, sizes))} lines, each "
                   f"with Content-Type: {ctype} (SageMaker repeats the job's ContentType)", "; ".join(got))
