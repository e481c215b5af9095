"""The errors of the local endpoint: SageMaker Runtime's error shapes, and the CLI's.

SageMaker Runtime is a ``rest-json`` service: botocore takes an error's code from the
``x-amzn-ErrorType`` header (the part before ``:``), its message from the body's ``message`` or
``Message``, and the members of a modeled error (``ModelError``: ``OriginalStatusCode``,
``OriginalMessage``, ``LogStreamArn``) from the JSON body (``botocore/parsers.py``
``RestJSONParser``; the shapes and status codes are the ``sagemaker-runtime`` 2017-05-13 service
model). So a front answering with these shapes gives ``client.exceptions.ModelError`` & co. to an
unchanged ``boto3`` client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: AWS's wording of a container's error (seen in ModelError messages: "Received client error (415)
#: from container-2 with message ..."); 4xx is a client error, anything else a server error
_KIND = {True: "client", False: "server"}


class EndpointError(RuntimeError):
    """A problem the user can fix (``rosetta endpoint``): one line saying what to do."""


@dataclass
class ApiError(Exception):
    """An InvokeEndpoint error as SageMaker Runtime sends it (status, code, modeled members)."""

    status: int
    code: str
    message: str
    members: dict[str, Any] = field(default_factory=dict)

    def body(self) -> bytes:
        return json.dumps({"ErrorCode": self.code, "Message": self.message, "message": self.message,
                           **self.members}).encode()

    def headers(self) -> dict[str, str]:
        return {"x-amzn-ErrorType": f"{self.code}:http://internal.amazon.com/coral/com.amazon.sagemaker/"}

    def __str__(self) -> str:
        return f"{self.code} ({self.status}): {self.message}"


def validation_error(message: str) -> ApiError:
    """400 ValidationError: the request is wrong (unknown endpoint, a header that does not apply…)."""
    return ApiError(400, "ValidationError", message)


def service_unavailable(message: str) -> ApiError:
    """503 ServiceUnavailable: a container does not answer (botocore retries these)."""
    return ApiError(503, "ServiceUnavailable", message)


def internal_failure(message: str) -> ApiError:
    return ApiError(500, "InternalFailure", message)


def model_error(*, where: str, status: int | None, text: str, log_stream: str, logs_hint: str) -> ApiError:
    """424 ModelError for a container's non-200 answer (or no answer: ``status`` None), naming the
    container (``container-2 (model-python)``) as AWS names it in its message."""
    original = text.strip()
    if status is None:
        message = f"Received server error from {where} with message \"{original}\". {logs_hint}"
        members: dict[str, Any] = {"OriginalMessage": original, "LogStreamArn": log_stream}
    else:
        kind = _KIND[400 <= status < 500]
        message = f"Received {kind} error ({status}) from {where} with message \"{original}\". {logs_hint}"
        members = {"OriginalStatusCode": status, "OriginalMessage": original, "LogStreamArn": log_stream}
    return ApiError(424, "ModelError", message, members)
