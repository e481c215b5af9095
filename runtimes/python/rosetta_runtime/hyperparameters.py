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


def _raw(value: Any) -> str:
    """How a value is quoted in a message: the text as given (compact JSON for decoded items)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _coerce(name: str, value: Any, tp: Any, raw: Any = None) -> Any:
    """``value`` (already decoded from ``raw``) as type ``tp``, or a HyperparameterError naming
    key and raw text (``name: expected an integer, got 'many'``: the same text in every runtime)."""
    raw = value if raw is None else raw

    def bad(what: str) -> HyperparameterError:
        return HyperparameterError(f"{name}: expected {what}, got '{_raw(raw)}'")

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for arg in args:
            try:
                return _coerce(name, value, arg, raw)
            except HyperparameterError as exc:
                errors.append(str(exc))
        raise HyperparameterError(errors[0] if errors else f"{name}: unsupported type {tp!r}")
    if tp is Any or tp is object:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise bad("a boolean (true/false)")
    if tp is int:
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise bad("an integer") from None
        if not number.is_integer():
            raise bad("an integer")
        return int(number)
    if tp is float:
        if isinstance(value, bool):
            raise bad("a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad("a number") from None
    if tp is str:
        if isinstance(value, str):
            return value
        # str(v) of a number or boolean decodes as JSON to a non-string: the string is the text as given
        return raw if isinstance(raw, str) else json.dumps(value)
    container = origin or tp
    if container in (list, tuple):
        if not isinstance(value, list | tuple):
            raise bad("a list")
        item_types = typing.get_args(tp)
        items = [_coerce(f"{name}[{i}]", v, item_types[0]) if item_types else v for i, v in enumerate(value)]
        return tuple(items) if container is tuple else list(items)
    if container is dict:
        if not isinstance(value, dict):
            raise bad("an object")
        return value
    raise HyperparameterError(f"{name}: unsupported declared type {tp!r}")


#: a key SageMaker adds to every training job of a hyperparameter tuning job (the objective's name)
TUNING_OBJECTIVE_KEY = "_tuning_objective_metric"


def reserved(key: str) -> bool:
    """A key of SageMaker's own, never the user's: ``sagemaker_*`` (the SDK's) and
    ``_tuning_objective_metric`` (a tuning job's). Accepted and left out of the user's hyperparameters."""
    return key.startswith("sagemaker_") or key == TUNING_OBJECTIVE_KEY


def parse(raw: Mapping[str, Any], declared: type | None = None) -> Any:
    """Decode SageMaker's map; with a dataclass ``declared``, return an instance of it.

    Without a declaration, a ``dict`` of decoded values. SageMaker's own keys (:func:`reserved`:
    ``sagemaker_*``, ``_tuning_objective_metric``) are ignored. Unknown keys are an error when types
    are declared (typos fail loudly).
    """
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        if reserved(key):
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
        kwargs[name] = _coerce(name, value, hints.get(name, Any), raw.get(name))
    return declared(**kwargs)


def given(raw: Mapping[str, Any], hp: Any) -> dict[str, Any]:
    """The hyperparameters given in ``raw``, typed as in ``hp`` (SM_HPS, D4): no :func:`reserved` keys,
    no defaults, and a ``None``/``null`` value counts as not given (its default applies)."""
    values = to_json(hp)
    out = {}
    for key, value in raw.items():
        if reserved(key) or key not in values:
            continue
        if (decode_value(value) if isinstance(value, str) else value) is None:
            continue
        out[key] = values[key]
    return out


def to_json(hp: Any) -> dict[str, Any]:
    """A JSON-able view (for ``SM_HPS`` and logs)."""
    if dataclasses.is_dataclass(hp) and not isinstance(hp, type):
        return dataclasses.asdict(hp)
    return dict(hp)
