"""Fixtures for the orchestrator tests: the echo test image."""

from __future__ import annotations

import pytest
from orch_helpers import ECHO_IMAGE, HERE


@pytest.fixture(scope="session")
def echo_image() -> str:
    """Build the tiny stdlib echo image once per session (seconds when cached)."""
    from sagemaker_rosetta import engine
    from sagemaker_rosetta.images import docker_build

    engine.ensure_engine()
    engine.ensure_base_images(["debian:bookworm-slim"])
    docker_build(ECHO_IMAGE, HERE / "echo_image" / "Dockerfile", HERE / "echo_image")
    return ECHO_IMAGE
