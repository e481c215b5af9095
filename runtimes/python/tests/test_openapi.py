"""The OpenAPI document describes exactly the routing table and the codec registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rosetta_runtime import codecs
from rosetta_runtime.routes import ROUTES

#: one document for all three runtimes, next to the contract it describes
OPENAPI = Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml"


def _spec() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI.read_text())


def test_paths_and_methods_match_the_routing_table() -> None:
    spec = _spec()
    documented = {path: {m.upper() for m in ops} for path, ops in spec["paths"].items()}
    routed = {path: set(methods) - {"HEAD"} for path, methods in ROUTES.items()}  # HEAD mirrors GET
    assert documented == routed


def test_request_and_response_media_types_match_the_codecs() -> None:
    invocations = _spec()["paths"]["/invocations"]["post"]
    registered = {codec.media_type for codec in codecs.REGISTRY.values()}
    assert set(invocations["requestBody"]["content"]) == registered
    assert set(invocations["responses"]["200"]["content"]) == registered
    assert {"400", "406", "413", "415"} <= set(invocations["responses"])
