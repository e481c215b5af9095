"""The runtime's exceptions: each maps to one HTTP status or one failure-file kind (S-16, T-17)."""

from __future__ import annotations


class RosettaError(Exception):
    """Base class; ``kind`` is the first word of the failure file's reason line."""

    kind = "Error"


class HyperparameterError(RosettaError):
    kind = "HyperparameterError"


class DataError(RosettaError):
    kind = "DataError"


class UserCodeError(RosettaError):
    kind = "UserCodeError"


class ModelLoadError(RosettaError):
    kind = "ModelLoadError"


class HTTPError(Exception):
    """A client-visible error: a status code and one short line of text (S-17)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` is a ``kind`` or wraps one (``__cause__``/``__context__`` at any depth): a signal
    handler's exception raised inside a C extension's initialisation reaches us wrapped, e.g. as
    pybind11's ``ImportError: initialization failed`` caused by it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class BadRequest(HTTPError):
    def __init__(self, message: str) -> None:
        super().__init__(400, message)
