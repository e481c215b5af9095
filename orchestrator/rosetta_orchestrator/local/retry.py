"""``RetryPolicies`` of a step: which local failures they retry, and when.

A policy lists ``ExceptionType`` values and ``IntervalSeconds`` (before the first retry),
``BackoffRate`` (the interval's multiplier per retry), and ``MaxAttempts`` (retries after the
first attempt) or ``ExpireAfterMin`` (no retry once this long after the first attempt). Locally,
only a failure that is not the job's own can be retried (``StepFailed.fault == "internal"``): it
matches ``Step.SERVICE_FAULT`` and ``SageMaker.JOB_INTERNAL_ERROR``. A job that fails by itself
(its code, its configuration) is never retried, as on SageMaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from rosetta_orchestrator.local.context import INTERNAL, StepFailed

T = TypeVar("T")
LOCAL_TYPES = {INTERNAL: ("Step.SERVICE_FAULT", "SageMaker.JOB_INTERNAL_ERROR")}


def matching(policies: list[dict[str, Any]], fault: str) -> dict[str, Any] | None:
    types = LOCAL_TYPES.get(fault, ())
    for policy in policies:
        if any(t in types for t in policy.get("ExceptionType") or []):
            return policy
    return None


def delay(policy: dict[str, Any], retries_done: int) -> float:
    interval = float(policy.get("IntervalSeconds", 1))
    return interval * float(policy.get("BackoffRate", 2.0)) ** retries_done


def with_retries(fn: Callable[[], T], policies: list[dict[str, Any]], *, log: Callable[[str], None],
                 attempts: Callable[[int], None], wait: Callable[[float], bool] | None = None) -> T:
    """Run ``fn`` until it succeeds or no policy allows another attempt; ``attempts(n)`` is told the
    attempt number; ``wait(seconds)`` returns False when the run is being interrupted."""
    first = time.monotonic()
    attempt = 1
    while True:
        attempts(attempt)
        try:
            return fn()
        except StepFailed as exc:
            policy = matching(policies, exc.fault)
            if policy is None:
                raise
            retries_done = attempt - 1
            limit = policy.get("MaxAttempts")
            expire = policy.get("ExpireAfterMin")
            if (limit is not None and retries_done >= int(limit)) or (
                    expire is not None and time.monotonic() - first > float(expire) * 60):
                exc.reason = f"{exc.reason} (after {attempt} attempts)"
                exc.args = (f"{exc.step}: {exc.reason}",)
                raise
            pause = delay(policy, retries_done)
            log(f"[rosetta] attempt {attempt} failed: {exc.reason}; retrying in {pause:g} s "
                f"(RetryPolicy {', '.join(policy.get('ExceptionType') or [])})")
            if not (wait or _sleep)(pause):
                raise
            attempt += 1


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return True
