"""schemathesis against a running image, driven by the runtime's OpenAPI document.

The document (`docs/openapi.yaml`) leaves the number of features open; here it is narrowed
to the model's, so that schemathesis' positive examples are valid requests (and must get 200) and its
negative examples are invalid ones (and must get 4xx). Checks: no 5xx, status codes, content types and
response schemas as documented, positive data accepted, negative data rejected.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          positive_data_acceptance, negative_data_rejection]


def _rows_to_csv(rows: Any) -> bytes:
    # Negative examples may not be lists of lists: send what they are, in a CSV-ish form.
    if isinstance(rows, list) and all(isinstance(r, list) for r in rows):
        return "".join(",".join(repr(v) if isinstance(v, float) else json.dumps(v) for v in r) + "\n"
                       for r in rows).encode()
    return json.dumps(rows).encode()


def _rows_to_jsonlines(rows: Any) -> bytes:
    if isinstance(rows, list):
        return "".join(json.dumps(r) + "\n" for r in rows).encode()
    return json.dumps(rows).encode()


@schemathesis.serializer("text/csv")
def _csv(ctx: Any, value: Any) -> bytes:
    return _rows_to_csv(value)


@schemathesis.serializer("application/jsonlines")
def _jsonlines(ctx: Any, value: Any) -> bytes:
    return _rows_to_jsonlines(value)


FLOAT32_SAFE = 1e30


def _clamp(value: Any) -> Any:
    # The model's domain, like its width: scikit-learn forests compute in float32, so 1e200 makes
    # predict raise, the documented `500 model error` (user code failed), not a 4xx. Clamping numbers
    # never turns a negative example (wrong type, width or shape) into a valid one.
    if isinstance(value, float | int) and not isinstance(value, bool) and abs(value) > FLOAT32_SAFE:
        return FLOAT32_SAFE if value > 0 else -FLOAT32_SAFE
    if isinstance(value, list):
        return [_clamp(v) for v in value]
    if isinstance(value, dict):
        return {k: _clamp(v) for k, v in value.items()}
    return value


def load_spec(n_features: int | None = None) -> dict[str, Any]:
    text = (Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml").read_text()  # next to docs/contract.md
    spec: dict[str, Any] = yaml.safe_load(text)
    if n_features is not None:
        spec = copy.deepcopy(spec)
        row = spec["components"]["schemas"]["Row"]
        row["minItems"] = row["maxItems"] = n_features
    return spec


@dataclass
class FuzzResult:
    cases: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    #: status per generated case, in order: every image gets the same cases (:func:`generated`), so these
    #: sequences must agree (differential parity)
    sequence: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {"cases": self.cases, "failures": len(self.failures),
                "server_errors": sum(n for s, n in self.by_status.items() if s >= 500),
                "statuses": " ".join(f"{s}:{n}" for s, n in sorted(self.by_status.items()))}


def describe(case: schemathesis.Case[Any]) -> str:
    """``METHOD path content-type body…``: what a parity report names for a case."""
    body = case.body if isinstance(case.body, bytes | str) else json.dumps(case.body, default=repr)
    return f"{case.method} {case.path} {case.media_type or ''} {str(body)[:120]!r}"


@functools.cache
def generated(max_examples: int, n_features: int | None = 4) -> tuple[schemathesis.Case[Any], ...]:
    """Positive and negative cases for every operation, generated once per process and replayed to
    every image: hypothesis mixes literals of the local modules loaded so far into what it draws, even
    derandomized, so generating again after more test modules were imported gives other cases."""
    schema = schemathesis.openapi.from_dict(load_spec(n_features))

    @schema.hook("map_body")
    def clamp(ctx: Any, body: Any) -> Any:
        return _clamp(body)

    operations = []
    for item in schema.get_all_operations():
        if isinstance(item, Err):
            raise item.err()  # the document itself is broken
        operations.append(item.ok())
    strategy = st.one_of(*[op.as_strategy(generation_mode=mode) for op in operations
                           for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)])
    cases: list[schemathesis.Case[Any]] = []

    @settings(max_examples=max_examples, database=None, deadline=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def collect(case: schemathesis.Case[Any]) -> None:
        cases.append(case)

    collect()
    return tuple(cases)


def run(port: int, max_examples: int, n_features: int | None = 4) -> FuzzResult:
    """Send the generated cases (:func:`generated`) in order; validate every response."""
    base = f"http://127.0.0.1:{port}"
    result = FuzzResult()
    session = requests.Session()
    for case in generated(max_examples, n_features):
        response = case.call(base_url=base, session=session, timeout=30)
        result.cases += 1
        result.sequence.append(response.status_code)
        result.by_status[response.status_code] = result.by_status.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as exc:  # recorded, and the run goes on
            found = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
            for failure in found:
                title = getattr(failure, "title", type(failure).__name__)
                result.failures.append(f"{case.method} {case.path} {case.media_type} -> "
                                       f"{response.status_code} {response.text[:80]!r}: {title}")
    return result
