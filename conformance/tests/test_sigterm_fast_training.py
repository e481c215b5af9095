"""Issue 13.3: T-21 on a correct image whose training is fast.

`fast-save` fits in milliseconds and ends with a 1.5 s save that ignores SIGTERM (the model is
complete: finishing and exiting 0 is right). With the old fixed 1.0 s delay the signal landed in
that save and T-21 reported "exit 0 after SIGTERM" (a false FAIL, 3 of 3 runs); now the suite
grows the rows until the signal lands in training, and the image passes.
"""

from __future__ import annotations

import pytest
from conformance_fixture_images import FAST_MANIFEST, Variant

from rosetta_conformance import Status, load_manifest, run_suite

pytestmark = pytest.mark.docker


def test_fast_training_is_not_blamed(fixture_images: dict[str, Variant]) -> None:
    report = run_suite(fixture_images["fast-save"].tag, load_manifest(FAST_MANIFEST), only=["T-21"])
    r = report.results[0]
    assert r.status is Status.PASS, f"{r.status.value}: {r.detail} | {r.received}"
    # decided on a run where the signal landed in training: a non-zero exit, after more rows than given
    assert "exit 143" in r.received and "decided on attempt" in r.detail
