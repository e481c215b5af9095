"""The HTTP contract: one routing table and its handlers (S-03, S-07, S-16, B-03, D6).

Handlers take a :class:`Request` and return a :class:`Reply`; transport lives in
:mod:`rosetta_runtime.app`, one model's ``/invocations`` in :mod:`rosetta_runtime.invocations`,
multi-model mode's registry in :mod:`rosetta_runtime.multimodel`. Error replies are one short
line of text (S-17).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote

from rosetta_runtime.adapter import ModelAdapter
from rosetta_runtime.errors import BadRequest, HTTPError
from rosetta_runtime.invocations import FAST_WARM_UP_S, INLINE_LIMIT_S, INLINE_STRIKES, Predictor, first_line
from rosetta_runtime.paths import ServingSettings
from rosetta_runtime.wire import TEXT, Reply, Request

if TYPE_CHECKING:  # imported by the handlers: a single-model server never loads multimodel.py
    from rosetta_runtime.multimodel import ModelStore

__all__ = ["FAST_WARM_UP_S", "INLINE_LIMIT_S", "INLINE_STRIKES", "ROUTES", "TEXT", "Reply", "Request", "Service",
           "dispatch", "first_line"]

log = logging.getLogger("rosetta.routes")

MULTI_MODEL_ONLY = "multi-model mode: invoke POST /models/<name>/invoke"


def _json(doc: object) -> Reply:
    return Reply(200, json.dumps(doc).encode(), "application/json")


class Service:
    """What the handlers serve: one model (single-model mode) or a :class:`ModelStore` (multi-model mode, D6)."""

    def __init__(self, adapter: ModelAdapter | None, settings: ServingSettings,
                 models: ModelStore | None = None) -> None:
        self.adapter = adapter
        self.settings = settings
        self.models = models
        self.predictor = Predictor(adapter, settings) if adapter is not None else None
        self.ready = self.predictor is not None or models is not None

    @property
    def fast_model(self) -> bool:
        """Set by the server after a fast warm-up when other workers can answer /ping."""
        return self.predictor is not None and self.predictor.fast_model

    @fast_model.setter
    def fast_model(self, value: bool) -> None:
        if self.predictor is not None:
            self.predictor.fast_model = value

    def batch_counts(self) -> tuple[int, int]:
        """(requests, predict calls) of the batching models this worker served (D9), for its last log line."""
        predictors = [self.predictor] if self.predictor is not None else []
        if self.models is not None:
            predictors += self.models.predictors()
        batchers = [p.batcher for p in predictors if p.batcher is not None]
        return sum(b.requests for b in batchers), sum(b.calls for b in batchers)

    # -- both modes ------------------------------------------------------------------------------------
    async def ping(self, req: Request) -> Reply:
        return Reply(200) if self.ready else Reply.text(503, "model is loading")

    async def execution_parameters(self, req: Request) -> Reply:
        s = self.settings
        concurrent = max(1, min(s.max_concurrent_transforms, 100 // s.batch_payload_mb))  # B-05: product ≤ 100
        return _json({"MaxConcurrentTransforms": concurrent, "BatchStrategy": s.batch_strategy,
                      "MaxPayloadInMB": s.batch_payload_mb})

    async def invocations(self, req: Request) -> Reply:
        if self.models is not None:
            return Reply.text(404, MULTI_MODEL_ONLY)
        if self.predictor is None:
            return Reply.text(503, "model is loading")
        return await self.predictor.invoke(req)

    # -- multi-model mode (D6); dispatch answers 404 for these routes in single-model mode ---------------
    def _store(self) -> ModelStore:
        assert self.models is not None
        return self.models

    async def list_models(self, req: Request) -> Reply:
        from rosetta_runtime.multimodel import listing_request, page_token

        limit, start = listing_request(req.query)
        entries, following = self._store().listing(limit, start)
        doc: dict[str, object] = {"models": [e.describe() for e in entries]}
        if following is not None:
            doc["nextPageToken"] = page_token(following)
        return _json(doc)

    async def load_model(self, req: Request) -> Reply:
        from rosetta_runtime.multimodel import load_request

        name, url = load_request(req.body)
        return _json((await self._store().load(name, url)).describe())

    async def describe_model(self, req: Request) -> Reply:
        return _json(self._store().describe(req.name).describe())

    async def unload_model(self, req: Request) -> Reply:
        return _json({"modelName": self._store().unload(req.name).name})

    async def invoke_model(self, req: Request) -> Reply:
        if req.target_model is not None:
            log.debug("invoke %r for TargetModel %r", req.name, req.target_model)
        return await (await self._store().predictor(req.name)).invoke(req)


Handler = Callable[[Service, Request], Awaitable[Reply]]

#: path → method → handler. Exact paths (no trailing-slash redirects), ``{name}`` one percent-decoded
#: segment; 404 vs 405 kept distinct.
ROUTES: dict[str, dict[str, Handler]] = {
    "/ping": {"GET": Service.ping, "HEAD": Service.ping},
    "/invocations": {"POST": Service.invocations},
    "/execution-parameters": {"GET": Service.execution_parameters},
    "/models": {"GET": Service.list_models, "POST": Service.load_model},
    "/models/{name}": {"GET": Service.describe_model, "DELETE": Service.unload_model},
    "/models/{name}/invoke": {"POST": Service.invoke_model},
}
#: routes that exist in multi-model mode only (D6)
MULTI_MODEL_ROUTES = frozenset({"/models", "/models/{name}", "/models/{name}/invoke"})


def route(req: Request) -> str | None:
    """The routing table's key for ``req`` (setting ``req.name``), or None."""
    if req.path in ROUTES:
        return req.path
    if not req.path.startswith("/models/"):
        return None
    # split the path as sent, so that an escaped '/' (%2F) stays inside the name
    raw = req.raw_path if req.raw_path and req.raw_path.startswith("/models/") else req.path
    parts = raw.split("/")[2:]
    if not parts[0] or len(parts) > 2 or (len(parts) == 2 and parts[1] != "invoke"):
        return None
    req.name = unquote(parts[0])
    return "/models/{name}" if len(parts) == 1 else "/models/{name}/invoke"


async def dispatch(service: Service, req: Request) -> Reply:
    key = route(req)
    if key is None or (key in MULTI_MODEL_ROUTES and service.models is None):
        return Reply.text(404, "not found")
    methods = ROUTES[key]
    handler = methods.get(req.method)
    if handler is None:
        return Reply.text(405, "method not allowed", {"Allow": ", ".join(methods)})
    try:
        return await handler(service, req)
    except BadRequest as exc:
        return Reply.text(400, exc.message)
    except HTTPError as exc:
        return Reply.text(exc.status, exc.message, exc.headers)
