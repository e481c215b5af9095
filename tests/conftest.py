"""Shared fixtures of the image suite: one trained model and one serving container per runtime.

Everything is created on first use and kept for the session (a session per xdist worker), so a
test never depends on which test ran before it, in which file or on which worker. The images come
from ``./dev test`` (``rosetta setup --examples``): a missing image fails, it is never built here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from rosetta_testkit.runtimes import RUNTIMES, Runtime
from rosetta_testkit.session import Models, Reliability, Servers, Trained
from sagemaker_rosetta import local_images
from sagemaker_rosetta.containers import Server


@pytest.fixture(params=RUNTIMES, ids=str)
def rt(request: pytest.FixtureRequest) -> Runtime:
    """The runtime a test runs against (every test taking ``rt`` runs for each runtime)."""
    runtime: Runtime = request.param
    for image in (runtime.image, runtime.example):
        assert local_images.exists(image), f"{image} is missing: run ./dev setup (rosetta setup --examples)"
    return runtime


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    base = tmp_path_factory.getbasetemp()
    # xdist: every worker's basetemp sits in the run's own folder, which they share
    return Models((base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "models")


@pytest.fixture
def trained(rt: Runtime, models: Models) -> Trained:
    return models.get(rt)


@pytest.fixture(scope="session")
def servers(models: Models) -> Iterator[Servers]:
    pool = Servers(models)
    try:
        yield pool
    finally:
        pool.remove_all()


@pytest.fixture
def server(rt: Runtime, servers: Servers) -> Server:
    return servers.get(rt)


@pytest.fixture(scope="session")
def reliability(servers: Servers) -> Reliability:
    return Reliability(servers)

