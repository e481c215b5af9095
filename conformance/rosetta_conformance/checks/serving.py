"""L1 serving: ``IMAGE serve`` with a model extracted from model.tar.gz (S-01 … S-17, M-03)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from rosetta_conformance import wire
from rosetta_conformance.checks import check
from rosetta_conformance.harness import ALT_PORT, SAFE_RANGE, Harness, Served
from rosetta_conformance.outcome import Blocked, Outcome, Skip
from sagemaker_rosetta.containers import Response

UNKNOWN_TYPE = "application/x-rosetta-unknown"
BIG_BYTES = 5_900_000


def _show(r: Response) -> str:
    return f"{r.status} {r.headers.get('content-type', '')} {wire.short(r.body, 80)} ({r.seconds * 1000:.0f} ms)"


def _sample_ok(h: Harness, served: Served, what: str) -> Outcome:
    ctype, body, _ = h.sample()
    r = served.server.invoke(body, ctype)
    sent = f"{what}; POST /invocations {ctype} {wire.short(body, 60)}"
    if r.status != 200:
        said = r.text.strip().splitlines()[:1]
        return Outcome(False, f"sample invocation answered {r.status}" + (f": {said[0][:200]}" if said else "")
                       + (" (does the manifest's payload fit the model?)" if 400 <= r.status < 500 else ""),
                       sent, _show(r))
    return Outcome(True, f"ready after {served.startup.ready_seconds:.1f} s", sent, _show(r))


def big_body(h: Harness, size: int = BIG_BYTES) -> tuple[str, bytes]:
    """A body of ``size`` bytes of valid records (5.9 MB for S-12), from the CSV or JSON Lines sample."""
    p = h.manifest.csv or h.manifest.payload("application/jsonlines")
    if p is None:
        raise Skip("needs a text/csv or application/jsonlines payload to build a large body")
    rows = wire.csv_rows(p.body)
    out: list[bytes] = []
    i = total = 0
    while total < size:
        row = rows[i % len(rows)] + b"\n"
        out.append(row)
        total += len(row)
        i += 1
    body = b"".join(out)[:size]
    return p.content_type, body[: body.rfind(b"\n") + 1]


@check("S-01")
def tarball_round_trip(h: Harness) -> Outcome:
    served = h.ready("main")
    out = _sample_ok(h, served, "model.tar.gz extracted into a fresh /opt/ml/model")
    return out


@check("S-02")
def read_only_model(h: Harness) -> Outcome:
    try:
        served = h.ready("ro")
    except Blocked as exc:
        h.ready("main")  # if the default server is broken too, that is the cause: stay blocked by it
        return Outcome(False, f"fails with /opt/ml/model read-only: {exc.reason}", "-v model:/opt/ml/model:ro",
                       "")
    return _sample_ok(h, served, "-v model:/opt/ml/model:ro")


@check("S-03")
def port_8080(h: Harness) -> Outcome:
    try:
        served = h.ready("main")
    except Blocked as exc:
        if exc.clause == "S-03":
            return Outcome(False, exc.reason, "docker run IMAGE serve; GET /ping on 8080", "")
        raise
    ping = served.server.request("GET", "/ping", timeout=2)
    if ping.status != 200:
        return Outcome(False, "GET /ping not 200", "GET /ping", _show(ping))
    return _sample_ok(h, served, "GET /ping → 200")


@check("S-04")
def bind_to_port(h: Harness) -> Outcome:
    served = h.server("port")
    found = h.listeners(served)
    ports = sorted({ln.port for ln in found})
    sent = f"SAGEMAKER_BIND_TO_PORT={ALT_PORT}; listening sockets from /proc/net/tcp{{,6}}"
    if ALT_PORT not in ports:
        return Outcome(False, f"nothing listens on {ALT_PORT}", sent, f"listening: {ports}")
    if 8080 in ports:
        return Outcome(False, "8080 is still open: two containers of a pipeline would clash", sent,
                       f"listening: {ports}")
    ping = ""
    if not all(wire.is_loopback(ln.address) for ln in found if ln.port == ALT_PORT):  # else S-05's business
        # the model may still be loading: any HTTP answer on the port will do (speed is S-07/S-09's business)
        deadline = time.monotonic() + h.manifest.serving.ready_timeout
        while not ping:
            try:
                ping = f"; GET /ping on {ALT_PORT}: {served.server.request('GET', '/ping', timeout=5).status}"
            except OSError as exc:
                if time.monotonic() > deadline or not served.server.running():
                    return Outcome(False, f"{ALT_PORT} listens but never answers HTTP: {exc}", sent,
                                   f"listening: {ports}")
                time.sleep(0.5)
    return Outcome(True, "", sent, f"listening: {ports}{ping}")


@check("S-05")
def all_interfaces(h: Harness) -> Outcome:
    served = h.server("main")
    found = [ln for ln in h.listeners(served) if ln.port == 8080]
    sent = "listening sockets on 8080; GET /ping through -p 127.0.0.1::8080"
    addrs = sorted({ln.address for ln in found})
    if not found:
        raise Blocked("S-03", "nothing listens on 8080")
    if all(wire.is_loopback(a) for a in addrs):
        return Outcome(False, "listens on loopback only: unreachable from outside the container", sent,
                       f"8080 on {addrs}")
    served = h.ready("main")
    return Outcome(True, "", sent, f"8080 on {addrs}; reachable, /ping 200")


@check("S-06")
def connect_latency(h: Harness) -> Outcome:
    served = h.ready("main")
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", served.server.host_port), timeout=5):
            times.append(time.perf_counter() - t0)
    worst = max(times)
    return Outcome(worst < 0.25, "" if worst < 0.25 else "slow TCP accept", "20 TCP connects",
                   f"max {worst * 1000:.1f} ms, median {sorted(times)[10] * 1000:.1f} ms")


def _pings_during_invocation(served: Served, ctype: str, body: bytes) -> tuple[list[tuple[int, float]], str]:
    done = threading.Event()
    result: list[Response | Exception] = []

    def invoke() -> None:
        try:
            result.append(served.server.invoke(body, ctype, timeout=120))
        except Exception as exc:  # reported below
            result.append(exc)
        finally:
            done.set()

    threading.Thread(target=invoke, daemon=True).start()
    pings: list[tuple[int, float]] = []
    time.sleep(0.05)
    while (not done.is_set() or len(pings) < 5) and len(pings) < 200:
        try:
            r = served.server.request("GET", "/ping", timeout=2.5)
            pings.append((r.status, r.seconds))
        except OSError:
            pings.append((0, 2.5))
        time.sleep(0.02)
    done.wait(120)
    inflight = result[0] if result else None
    slowest = max(s for _, s in pings)
    return pings, f"{len(pings)} pings, slowest {slowest * 1000:.0f} ms; invocation: " + (
        _show(inflight) if isinstance(inflight, Response) else repr(inflight))


@check("S-07")
def ping_during_invocation(h: Harness) -> Outcome:
    """A stall is confirmed by a second window, so one scheduling hiccup of a busy CI host is not a FAIL."""
    served = h.ready("main")
    ctype, body = big_body(h, 1_000_000)
    sent = f"GET /ping every 20 ms during POST /invocations of {len(body) / 1e6:.1f} MB (twice if needed)"
    seen = []
    for _ in range(2):
        pings, got = _pings_during_invocation(served, ctype, body)
        seen.append(got)
        bad = [p for p in pings if p[0] != 200 or p[1] >= 2.0]
        if not bad:
            return Outcome(True, "", sent, " | ".join(seen))
    return Outcome(False, f"{len(bad)} ping(s) not 200 within 2 s, in both windows", sent, " | ".join(seen))


@check("S-08")
def time_to_ready(h: Harness) -> Outcome:
    served = h.ready("main")
    secs = served.startup.ready_seconds
    assert secs is not None
    limit = h.manifest.serving.ready_timeout
    h.figures["time_to_first_ping_200_s"] = secs
    return Outcome(secs <= limit, f"bound {limit:.0f} s", "docker run IMAGE serve; poll GET /ping",
                   f"first 200 after {secs:.2f} s")


@check("S-09")
def no_ready_before_load(h: Harness) -> Outcome:
    served = h.ready("main")
    st = served.startup
    first = st.first_invocation
    statuses = sorted(set(st.ping_statuses))
    got = f"/ping statuses while starting {statuses}, slowest {st.slowest_ping * 1000:.0f} ms; " \
          f"first invocation: {_show(first) if first else 'no answer'}"
    sent = "poll GET /ping every 0.1 s from start; POST the sample right after the first 200"
    if not h.manifest.serving.payloads:
        raise Skip("no sample payload")
    if st.refused is not None:
        # a definite refusal right after the first 200: a loading problem only if the sample works now
        ctype, body, _ = h.sample()
        now = served.server.invoke(body, ctype)
        if now.status != 200:
            raise Blocked("S-03", f"the sample is refused, also now: {_show(now)}")
        return Outcome(False, "/ping said 200 before the model could answer", sent, got + f"; now: {_show(now)}")
    if first is None or first.status != 200:
        return Outcome(False, "/ping said 200 before the model could answer", sent, got)
    if st.slowest_ping >= 2.0:
        return Outcome(False, "/ping took ≥ 2 s while loading", sent, got)
    return Outcome(True, "", sent, got)


@check("S-10")
def unknown_headers(h: Harness) -> Outcome:
    served = h.ready("main")
    ctype, body, _ = h.sample()
    plain = served.server.invoke(body, ctype)
    extra = served.server.request("POST", "/invocations", body, {
        "Content-Type": ctype, "X-Amzn-SageMaker-Custom-Attributes": "trace=1",
        "X-Amzn-SageMaker-Target-Model": "model.tar.gz", "X-Foo": "bar", "X-Amzn-Trace-Id": "Root=1-abc"})
    ok = extra.status == plain.status == 200 and extra.body == plain.body
    return Outcome(ok, "" if ok else "extra headers changed the answer",
                   "sample with X-Amzn-SageMaker-Custom-Attributes, X-Foo, X-Amzn-Trace-Id", _show(extra))


@check("S-11")
def response_time(h: Harness) -> Outcome:
    served = h.ready("main")
    shown = []
    worst = 0.0
    for p in h.manifest.serving.payloads:
        r = served.server.invoke(p.body, p.content_type, timeout=70)
        worst = max(worst, r.seconds)
        shown.append(f"{p.content_type}: {r.status} in {r.seconds * 1000:.0f} ms")
    return Outcome(worst < 60, "" if worst < 60 else "slower than SageMaker's 60 s invocation limit",
                   "each manifest payload", "; ".join(shown))


@check("S-12")
def large_payload(h: Harness) -> Outcome:
    served = h.ready("main")
    ctype, body = big_body(h)
    sent = f"POST /invocations {ctype}, {len(body):,} bytes"
    try:
        r = served.server.invoke(body, ctype, timeout=120)
    except OSError as exc:
        return Outcome(False, f"connection failed: {exc}", sent, "")
    if r.status == 413:
        return Outcome(False, "413 below SageMaker's 6 MB limit: raise the server's body limit", sent, _show(r))
    return Outcome(r.status == 200, "" if r.status == 200 else "large body not served", sent, _show(r))


@check("S-13", final=True)
def sigterm_drain(h: Harness) -> Outcome:
    served = h.ready("main")
    ctype, body = big_body(h, 1_000_000) if (h.manifest.csv or h.manifest.payload("application/jsonlines")) \
        else h.sample()[:2]
    result: list[Response | Exception] = []
    finished: list[float] = []

    def invoke() -> None:
        try:
            result.append(served.server.invoke(body, ctype, timeout=60))
        except Exception as exc:  # reported below
            result.append(exc)
        finished.append(time.monotonic())

    t = threading.Thread(target=invoke, daemon=True)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    served.server.kill("TERM")
    code = served.server.wait_exit(30)
    took = time.monotonic() - t0
    t.join(5)
    inflight = result[0] if result else None
    was_inflight = bool(finished) and finished[0] > t0
    got = (f"exit {code} after {took:.1f} s" if code is not None else "still running 30 s after SIGTERM") + \
        f"; request {'in flight' if was_inflight else 'already done'} at SIGTERM: " + \
        (_show(inflight) if isinstance(inflight, Response) else repr(inflight))
    sent = f"docker kill -s TERM 0.3 s into POST /invocations ({len(body):,} bytes)"
    if code is None:
        return Outcome(False, "did not exit within 30 s of SIGTERM (SageMaker then kills it)", sent, got)
    if not isinstance(inflight, Response) or inflight.status >= 500:
        return Outcome(False, "in-flight request failed during shutdown", sent, got)
    return Outcome(True, "", sent, got)


@dataclass
class Probe:
    what: str
    expect: int | str
    response: Response


def matrix(h: Harness) -> list[Probe]:
    """The Content-Type × Accept × body matrix (S-16), shared with S-17."""
    def make() -> list[Probe]:
        served = h.ready("main")
        srv = served.server
        probes: list[Probe] = []
        payloads = h.manifest.serving.payloads
        if not payloads:
            raise Skip("no payloads")
        for p in payloads:
            probes.append(Probe(f"{p.content_type}", 200, srv.invoke(p.body, p.content_type)))
            probes.append(Probe(f"{p.content_type}; charset=utf-8", 200,
                                srv.invoke(p.body, f"{p.content_type}; charset=utf-8")))
            probes.append(Probe(f"{p.content_type}, Accept */*", 200, srv.invoke(p.body, p.content_type, "*/*")))
            bad = h.manifest.serving.bad_payloads.get(p.content_type)
            if bad is not None:
                probes.append(Probe(f"{p.content_type} malformed body {wire.short(bad, 30)}", 400,
                                    srv.invoke(bad, p.content_type)))
        p = payloads[0]
        probes.append(Probe(f"Content-Type {UNKNOWN_TYPE}", 415, srv.invoke(p.body, UNKNOWN_TYPE)))
        probes.append(Probe(f"{p.content_type}, Accept {UNKNOWN_TYPE}", 406,
                            srv.invoke(p.body, p.content_type, UNKNOWN_TYPE)))
        return probes
    return h.once("matrix", make)


@check("S-16")
def content_negotiation(h: Harness) -> Outcome:
    probes = matrix(h)
    wrong = [f"{p.what}: {p.response.status} (want {p.expect})" for p in probes if p.response.status != p.expect]
    got = "; ".join(f"{p.what} → {p.response.status}" for p in probes)
    return Outcome(not wrong, "; ".join(wrong), f"{len(probes)} requests", got)


@check("S-17")
def error_bodies(h: Harness) -> Outcome:
    errors = [p for p in matrix(h) if p.response.status >= 400]
    if not errors:
        raise Skip("no error responses to inspect")
    bad = [f"{p.what}: {p.response.status} body {len(p.response.body)} bytes" for p in errors
           if not p.response.body.strip() or len(p.response.body) > 4096]
    got = "; ".join(f"{p.response.status} {wire.short(p.response.body, 60)}" for p in errors)
    return Outcome(not bad, "empty or oversized error bodies: " + "; ".join(bad) if bad else "",
                   f"{len(errors)} error responses from the S-16 matrix", got)


@check("M-03")
def only_bind_port(h: Harness) -> Outcome:
    served = h.server("port")
    ports = sorted({ln.port for ln in h.listeners(served)})
    lo, hi = SAFE_RANGE
    stray = [p for p in ports if p != ALT_PORT and not lo <= p <= hi]
    sent = f"SAGEMAKER_BIND_TO_PORT={ALT_PORT}, SAGEMAKER_SAFE_PORT_RANGE={lo}-{hi}"
    return Outcome(not stray, f"ports outside the bind port and safe range: {stray}" if stray else "", sent,
                   f"listening: {ports}")
