"""Benchmarks and the long reliability run (``./dev bench``, ``./dev reliability``).

They reuse the test kit that lives with the tests (``tests/rosetta_testkit``: runtime table,
reliability client, load and PSS readings), so ``tests/`` goes on the import path here, as
pytest's ``pythonpath`` setting does for the tests.
"""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1] / "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)
