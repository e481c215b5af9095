"""What a check reports: one result per clause, with what was sent and what came back."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    #: a prerequisite clause failed, so this one could not be exercised (counts as not passed)
    BLOCKED = "blocked"
    #: not applicable to this image/manifest (e.g. no training section); never counts as failure
    SKIP = "skip"
    #: failed, and listed in the expected-failures file
    XFAIL = "xfail"
    #: listed as expected to fail, but passed: reported so the list is kept honest
    XPASS = "xpass"
    #: the check ran but could not decide (e.g. training ends before SIGTERM can land, T-21); the
    #: notes say which manifest lines make it decidable. Not a failure of the image.
    INCONCLUSIVE = "inconclusive"


class Blocked(Exception):
    """Raised by a shared resource when it cannot be provided; names the clause to blame."""

    def __init__(self, clause: str, reason: str) -> None:
        super().__init__(f"blocked by {clause}: {reason}")
        self.clause = clause
        self.reason = reason


class Skip(Exception):
    """Raised by a check that does not apply to this image or manifest."""


class Inconclusive(Exception):
    """Raised by a check that ran but could not decide; the message says how to make it decidable."""


@dataclass
class Outcome:
    """A check's verdict on one clause."""

    ok: bool
    detail: str = ""
    sent: str = ""
    received: str = ""


@dataclass
class Result:
    clause: str
    title: str
    source: str
    profile: str
    status: Status
    detail: str = ""
    sent: str = ""
    received: str = ""
    seconds: float = 0.0
    blocked_by: str | None = None
    reason: str | None = None  # expected-failure reason
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Counts as success for the exit code."""
        return self.status in (Status.PASS, Status.SKIP, Status.XFAIL, Status.XPASS, Status.INCONCLUSIVE)
