"""Evaluate a Condition step's ``Conditions`` (already resolved to plain values) as SageMaker does.

The list is a conjunction (every condition must hold for ``IfSteps``). Comparison rules, after the
SDK's local executor (``sagemaker.mlops.local.pipeline._ConditionStepExecutor``) and the definition
schema (operands are strings, booleans, integers or floats):

- numbers (integers and floats) compare numerically with each other, so ``1 == 1.0``;
- strings compare with strings (``Equals`` exactly, the orderings lexicographically);
- booleans compare with booleans, and only with ``Equals``/``NotEquals``;
- any other pairing, or an ordering of booleans, fails the step with both values and their types,
  instead of quietly choosing a branch;
- ``In``: the query value equals one of ``Values`` by the ``Equals`` rule;
- ``Not`` negates one condition, ``Or`` holds when any of its conditions holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ConditionError(ValueError):
    """A condition that cannot be evaluated (operand types, unknown type)."""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__ if value is not None else "null"


def _show(value: Any) -> str:
    return f"{value!r} ({_kind(value)})"


def _comparable(kind: str, left: Any, right: Any) -> None:
    lk, rk = _kind(left), _kind(right)
    if lk != rk or lk not in ("number", "string", "boolean"):
        raise ConditionError(f"{kind}: cannot compare {_show(left)} with {_show(right)}; "
                             "compare values of the same type (numbers, strings or booleans)")
    if lk == "boolean" and kind not in ("Equals", "NotEquals"):
        raise ConditionError(f"{kind}: booleans can only be tested with Equals ({_show(left)}, {_show(right)})")


def _equal(left: Any, right: Any) -> bool:
    _comparable("Equals", left, right)
    return bool(left == right)


ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def holds(condition: dict[str, Any]) -> bool:
    """Whether one resolved condition holds."""
    kind = condition.get("Type")
    if kind in ORDERINGS:
        left, right = condition.get("LeftValue"), condition.get("RightValue")
        _comparable(str(kind), left, right)
        return bool(ORDERINGS[str(kind)](left, right))
    if kind == "Equals":
        return _equal(condition.get("LeftValue"), condition.get("RightValue"))
    if kind == "NotEquals":
        return not _equal(condition.get("LeftValue"), condition.get("RightValue"))
    if kind == "In":
        values = condition.get("Values")
        if not isinstance(values, list):
            raise ConditionError(f"In: Values must be a list, got {_show(values)}")
        query = condition.get("QueryValue")
        return any(_kind(query) == _kind(v) and _equal(query, v) for v in values)
    if kind == "Not":
        return not holds(condition.get("Condition") or {})
    if kind == "Or":
        return any(holds(c) for c in condition.get("Conditions") or [])
    raise ConditionError(f"unknown condition type {kind!r} (Equals, GreaterThan, GreaterThanOrEqualTo, "
                         "LessThan, LessThanOrEqualTo, In, Not, Or)")


def evaluate(conditions: list[dict[str, Any]]) -> bool:
    """A Condition step's outcome: every condition of the list holds."""
    return all(holds(c) for c in conditions)


def explain(conditions: list[dict[str, Any]]) -> str:
    """A short text of the resolved conditions, for the run summary."""
    return " and ".join(_text(c) for c in conditions) or "(no conditions)"


SYMBOLS = {"Equals": "==", "NotEquals": "!=", "GreaterThan": ">", "GreaterThanOrEqualTo": ">=",
           "LessThan": "<", "LessThanOrEqualTo": "<="}


def _text(c: dict[str, Any]) -> str:
    kind = c.get("Type")
    if kind in SYMBOLS:
        return f"{c.get('LeftValue')!r} {SYMBOLS[str(kind)]} {c.get('RightValue')!r}"
    if kind == "In":
        return f"{c.get('QueryValue')!r} in {c.get('Values')!r}"
    if kind == "Not":
        return f"not ({_text(c.get('Condition') or {})})"
    if kind == "Or":
        return "(" + " or ".join(_text(x) for x in c.get("Conditions") or []) + ")"
    return str(kind)
