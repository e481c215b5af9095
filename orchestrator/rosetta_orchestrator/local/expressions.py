"""Evaluate the expressions of a pipeline definition: ``Get``, ``Std:Join``, ``Std:JsonGet``.

References look like ``Parameters.Name``, ``Execution.PipelineExecutionId`` and
``Steps.Train.ModelArtifacts.S3ModelArtifacts`` or
``Steps.Split.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_:\-]*)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")


class ExpressionError(ValueError):
    """A reference or function in the definition cannot be resolved."""


def path_tokens(path: str) -> list[str | int]:
    tokens: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            raise ExpressionError(f"cannot parse reference {path!r} at {path[pos:]!r}")
        name, sq, dq, idx = m.groups()
        if idx is not None:
            tokens.append(int(idx))
        else:
            tokens.append(next(t for t in (sq, dq, name) if t is not None))
        pos = m.end()
    return tokens


def step_refs(obj: Any) -> set[str]:
    """Names of the steps an expression tree refers to (its data dependencies)."""
    found: set[str] = set()
    if isinstance(obj, dict):
        get = obj.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            found.add(str(path_tokens(get)[1]))
        for v in obj.values():
            found |= step_refs(v)
    elif isinstance(obj, list):
        for v in obj:
            found |= step_refs(v)
    return found


def lookup(root: Any, tokens: list[str | int], ref: str) -> Any:
    """Walk ``tokens`` into ``root``; a string index into a list matches an element's ``*Name``."""
    cur = root
    for tok in tokens:
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list) and isinstance(tok, int) and tok < len(cur):
            cur = cur[tok]
        elif isinstance(cur, list) and isinstance(tok, str):
            hits = [e for e in cur if isinstance(e, dict)
                    and any(k.endswith("Name") and v == tok for k, v in e.items())]
            if not hits:
                raise ExpressionError(f"{ref}: no element named {tok!r}")
            cur = hits[0]
        else:
            raise ExpressionError(f"{ref}: no property {tok!r}")
    return cur


class Resolver:
    """Resolves expressions against parameters, execution variables and finished steps."""

    def __init__(self, parameters: Mapping[str, Any], execution: Mapping[str, Any],
                 step_properties: Mapping[str, Any], read_file: Callable[[str], str]) -> None:
        self.parameters = parameters
        self.execution = execution
        self.steps = step_properties
        self.read_file = read_file  # reads an s3:// URI through the run's store

    def get(self, ref: str) -> Any:
        tokens = path_tokens(ref)
        head = tokens[0]
        if head == "Parameters":
            name = str(tokens[1])
            if name not in self.parameters:
                raise ExpressionError(f"{ref}: no such parameter")
            return self.parameters[name]
        if head == "Execution":
            name = str(tokens[1])
            if name not in self.execution:
                raise ExpressionError(f"{ref}: execution variable not supported locally")
            return self.execution[name]
        if head == "Steps":
            step = str(tokens[1])
            if step not in self.steps:
                raise ExpressionError(f"{ref}: step {step!r} has not run")
            return lookup(self.steps[step], tokens[2:], ref)
        raise ExpressionError(f"unsupported reference {ref!r}")

    def resolve(self, obj: Any) -> Any:
        """A copy of ``obj`` with every expression replaced by its value."""
        if isinstance(obj, list):
            return [self.resolve(v) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if set(obj) == {"Get"}:
            return self.get(obj["Get"])
        if set(obj) == {"Std:Join"}:
            spec = obj["Std:Join"]
            return str(self.resolve(spec.get("On", ""))).join(_text(self.resolve(v)) for v in spec["Values"])
        if set(obj) == {"Std:JsonGet"}:
            return self._json_get(obj["Std:JsonGet"])
        return {k: self.resolve(v) for k, v in obj.items()}

    def _json_get(self, spec: Mapping[str, Any]) -> Any:
        where = ""
        if "PropertyFile" in spec:
            pf = self.resolve(spec["PropertyFile"])  # {"S3Uri": …} recorded by the processing step
            uri = pf["S3Uri"] if isinstance(pf, dict) else pf
            ref = spec["PropertyFile"].get("Get", "") if isinstance(spec["PropertyFile"], dict) else ""
            if isinstance(pf, dict) and pf.get("OutputName"):
                where = (f" (property file {ref.rsplit('.', 1)[-1]}: did the step write {pf.get('FilePath')} "
                         f"to its output {pf.get('OutputName')!r}?)")
        else:
            uri = self.resolve(spec["S3Uri"])
        try:
            text = self.read_file(str(uri))
        except Exception as exc:  # the store's own error type; one line for the user
            raise ExpressionError(f"JsonGet {spec['Path']}: cannot read {uri}: {str(exc).splitlines()[0]}"
                                  f"{where}") from None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ExpressionError(f"JsonGet {spec['Path']}: {uri} is not JSON ({exc})") from None
        try:
            return lookup(doc, path_tokens(spec["Path"]), f"JsonGet {spec['Path']}")
        except ExpressionError as exc:
            keys = ", ".join(map(str, doc)) if isinstance(doc, dict) else type(doc).__name__
            raise ExpressionError(f"{exc} in {uri} (top-level keys: {keys})") from None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
