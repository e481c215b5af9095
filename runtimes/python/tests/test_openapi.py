"""The OpenAPI documents describe exactly the routing table and the codec registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rosetta_runtime import codecs
from rosetta_runtime.routes import MULTI_MODEL_ROUTES, ROUTES

#: one document for all three runtimes, next to the contract it describes; multi-model mode's routes
#: (D6) in a document of their own, so fuzzing the single-model server never meets them
OPENAPI = Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml"
OPENAPI_MULTI_MODEL = OPENAPI.with_name("openapi-multi-model.yaml")
METHODS = {"get", "put", "post", "delete", "head", "patch", "options"}


def _spec(file: Path = OPENAPI) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(file.read_text())
    return spec


def _documented(file: Path) -> dict[str, set[str]]:
    return {path: {m.upper() for m in ops if m in METHODS} for path, ops in _spec(file)["paths"].items()}


def test_paths_and_methods_match_the_routing_table() -> None:
    routed = {path: set(methods) - {"HEAD"} for path, methods in ROUTES.items()}  # HEAD mirrors GET
    assert _documented(OPENAPI) == {p: m for p, m in routed.items() if p not in MULTI_MODEL_ROUTES}
    assert _documented(OPENAPI_MULTI_MODEL) == {p: m for p, m in routed.items() if p in MULTI_MODEL_ROUTES}


def test_request_and_response_media_types_match_the_codecs() -> None:
    invocations = _spec()["paths"]["/invocations"]["post"]
    registered = {codec.media_type for codec in codecs.REGISTRY.values()}
    assert set(invocations["requestBody"]["content"]) == registered
    assert set(invocations["responses"]["200"]["content"]) == registered
    assert {"400", "406", "413", "415"} <= set(invocations["responses"])
