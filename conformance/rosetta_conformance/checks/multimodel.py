"""The multi-model profile: AWS's custom-container contract for multi-model endpoints (MM-02 … MM-12).

https://docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html. MM-02 … MM-10 take turns
on one server (each holds its lock and leaves none of its models loaded); MM-11 and MM-12 fill a
second one, started with a memory limit, until it answers 507.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rosetta_conformance import wire
from rosetta_conformance.checks import check
from rosetta_conformance.harness import Harness
from rosetta_conformance.multimodel import MODELS_ROOT, MultiModelServer, json_body, listed_names
from rosetta_conformance.outcome import Blocked, Inconclusive, Outcome
from sagemaker_rosetta.containers import Response

UNKNOWN_TYPE = "application/x-rosetta-unknown"
#: SageMaker's /ping timeout, also the bound on an invocation of a loaded model during loads (MM-10)
PING_BOUND = 2.0


def _show(r: Response | None) -> str:
    if r is None:
        return "no answer"
    return f"{r.status} {r.headers.get('content-type', '')} {wire.short(r.body, 100)}"


@contextmanager
def _turn(h: Harness, names: list[str]) -> Iterator[MultiModelServer]:
    """The shared server for one check; its models are unloaded afterwards, whatever happened."""
    mm = h.mme()
    with mm.lock:
        try:
            yield mm
        finally:
            mm.unload_all(names)


def _loaded(mm: MultiModelServer, name: str, *, pad_mb: int = 0) -> Response:
    """Load ``name``; anything but 200 blocks the check (loading itself is MM-03's clause)."""
    r = mm.load(name, pad_mb=pad_mb)
    if r.status != 200:
        raise Blocked("MM-03", f"POST /models {name!r} answered {_show(r)}")
    return r


def _sample(h: Harness) -> tuple[str, bytes]:
    ctype, body, _ = h.sample()
    return ctype, body


@check("MM-02")
def ping_without_models(h: Harness) -> Outcome:
    mm = h.mme()
    first = mm.first_listing
    sent = "serve with SAGEMAKER_MULTI_MODEL=true, /opt/ml/models mounted, no /opt/ml/model; GET /ping; GET /models"
    got = f"first /ping 200 after {mm.ready_seconds:.1f} s; GET /models → {_show(first)}"
    names = listed_names(first) if first is not None else None
    if first is None or first.status != 200 or names is None:
        return Outcome(False, 'GET /models must answer 200 {"models": [...]}', sent, got)
    if names:
        return Outcome(False, f"models listed before any load: {names}", sent, got)
    return Outcome(True, "", sent, got)


@check("MM-03")
def load_model(h: Harness) -> Outcome:
    name = "mm03-model"
    with _turn(h, [name]) as mm:
        url = mm.store.place(name)
        sent = f'POST /models {{"model_name": "{name}", "url": "{url}"}}; GET /models; POST /models/{name}/invoke'
        r = mm.load(name, url)
        if r.status != 200:
            return Outcome(False, "the load must answer 200 once the model can serve", sent, _show(r))
        listing = mm.listing()
        names = listed_names(listing) or []
        ctype, body = _sample(h)
        inv = mm.invoke(name, body, ctype)
        got = f"load {_show(r)} in {r.seconds:.2f} s; list {names}; invoke {_show(inv)}"
        if name not in names:
            return Outcome(False, "a loaded model must be listed by GET /models", sent, got)
        if inv.status != 200:
            return Outcome(False, "a model must serve as soon as its load answered 200", sent, got)
        return Outcome(True, "", sent, got)


@check("MM-04")
def load_twice(h: Harness) -> Outcome:
    name = "mm04-model"
    with _turn(h, [name]) as mm:
        first = _loaded(mm, name)
        again = mm.load(name)
        got = f"first {_show(first)}; again {_show(again)}"
        return Outcome(again.status == 409, "" if again.status == 409 else "a second load of a loaded name must be 409",
                       f"POST /models {name!r} twice", got)


@check("MM-05")
def bad_load_requests(h: Harness) -> Outcome:
    name = "mm05-model"
    with _turn(h, [name]) as mm:
        url = mm.store.place(name)
        bodies = {
            "not JSON": b"model_name=mm05",
            "a JSON array": b'["mm05-model", "/opt/ml/models/mm05-model/model"]',
            "no model_name": f'{{"url": "{url}"}}'.encode(),
            "no url": f'{{"model_name": "{name}"}}'.encode(),
            "a url that does not exist": f'{{"model_name": "{name}", "url": "{MODELS_ROOT}/no-such-model/model"}}'
                                         .encode(),
        }
        wrong, seen = [], []
        for what, body in bodies.items():
            r = mm.raw_load(body)
            seen.append(f"{what}: {_show(r)}")
            if not 400 <= r.status < 500:
                wrong.append(f"{what} → {r.status} (want 4xx)")
            elif not r.body.strip() or len(r.body) > 4096:
                wrong.append(f"{what} → {r.status} with a body of {len(r.body)} bytes (want a short message)")
        after = mm.load(name, url)
        seen.append(f"then a good load of {name!r}: {_show(after)}")
        if after.status != 200:
            wrong.append(f"the name is not free after the refused loads: {after.status}")
        return Outcome(not wrong, "; ".join(wrong), f"{len(bodies)} bad POST /models bodies, then a good one",
                       " | ".join(seen))


@check("MM-06")
def describe_model(h: Harness) -> Outcome:
    name = "mm06-model"
    with _turn(h, [name]) as mm:
        url = mm.store.place(name)
        _loaded(mm, name)
        got_model = mm.get(name)
        unknown = mm.get("mm06-not-loaded")
        doc = json_body(got_model)
        got = f"GET {name}: {_show(got_model)}; GET mm06-not-loaded: {_show(unknown)}"
        wrong = []
        if got_model.status != 200 or not isinstance(doc, dict):
            wrong.append("GET /models/<name> of a loaded model must be 200 with a JSON object")
        elif doc.get("modelName") != name or doc.get("modelUrl") != url:
            wrong.append(f"want modelName {name!r} and modelUrl {url!r}")
        if unknown.status != 404:
            wrong.append(f"a name not loaded must be 404, got {unknown.status}")
        return Outcome(not wrong, "; ".join(wrong), f"GET /models/{name}; GET /models/mm06-not-loaded", got)


@check("MM-07")
def list_and_paginate(h: Harness) -> Outcome:
    names = ["mm07-a", "mm07-b", "mm07-c"]
    with _turn(h, names) as mm:
        urls = {n: mm.store.place(n) for n in names}
        for n in names:
            _loaded(mm, n)
        whole = mm.listing()
        doc = json_body(whole)
        wrong: list[str] = []
        entries = doc.get("models") if isinstance(doc, dict) else None
        if whole.status != 200 or not isinstance(entries, list):
            return Outcome(False, 'GET /models must be 200 {"models": [...]}', "GET /models", _show(whole))
        listed = {str(e.get("modelName")): e.get("modelUrl") for e in entries if isinstance(e, dict)}
        for n, url in urls.items():
            if listed.get(n) != url:
                wrong.append(f"{n}: listed with modelUrl {listed.get(n)!r}, want {url!r}")
        pages, seen, token = [], [], None
        for _ in range(len(listed) + 3):
            query = "limit=1" + (f"&next_page_token={urllib.parse.quote(token, safe='')}" if token else "")
            page = mm.listing(query)
            got = json_body(page)
            page_names = listed_names(page)
            pages.append(f"?{query} → {page.status} {page_names}")
            if page.status != 200 or page_names is None or not isinstance(got, dict):
                wrong.append(f"page ?{query}: {_show(page)}")
                break
            seen += page_names
            token = got.get("nextPageToken")
            if not token:
                break
            if not isinstance(token, str):
                wrong.append(f"nextPageToken must be a string, got {token!r}")
                break
        else:
            wrong.append(f"still a nextPageToken after {len(pages)} pages of at most 1 model for {len(listed)} models")
        twice = sorted({n for n in seen if seen.count(n) > 1})
        missing = [n for n in names if n not in seen]
        if twice:
            wrong.append(f"listed twice across pages: {twice}")
        if missing:
            wrong.append(f"never listed while paging: {missing}")
        note = "one page held them all (the image ignores limit)" if len(pages) == 1 and len(seen) > 1 else ""
        return Outcome(not wrong, "; ".join(wrong) or note,
                       "3 models loaded; GET /models; GET /models?limit=1 following nextPageToken",
                       " | ".join(pages))


@check("MM-08")
def unload(h: Harness) -> Outcome:
    name = "mm08-model"
    with _turn(h, [name]) as mm:
        _loaded(mm, name)
        gone = mm.delete(name)
        ctype, body = _sample(h)
        after = {"get": mm.get(name), "invoke": mm.invoke(name, body, ctype)}
        # GET of a name never loaded is MM-06's: after DELETE the name must answer the same way, so a
        # server that answers every unknown name wrongly fails MM-06, not this clause as well
        never = mm.get("mm08-never-loaded")
        names = listed_names(mm.listing()) or []
        again = mm.delete(name)
        got = f"DELETE {_show(gone)}; then get {after['get'].status}, invoke {after['invoke'].status}, " \
              f"listed {name in names}; DELETE again {again.status}; get of a name never loaded {never.status}"
        wrong = []
        if gone.status != 200:
            wrong.append(f"DELETE of a loaded model must be 200, got {gone.status}")
        if after["get"].status != 404 and (after["get"].status, after["get"].body) != (never.status, never.body):
            wrong.append(f"get after DELETE must be 404 (as for a name never loaded), got {_show(after['get'])}")
        if after["invoke"].status != 404:
            wrong.append(f"invoke after DELETE must be 404, got {after['invoke'].status}")
        if name in names:
            wrong.append("still listed after DELETE")
        if again.status != 404:
            wrong.append(f"DELETE of a name not loaded must be 404, got {again.status}")
        return Outcome(not wrong, "; ".join(wrong), f"load, DELETE /models/{name}, get/invoke/list, DELETE again", got)


@check("MM-09")
def invoke_semantics(h: Harness) -> Outcome:
    """The single-model server of the same model answers each payload first: the reference."""
    reference = h.ready("main").server
    name = "mm09-model"
    with _turn(h, [name]) as mm:
        _loaded(mm, name)
        wrong, seen = [], []
        for p in h.manifest.serving.payloads:
            want = reference.invoke(p.body, p.content_type)
            got = mm.invoke(name, p.body, p.content_type)
            seen.append(f"{p.content_type}: {_show(got)}")
            if got.status != 200:
                wrong.append(f"{p.content_type}: {got.status} (want 200, as /invocations gives)")
                continue
            try:
                same = wire.output_records(got.body, got.headers.get("content-type") or p.content_type) == \
                    wire.output_records(want.body, want.headers.get("content-type") or p.content_type)
            except ValueError as exc:
                same = False
                seen.append(f"unreadable: {exc}")
            if not same:
                wrong.append(f"{p.content_type}: records differ from /invocations ({_show(want)})")
        ctype, body = _sample(h)
        probes: dict[str, tuple[int, Response]] = {
            "malformed body": (400, mm.invoke(name, h.manifest.serving.bad_payloads.get(ctype, b"\x00"), ctype)),
            f"Content-Type {UNKNOWN_TYPE}": (415, mm.invoke(name, body, UNKNOWN_TYPE)),
            f"Accept {UNKNOWN_TYPE}": (406, mm.invoke(name, body, ctype, UNKNOWN_TYPE)),
            "a model not loaded": (404, mm.invoke("mm09-not-loaded", body, ctype)),
        }
        for what, (status, r) in probes.items():
            seen.append(f"{what}: {r.status}")
            if r.status != status:
                wrong.append(f"{what} → {r.status} (want {status})")
        plain = mm.invoke(name, body, ctype)
        tagged = mm.invoke(name, body, ctype, headers={"X-Amzn-SageMaker-Target-Model": "customer-7.tar.gz"})
        if tagged.status != plain.status or tagged.body != plain.body:
            wrong.append(f"X-Amzn-SageMaker-Target-Model changed the answer: {_show(tagged)} vs {_show(plain)}")
        return Outcome(not wrong, "; ".join(wrong),
                       f"POST /models/{name}/invoke: every payload (compared with /invocations of the same model), "
                       "a malformed body, unknown Content-Type and Accept, X-Amzn-SageMaker-Target-Model, "
                       "an unloaded name", " | ".join(seen))


@dataclass
class _Timed:
    what: str
    start: float
    end: float
    status: int

    def overlaps(self, other: _Timed) -> bool:
        return self.start < other.end and other.start < self.end


@check("MM-10")
def load_does_not_block(h: Harness) -> Outcome:
    base = "mm10-loaded"
    loading = [f"mm10-load-{i}" for i in range(4)]
    with _turn(h, [base, *loading]) as mm:
        _loaded(mm, base)
        for n in loading:
            mm.store.place(n)
        ctype, body = _sample(h)
        loads: list[_Timed] = []
        done = threading.Event()

        def load(n: str) -> None:
            t0 = time.monotonic()
            try:
                status = mm.load(n).status
            except OSError:
                status = 0
            loads.append(_Timed(f"load {n}", t0, time.monotonic(), status))

        threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in loading]
        probes: list[_Timed] = []
        calls: list[tuple[str, Callable[[], Response]]] = [
            ("ping", lambda: mm.ping(timeout=10)), ("invoke", lambda: mm.invoke(base, body, ctype, timeout=30))]
        for t in threads:
            t.start()
        def watch() -> None:
            for t in threads:
                t.join()
            done.set()

        threading.Thread(target=watch, daemon=True).start()
        i = 0
        while not done.is_set() or len(probes) < 6:
            what, call = calls[i % 2]
            i += 1
            t0 = time.monotonic()
            try:
                status = call().status
            except OSError:
                status = 0
            probes.append(_Timed(what, t0, time.monotonic(), status))
            if len(probes) > 2000:
                break
            time.sleep(0.02)
        done.wait(mm.load_timeout)
        failed_loads = [t for t in loads if t.status != 200]
        if failed_loads:
            raise Blocked("MM-03", "loads during the check: " + ", ".join(f"{t.what} → {t.status}"
                                                                        for t in failed_loads))
        during = [p for p in probes if any(p.overlaps(t) for t in loads)]
        slow = [p for p in probes if p.status != 200 or p.end - p.start >= PING_BOUND]
        longest = max(t.end - t.start for t in loads)
        got = f"4 loads, the longest {longest:.2f} s; {len(probes)} pings/invocations, {len(during)} during a load, " \
              f"slowest {max(p.end - p.start for p in probes) * 1000:.0f} ms"
        sent = f"4 concurrent POST /models while GET /ping and POST /models/{base}/invoke alternate every 20 ms"
        if slow:
            return Outcome(False, "blocked or failed while a model loaded: " + ", ".join(
                f"{p.what} {p.status} in {p.end - p.start:.2f} s" for p in slow[:6]), sent, got)
        if not during:
            raise Inconclusive(f"the loads took {longest * 1000:.0f} ms: no ping or invocation overlapped one")
        return Outcome(True, "", sent, got)


@dataclass
class Fill:
    """MM-11's run: copies of the padded model loaded one by one until a 507."""

    loaded: list[str] = field(default_factory=list)
    refused: str | None = None
    refusal: Response | None = None
    #: a wrong answer (not 200 or 507), a dead container or no answer: MM-11 fails with it
    error: str = ""
    steps: list[str] = field(default_factory=list)
    #: the most loads tried without a 507 (then MM-11 is inconclusive)
    tried: int = 0


def _fill(h: Harness) -> Fill:
    mm = h.mme("memory")
    spec = h.manifest.multi_model
    most = 2 * math.ceil(spec.memory_mb / spec.pad_mb) + 2
    fill = Fill(tried=most)
    for i in range(most):
        name = f"mm11-{i:02d}"
        try:
            r = mm.load(name, pad_mb=spec.pad_mb)
        except OSError as exc:
            r = None
            fill.steps.append(f"{name}: no answer ({exc})")
        if r is not None:
            fill.steps.append(f"{name}: {r.status}")
        if r is not None and r.status == 200:
            fill.loaded.append(name)
            continue
        if r is not None and r.status == 507:
            fill.refused, fill.refusal = name, r
            return fill
        time.sleep(1)  # let a killed container's state settle before reading it
        if not mm.server.running():
            code = mm.server.exit_code()
            fill.error = f"the container died at load {i + 1} (exit {code}" + \
                         (": killed by the OOM killer" if code == 137 else "") + ") instead of answering 507"
        else:
            fill.error = f"load {i + 1} answered {_show(r)}: out of memory must be 507"
        return fill
    return fill


@check("MM-11")
def out_of_memory_507(h: Harness) -> Outcome:
    fill = h.once("mme-fill", lambda: _fill(h))
    spec = h.manifest.multi_model
    sent = f"serve --memory {spec.memory_mb}m (no swap); load copies of the model padded by {spec.pad_mb} MiB " \
           "until 507"
    got = ", ".join(fill.steps)
    if fill.error:
        return Outcome(False, fill.error, sent, got)
    if fill.refusal is None:
        raise Inconclusive(
            f"{fill.tried} loads of {spec.pad_mb} MiB each fit in {spec.memory_mb} MiB: the image does not count or "
            "read the padding; give its models more weight ([multi_model] model_pad_mb) or less memory "
            "([multi_model] memory_mb)")
    mm = h.mme("memory")
    ping = mm.ping()
    alive = mm.server.running()
    got += f"; then /ping {ping.status}, running {alive}"
    ok = ping.status == 200 and alive and bool(fill.refusal.body.strip())
    return Outcome(ok, "" if ok else "after the 507 the server must stay up with a message in the 507",
                   sent, got + f"; 507 body {wire.short(fill.refusal.body, 100)}")


@check("MM-12")
def unload_frees_memory(h: Harness) -> Outcome:
    fill = h.once("mme-fill", lambda: _fill(h))
    if fill.error:
        raise Blocked("MM-11", fill.error)
    if fill.refused is None:
        raise Inconclusive("MM-11 found no 507 to recover from")
    if not fill.loaded:
        raise Inconclusive(f"the first load was already refused ({_show(fill.refusal)}): "
                           "raise [multi_model] memory_mb so that one model fits")
    mm = h.mme("memory")
    victim = fill.loaded[0]
    gone = mm.delete(victim)
    again = mm.load(fill.refused, pad_mb=h.manifest.multi_model.pad_mb)
    got = f"DELETE {victim}: {gone.status}; load {fill.refused} again: {_show(again)}"
    ok = gone.status == 200 and again.status == 200
    return Outcome(ok, "" if ok else "the memory of the unloaded model must be available again",
                   f"after the 507 of {fill.refused}: DELETE {victim}, load {fill.refused} again", got)
