"""Hyperparameters: SageMaker's string map → the types the user declared (T-01, T-02, P-01, P-02).

Values arrive as strings in one of two encodings, ``str(v)`` (``"True"``, ``"['a', 'b']"``) or
``json.dumps(v)`` (``"true"``, ``"\\"abc\\""``); both must give the same result. The user
declares types with a dataclass annotating ``fit``'s second parameter; defaults imply the rest.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from rosetta_runtime.errors import HyperparameterError

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}
_MISSING = object()


def decode_value(raw: str) -> Any:
    """One raw value, either encoding → a Python value (JSON first, then a safe literal, else the string)."""
    if raw in {"None", "null"}:
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        pass
    stripped = raw.strip()
    if stripped[:1] in "[{(" and stripped:
        try:  # str() of a Python list/dict, e.g. "['a', 'b']": parsed, never evaluated
            return ast.literal_eval(stripped)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    return raw


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """``value`` (already decoded) as type ``tp``, or a HyperparameterError naming key and value."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for arg in args:
            try:
                return _coerce(name, value, arg)
            except HyperparameterError as exc:
                errors.append(str(exc))
        raise HyperparameterError(errors[0] if errors else f"{name}: unsupported type {tp!r}")
    if tp is Any or tp is object:
        return value
    if tp is bool:
        text = str(value).strip().lower()
        if isinstance(value, bool):
            return value
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise HyperparameterError(f"{name}: expected a boolean (true/false), got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise HyperparameterError(f"{name}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise HyperparameterError(f"{name}: expected an integer, got {value!r}") from None
        if not number.is_integer():
            raise HyperparameterError(f"{name}: expected an integer, got {value!r}")
        return int(number)
    if tp is float:
        if isinstance(value, bool):
            raise HyperparameterError(f"{name}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise HyperparameterError(f"{name}: expected a number, got {value!r}") from None
    if tp is str:
        return value if isinstance(value, str) else json.dumps(value) if isinstance(value, list | dict) else str(value)
    container = origin or tp
    if container in (list, tuple):
        if not isinstance(value, list | tuple):
            raise HyperparameterError(f"{name}: expected a list, got {value!r}")
        item_types = typing.get_args(tp)
        items = [_coerce(f"{name}[{i}]", v, item_types[0]) if item_types else v for i, v in enumerate(value)]
        return tuple(items) if container is tuple else list(items)
    if container is dict:
        if not isinstance(value, dict):
            raise HyperparameterError(f"{name}: expected an object, got {value!r}")
        return value
    raise HyperparameterError(f"{name}: unsupported declared type {tp!r}")


def parse(raw: Mapping[str, Any], declared: type | None = None) -> Any:
    """Decode SageMaker's map; with a dataclass ``declared``, return an instance of it.

    Without a declaration, a ``dict`` of decoded values. ``sagemaker_*`` keys are the SDK's own
    and are ignored. Unknown keys are an error when types are declared (typos fail loudly).
    """
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("sagemaker_"):
            continue
        decoded[key] = decode_value(value) if isinstance(value, str) else value
    if declared is None or not dataclasses.is_dataclass(declared):
        return decoded
    hints = typing.get_type_hints(declared)
    fields = {f.name: f for f in dataclasses.fields(declared)}
    unknown = sorted(set(decoded) - set(fields))
    if unknown:
        raise HyperparameterError(
            f"unknown hyperparameter {', '.join(map(repr, unknown))}; declared: {', '.join(sorted(fields)) or 'none'}"
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        value = decoded.get(name, _MISSING)
        if value is _MISSING or value is None:
            has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            if not has_default:
                raise HyperparameterError(f"{name}: required hyperparameter is missing")
            continue
        kwargs[name] = _coerce(name, value, hints.get(name, Any))
    return declared(**kwargs)


def to_json(hp: Any) -> dict[str, Any]:
    """A JSON-able view (for ``SM_HPS`` and logs)."""
    if dataclasses.is_dataclass(hp) and not isinstance(hp, type):
        return dataclasses.asdict(hp)
    return dict(hp)
