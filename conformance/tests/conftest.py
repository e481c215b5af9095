"""Session fixture: the fixture images, built once (see conformance_fixture_images.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conformance_fixture_images import EXTRA, VARIANTS, Variant, build_variants


@pytest.fixture(scope="session")
def fixture_images() -> Iterator[dict[str, Variant]]:
    build_variants(VARIANTS + EXTRA)
    yield {v.name: v for v in VARIANTS + EXTRA}
