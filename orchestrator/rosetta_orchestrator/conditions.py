"""Conditions for :meth:`Pipeline.condition`, as the SDK's ``Condition*`` classes (same JSON).

Operands are literals, parameters (``p.parameter``), execution variables, step properties
(``train.metric("acc")``, ``evaluate.json("evaluation", "best.accuracy")``, ``split.output("x")``)
or ``Join``/``JsonGet`` values::

    from rosetta_orchestrator import conditions as c
    p.condition("Gate", conditions=[c.ge(evaluate.json("evaluation", "best.accuracy"), threshold)],
                if_steps=[register], else_steps=[stop])
"""

from __future__ import annotations

from typing import Any

from rosetta_orchestrator.sdk import sdk


def eq(left: Any, right: Any) -> Any:
    """``Equals``."""
    return sdk().conditions.ConditionEquals(left=left, right=right)


def gt(left: Any, right: Any) -> Any:
    """``GreaterThan``."""
    return sdk().conditions.ConditionGreaterThan(left=left, right=right)


def ge(left: Any, right: Any) -> Any:
    """``GreaterThanOrEqualTo``."""
    return sdk().conditions.ConditionGreaterThanOrEqualTo(left=left, right=right)


def lt(left: Any, right: Any) -> Any:
    """``LessThan``."""
    return sdk().conditions.ConditionLessThan(left=left, right=right)


def le(left: Any, right: Any) -> Any:
    """``LessThanOrEqualTo``."""
    return sdk().conditions.ConditionLessThanOrEqualTo(left=left, right=right)


def is_in(value: Any, values: list[Any]) -> Any:
    """``In``: ``value`` equals one of ``values``."""
    return sdk().conditions.ConditionIn(value=value, in_values=list(values))


def not_(condition: Any) -> Any:
    """``Not``."""
    return sdk().conditions.ConditionNot(expression=condition)


def or_(*conditions: Any) -> Any:
    """``Or``: any of the conditions holds (a condition step's list is itself an And)."""
    return sdk().conditions.ConditionOr(conditions=list(conditions))
