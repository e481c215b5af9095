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
