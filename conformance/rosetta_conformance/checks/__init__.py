"""Check functions, one per clause, registered by clause ID.

A check takes the :class:`~rosetta_conformance.harness.Harness` and returns an
:class:`~rosetta_conformance.outcome.Outcome`; it raises ``Blocked``/``Skip`` when it
cannot run. ``final`` checks (they stop containers) run after all the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rosetta_conformance.harness import Harness
from rosetta_conformance.outcome import Outcome

CheckFn = Callable[[Harness], Outcome]


@dataclass(frozen=True)
class Check:
    clause: str
    fn: CheckFn
    final: bool = False


REGISTRY: dict[str, Check] = {}


def check(clause: str, *, final: bool = False) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        if clause in REGISTRY:
            raise ValueError(f"two checks for {clause}")
        REGISTRY[clause] = Check(clause, fn, final)
        return fn
    return register


def load_all() -> dict[str, Check]:
    """Import the check modules (they register themselves)."""
    from rosetta_conformance.checks import (  # noqa: F401
        batch,
        checkpoint,
        multimodel,
        pipeline,
        serving,
        sigterm,
        static,
        toolkit,
        training,
    )

    return REGISTRY
