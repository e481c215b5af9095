"""Run the selected clauses against one image, in parallel, and always clean up."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from rosetta_conformance.checks import Check, load_all
from rosetta_conformance.clauses import Clause, select
from rosetta_conformance.harness import Harness
from rosetta_conformance.manifest import Manifest
from rosetta_conformance.outcome import Blocked, Inconclusive, Result, Skip, Status

Progress = Callable[[Result], None]


@dataclass
class Report:
    image: str
    profiles: list[str]
    results: list[Result]
    seconds: float
    manifest: Path | None = None
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Exit-code verdict: every clause not listed as expected-to-fail passed (or does not apply)."""
        return all(r.passed for r in self.results)

    def by_status(self, status: Status) -> list[str]:
        return [r.clause for r in self.results if r.status is status]

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def _execute(clause: Clause, chk: Check | None, h: Harness, expected: dict[str, str]) -> Result:
    res = Result(clause.id, clause.title, clause.source, clause.profile, Status.SKIP)
    t0 = time.monotonic()
    try:
        if chk is None:
            raise Skip("no check implemented")
        out = chk.fn(h)
        res.status = Status.PASS if out.ok else Status.FAIL
        res.detail, res.sent, res.received = out.detail, out.sent, out.received
    except Blocked as exc:
        if exc.clause == clause.id:  # the resource failed because of this very clause
            res.status, res.detail = Status.FAIL, exc.reason
        else:
            res.status, res.blocked_by, res.detail = Status.BLOCKED, exc.clause, exc.reason
    except Skip as exc:
        res.status, res.detail = Status.SKIP, str(exc)
    except Inconclusive as exc:
        res.status, res.detail = Status.INCONCLUSIVE, str(exc)
    except Exception as exc:  # a crash in a check is a failure of that clause, with the trace
        res.status = Status.FAIL
        res.detail = f"check error: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
    res.seconds = time.monotonic() - t0
    if clause.id in expected:
        res.reason = expected[clause.id]
        if res.status in (Status.FAIL, Status.BLOCKED):
            res.status = Status.XFAIL
        elif res.status is Status.PASS:
            res.status = Status.XPASS
    return res


def run_suite(image: str, manifest: Manifest, *, profiles: list[str] | None = None,
              only: list[str] | None = None, model_dir: Path | None = None,
              expected: dict[str, str] | None = None, jobs: int = 4,
              progress: Progress | None = None, workdir: Path | None = None,
              instance_type: str | None = None) -> Report:
    """Check ``image`` against the selected clauses; containers are removed even on Ctrl-C.

    ``instance_type``: the SageMaker instance type the image is meant for (C-08; default: the manifest's)."""
    profiles = profiles or ["must"]
    clauses = select(profiles, only)
    checks = load_all()
    expected = expected or {}
    h = Harness(image, manifest, model_dir=model_dir, workdir=workdir, instance_type=instance_type)
    results: dict[str, Result] = {}
    t0 = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="conform")
    try:
        for final in (False, True):
            batch = [c for c in clauses if (checks.get(c.id) is not None and checks[c.id].final) == final]
            futures: dict[Future[Result], Clause] = {
                pool.submit(_execute, c, checks.get(c.id), h, expected): c for c in batch}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for f in done:
                    r = f.result()
                    results[r.clause] = r
                    if progress:
                        progress(r)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        h.cleanup()  # removing the containers also unblocks the worker threads
        raise
    pool.shutdown(wait=True)
    h.cleanup()
    figures = dict(h.figures)
    figures["suite_seconds"] = time.monotonic() - t0
    ordered = [results[c.id] for c in clauses]
    return Report(image, profiles, ordered, figures["suite_seconds"], manifest.path, figures)
