"""The failure file: the human reason first, details after (T-16, T-17)."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

#: SageMaker shows the first 1024 characters as FailureReason
REASON_LIMIT = 1024


def reason_line(kind: str, message: str) -> str:
    line = f"{kind}: {message}".replace("\n", " ").strip()
    return line[:REASON_LIMIT]


def write_failure(path: Path, kind: str, message: str, exc: BaseException | None = None) -> str:
    """Write ``<Kind>: <message>``, a blank line, then the traceback; echo the reason to stderr."""
    reason = reason_line(kind, message)
    details = "".join(traceback.format_exception(exc)) if exc is not None else ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(reason + "\n\n" + details)
    except OSError as err:  # the reason must still reach the log
        print(f"rosetta: cannot write {path}: {err}", file=sys.stderr)
    print(f"rosetta: training failed: {reason}", file=sys.stderr, flush=True)
    if details:
        print(details, file=sys.stderr, flush=True)
    return reason
