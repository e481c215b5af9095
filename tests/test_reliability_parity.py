"""Differential parity: the same request bytes give the same status and record count in every runtime.

Runs after tests/test_reliability.py (files run in name order), which collects each runtime's matrix.
"""

from __future__ import annotations

import pytest

from bench import reliability as rel

pytestmark = pytest.mark.docker


def test_parity_across_runtimes() -> None:
    assert set(rel.COLLECTED) == set(rel.IMAGES), f"matrices collected for {sorted(rel.COLLECTED)} only"
    assert rel.parity(rel.COLLECTED) == []


def test_schemathesis_parity_across_runtimes() -> None:
    """The derandomized schemathesis cases get the same status from every runtime, case by case."""
    assert set(rel.COLLECTED_OPENAPI) == set(rel.IMAGES), f"collected for {sorted(rel.COLLECTED_OPENAPI)} only"
    assert rel.openapi_parity(rel.COLLECTED_OPENAPI) == []
