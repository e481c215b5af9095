"""Multi-model mode's registry and memory budget, in-process (D6).

Two :class:`ModelStore` objects on one registry folder stand for two worker processes (the real
two-process server is in ``test_multimodel_server.py``); what only shows inside a worker (a dropped
copy, a reservation of a dead worker, memory measured after a load) is checked here.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from rosetta_runtime.adapter import load_adapter
from rosetta_runtime.errors import BadRequest, HTTPError
from rosetta_runtime.multimodel import ModelStore, Registry, folder_size, listing_request, page_token
from rosetta_runtime.paths import MIB, ServingSettings, memory_limit

SOURCE = """
import json
import numpy as np

def fit(data, hp):
    raise NotImplementedError

def load(model_dir):
    params = json.loads((model_dir / "params.json").read_text())
    # memory the folder's size does not show (a compressed artifact, a model that expands on load)
    ballast = np.ones(params.get("alloc_mb", 0) * 2**20 // 8)
    return {"scale": params["scale"], "ballast": ballast}

def predict(model, X):
    return X.sum(axis=1) * model["scale"]
"""


def model_folder(root: Path, name: str, scale: float, pad_mb: int = 0, alloc_mb: int = 0) -> Path:
    folder = root / name / "model"
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps({"scale": scale, "alloc_mb": alloc_mb}))
    (folder / "rosetta.json").write_text(json.dumps({"runtime": "python", "features": None, "n_features": 3}))
    if pad_mb:
        with (folder / "padding.bin").open("wb") as fh:
            fh.truncate(pad_mb * MIB)
    return folder


@pytest.fixture
def stores(tmp_path: Path, user_code: Callable[[str], Path],
           monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[ModelStore, ModelStore]]:
    """``make(memory_mb, workers)`` → two stores ("workers") sharing one fresh registry."""
    user_code(SOURCE)

    def make(memory_mb: int = 1000, workers: int = 2) -> tuple[ModelStore, ModelStore]:
        monkeypatch.setenv("SAGEMAKER_MULTI_MODEL", "true")
        monkeypatch.setenv("ROSETTA_MME_MEMORY_MB", str(memory_mb))
        monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", str(workers))
        monkeypatch.setenv("ROSETTA_MME_STATE_DIR", str(tmp_path / "registry"))
        settings = ServingSettings.from_env()
        prototype = load_adapter()
        prototype.prepare()  # type: ignore[attr-defined]
        Registry(settings.mme_state_dir).reset()
        return ModelStore(prototype, settings), ModelStore(prototype, settings)

    return make


def status_of(load: Coroutine[Any, Any, object]) -> int:
    try:
        asyncio.run(load)
    except HTTPError as exc:
        return exc.status
    return 200


def test_cost_counts_every_worker_and_unload_frees_it(stores: Callable[..., tuple[ModelStore, ModelStore]],
                                                      tmp_path: Path) -> None:
    a, b = stores(memory_mb=100, workers=2)
    one = model_folder(tmp_path / "models", "one", 1.0, pad_mb=30)
    two = model_folder(tmp_path / "models", "two", 2.0, pad_mb=30)
    assert folder_size(one) == 30 * MIB + len((one / "params.json").read_bytes()) + len(
        (one / "rosetta.json").read_bytes())
    asyncio.run(a.load("one", str(one)))  # 30 MiB × 2 workers = 60 of 100
    assert status_of(b.load("two", str(two))) == 507  # 60 + 60 > 100, decided before loading
    assert b.unload("one").name == "one"
    asyncio.run(b.load("two", str(two)))
    assert [e.name for e in a.listing(10, None)[0]] == ["two"]


def test_memory_growth_beyond_the_folder_size_is_refused_after_loading(
        stores: Callable[..., tuple[ModelStore, ModelStore]], tmp_path: Path) -> None:
    a, b = stores(memory_mb=40, workers=1)
    big = model_folder(tmp_path / "models", "big", 1.0, alloc_mb=80)  # a tiny folder that takes 80 MB loaded
    with pytest.raises(HTTPError) as refused:
        asyncio.run(a.load("big", str(big)))
    assert (refused.value.status, refused.value.message) == (507, "not enough memory to load model 'big'")
    assert a.listing(10, None)[0] == [] and "big" not in a.registry.current().loading  # nothing left behind
    small = model_folder(tmp_path / "models", "small", 2.0)
    asyncio.run(b.load("small", str(small)))  # the budget is whole again


def test_unload_through_one_worker_drops_the_other_workers_copy(
        stores: Callable[..., tuple[ModelStore, ModelStore]], tmp_path: Path) -> None:
    a, b = stores()
    folder = model_folder(tmp_path / "models", "m", 3.0)

    async def scenario() -> None:
        await a.load("m", str(folder))
        predictor = await b.predictor("m")  # b loads its own copy on first use
        assert predictor is not await a.predictor("m")
        assert predictor is await b.predictor("m")  # and keeps it
        a.unload("m")
        with pytest.raises(HTTPError) as gone:
            await b.predictor("m")
        assert gone.value.status == 404
        assert "m" not in b._held  # its memory is released, not only hidden

    asyncio.run(scenario())


def test_a_lazy_load_that_fails_is_a_500_and_is_retried(stores: Callable[..., tuple[ModelStore, ModelStore]],
                                                        tmp_path: Path) -> None:
    a, b = stores()
    folder = model_folder(tmp_path / "models", "m", 3.0)
    asyncio.run(a.load("m", str(folder)))
    params = (folder / "params.json").read_text()
    (folder / "params.json").write_text("{")  # broken after the first worker loaded it
    with pytest.raises(HTTPError) as failed:
        asyncio.run(b.predictor("m"))
    assert failed.value.status == 500 and failed.value.message.startswith("cannot load model 'm': ")
    (folder / "params.json").write_text(params)
    assert asyncio.run(b.predictor("m")) is not None


def test_a_dead_workers_reservation_is_ignored(stores: Callable[..., tuple[ModelStore, ModelStore]],
                                               tmp_path: Path) -> None:
    a, _ = stores(memory_mb=10)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    with a.registry.update() as state:  # a worker died in the middle of loading "m"
        state.loading["m"] = {"pid": int(dead.stdout), "cost": 10 * MIB}
    asyncio.run(a.load("m", str(model_folder(tmp_path / "models", "m", 1.0))))  # neither 409 nor 507


def test_page_tokens_round_trip_any_name() -> None:
    for name in ("a", "customer-17", "x y", "é/ü", "日本"):
        token = page_token(name)
        assert "=" not in token
        assert listing_request(f"next_page_token={token}&limit=7") == (7, name)
    assert listing_request("") == (100, None)
    for query in ("limit=0", "limit=1001", "limit=%EF%BC%91", "next_page_token=_w", "next_page_token=a.b"):
        with pytest.raises(BadRequest):
            listing_request(query)


def test_default_budget_is_a_share_of_the_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_MULTI_MODEL", "True")
    monkeypatch.delenv("ROSETTA_MME_MEMORY_MB", raising=False)
    settings = ServingSettings.from_env()
    assert settings.multi_model and settings.mme_memory_bytes == int(memory_limit() * 0.8) > 0
    monkeypatch.setenv("ROSETTA_MME_MEMORY_MB", "-5")
    with pytest.raises(ValueError, match="ROSETTA_MME_MEMORY_MB"):
        ServingSettings.from_env()
    monkeypatch.setenv("SAGEMAKER_MULTI_MODEL", "1")  # D6: "true" in any case, nothing else
    assert not ServingSettings.from_env().multi_model
