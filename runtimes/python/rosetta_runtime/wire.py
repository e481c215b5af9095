"""What a handler gets and gives: a :class:`Request` and a :class:`Reply` (transport-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

TEXT = "text/plain; charset=utf-8"


@dataclass
class Request:
    method: str
    path: str
    content_type: str | None
    accept: str | None
    body: bytes
    #: the raw query string (``limit=2&next_page_token=Yw``), for GET /models (D6)
    query: str = ""
    #: the path as sent, percent-escapes kept: ``/models/<name>`` segments are split before decoding (D6)
    raw_path: str | None = None
    #: ``X-Amzn-SageMaker-Target-Model``: only logged (D6)
    target_model: str | None = None
    #: the ``<name>`` of a ``/models/<name>`` route, percent-decoded; set by the router
    name: str = ""


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, (message + "\n").encode(), TEXT, headers or {})
