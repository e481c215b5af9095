"""One InvokeEndpoint call, routed to an endpoint's containers: one container, a serial chain
(Serial), the container a request names (Direct), or a multi-model container (TargetModel).

The serial rule, between container k and container k+1 (docs/endpoints.md gives the sources).
AWS documents that a serial model's containers run "as a serial pipeline" (InferenceExecutionConfig)
and that each container's response is the next one's request; it does not document the headers
between them, so these are Rosetta's choices:

- container 1 gets the client's body and ``Content-Type``;
- container k+1 gets container k's response body and its ``Content-Type`` header verbatim
  (parameters included): the container that produced the bytes is the one that knows their type;
- only the last container gets the client's ``Accept`` (it describes what the client wants back);
  the others get none, so each answers in its default type (``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``
  or its own default), which is how a middle container is told what the next one reads;
- every container gets the client's ``X-Amzn-SageMaker-Custom-Attributes`` and ``Inference-Id``;
  the response carries the last container's custom attributes, if it set any;
- a container answering anything but 200 stops the chain: ``ModelError`` naming its position
  and hostname (``Received client error (415) from container-2 (model-python) with message …``).
"""

from __future__ import annotations

import http.client
import os
import threading
from dataclasses import dataclass

from sagemaker_rosetta.endpoint import errors
from sagemaker_rosetta.endpoint.pool import Pool, Reply
from sagemaker_rosetta.endpoint.state import Endpoint, Member, State

ACCOUNT = "000000000000"
#: "A customer's model containers must respond to requests within 60 seconds" (InvokeEndpoint)
TIMEOUT = float(os.environ.get("ROSETTA_ENDPOINT_TIMEOUT", "60"))
#: InvokeEndpoint's Body limit (the service model's ``max`` of the Body blob: 6 MB)
MAX_BODY = 6291456


@dataclass
class Invocation:
    body: bytes
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    target_model: str | None = None
    target_container_hostname: str | None = None
    target_variant: str | None = None
    inference_id: str | None = None


@dataclass
class Answer:
    body: bytes
    content_type: str | None
    custom_attributes: str | None
    variant: str


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


class Router:
    def __init__(self, state: State, timeout: float = TIMEOUT) -> None:
        from sagemaker_rosetta.endpoint.multimodel import MultiModels

        self.state, self.timeout = state, timeout
        self.pool = Pool()
        self.multi = MultiModels(state, self)
        self._cache: dict[str, tuple[int, Endpoint]] = {}
        self._lock = threading.Lock()

    # -- endpoints --------------------------------------------------------------------------
    def endpoint(self, name: str) -> Endpoint:
        """The record, re-read only when the file changed (a stat per call)."""
        path = self.state.record(name)
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            with self._lock:
                gone = self._cache.pop(name, None)
            if gone:
                for m in gone[1].members:
                    self.pool.drop(m.host_port)
            raise errors.validation_error(f"Endpoint {name} of account {ACCOUNT} not found.") from None
        with self._lock:
            cached = self._cache.get(name)
        if cached and cached[0] == stamp:
            return cached[1]
        loaded = self.state.load(name)
        if loaded is None:
            raise errors.validation_error(f"Endpoint {name} of account {ACCOUNT} not found.")
        with self._lock:
            self._cache[name] = (stamp, loaded)
        return loaded

    # -- invocations ------------------------------------------------------------------------
    def invoke(self, name: str, inv: Invocation) -> Answer:
        ep = self.endpoint(name)
        if len(inv.body) > MAX_BODY:
            raise errors.validation_error(f"Request payload of {len(inv.body)} bytes is over InvokeEndpoint's "
                                          f"limit of {MAX_BODY} bytes (6 MB).")
        if inv.target_variant and inv.target_variant != ep.variant:
            raise errors.validation_error(f"TargetVariant {inv.target_variant} is not a variant of endpoint {name} "
                                          f"(variants: {ep.variant}).")
        if ep.mode == "MultiModel":
            if inv.target_container_hostname:
                raise errors.validation_error("TargetContainerHostname applies only to multi-container endpoints "
                                              "with Direct invocation.")
            if not inv.target_model:
                raise errors.validation_error(f"Endpoint {name} is a multi-model endpoint: give TargetModel "
                                              "(the archive's key under the endpoint's prefix, e.g. model-1.tar.gz).")
            return self.multi.invoke(ep, inv)
        if inv.target_model:
            raise errors.validation_error(f"Endpoint {name} is not a multi-model endpoint: TargetModel is not "
                                          "accepted.")
        if ep.mode == "Direct":
            return self._direct(ep, inv)
        if inv.target_container_hostname:
            raise errors.validation_error(f"TargetContainerHostname applies only to Direct invocation; endpoint "
                                          f"{name} runs its containers as {ep.mode}.")
        return self._serial(ep, inv)

    def _direct(self, ep: Endpoint, inv: Invocation) -> Answer:
        hosts = ", ".join(m.hostname for m in ep.members)
        if not inv.target_container_hostname:
            raise errors.validation_error(f"Endpoint {ep.name} runs its containers in Direct mode: give "
                                          f"TargetContainerHostname (one of {hosts}).")
        member = ep.member(inv.target_container_hostname)
        if member is None:
            raise errors.validation_error(f"Endpoint {ep.name} has no container {inv.target_container_hostname!r} "
                                          f"(containers: {hosts}).")
        k = ep.members.index(member) + 1
        reply = self.call(ep, k, member, "/invocations", inv.body, self._headers(inv, inv.content_type, inv.accept))
        return Answer(reply.body, reply.headers.get("content-type"),
                      reply.headers.get("x-amzn-sagemaker-custom-attributes"), ep.variant)

    def _serial(self, ep: Endpoint, inv: Invocation) -> Answer:
        body, ctype = inv.body, inv.content_type
        last = len(ep.members)
        reply: Reply | None = None
        for k, member in enumerate(ep.members, start=1):
            headers = self._headers(inv, ctype, inv.accept if k == last else None)
            reply = self.call(ep, k, member, "/invocations", body, headers)
            body, ctype = reply.body, reply.headers.get("content-type")
        assert reply is not None
        return Answer(body, ctype, reply.headers.get("x-amzn-sagemaker-custom-attributes"), ep.variant)

    @staticmethod
    def _headers(inv: Invocation, content_type: str | None, accept: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        if inv.custom_attributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = inv.custom_attributes
        if inv.inference_id is not None:
            headers["X-Amzn-SageMaker-Inference-Id"] = inv.inference_id
        return headers

    # -- one container ----------------------------------------------------------------------
    def call(self, ep: Endpoint, k: int, member: Member, path: str, body: bytes | None, headers: dict[str, str],
             method: str = "POST", ok: tuple[int, ...] = (200,)) -> Reply:
        """One request to one container; a status outside ``ok`` is that container's ModelError."""
        where = self.where(ep, k, member)
        try:
            reply = self.pool.request(member.host_port, method, path, body, headers, self.timeout)
        except TimeoutError:
            raise errors.model_error(where=where, status=None, log_stream=self.log_stream(ep, member),
                                     text=f"no answer within {self.timeout:g} s", logs_hint=self.hint(ep)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise errors.service_unavailable(f"{where} of endpoint {ep.name} is not answering ({exc}); "
                                             f"`rosetta endpoint logs {ep.name}` shows why") from None
        if reply.status not in ok:
            raise errors.model_error(where=where, status=reply.status,
                                     text=reply.body.decode("utf-8", errors="replace")[:1000],
                                     log_stream=self.log_stream(ep, member), logs_hint=self.hint(ep))
        return reply

    @staticmethod
    def where(ep: Endpoint, k: int, member: Member) -> str:
        """``primary`` (one container), ``container-2`` or ``container-2 (model-python)``."""
        if len(ep.members) == 1:
            return member.hostname if member.hostname == "primary" else f"primary ({member.hostname})"
        position = f"container-{k}"
        return position if member.hostname == position else f"{position} ({member.hostname})"

    @staticmethod
    def log_stream(ep: Endpoint, member: Member) -> str:
        return (f"arn:aws:logs:{region()}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{ep.name}"
                f":log-stream:{ep.variant}/{member.hostname}")

    @staticmethod
    def hint(ep: Endpoint) -> str:
        return f"See `rosetta endpoint logs {ep.name}` for more information."
