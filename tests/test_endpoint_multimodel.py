"""``rosetta endpoint up NAME --multi-model FOLDER``: boto3's ``invoke_endpoint(TargetModel=...)``
against the iris Python image in multi-model mode (decisions D6). The first call for a model
extracts and loads its archive; on 507 the endpoint unloads the least recently used model and
loads again. A memory budget of 10 MiB and archives padded to ~4 MB make exactly two models fit."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rosetta_testkit.runtimes import RUNTIMES
from rosetta_testkit.session import Models
from sagemaker_rosetta import local_images
from sagemaker_rosetta.endpoint import daemon, deploy, spec
from sagemaker_rosetta.endpoint.state import State
from sagemaker_rosetta.httpclient import request

PY = RUNTIMES[0]
ROWS = b"5.1,3.5,1.4,0.2\n6.9,3.1,5.4,2.1\n"


@dataclass
class Multi:
    state: State
    url: str

    def client(self) -> Any:
        return boto3.client("sagemaker-runtime", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local",
                            config=Config(retries={"max_attempts": 1}, max_pool_connections=16))

    def loaded(self) -> set[str]:
        """What the container holds (its own GET /models)."""
        ep = self.state.load("mm")
        assert ep is not None
        resp = request(ep.members[0].host_port, "GET", "/models", None, {}, 10)
        return {m["modelName"] for m in json.loads(resp.body)["models"]}


def _archive(model: Path, dest: Path, pad_bytes: int) -> None:
    with tarfile.open(dest, "w:gz") as tar:
        for f in sorted(model.iterdir()):
            tar.add(f, arcname=f.name)
        if pad_bytes:  # incompressible bytes: the runtime counts a model's size on disk (D6)
            pad = dest.parent / ".pad"
            pad.write_bytes(bytes(range(256)) * (pad_bytes // 256))
            tar.add(pad, arcname="padding.bin")
            pad.unlink()


@pytest.fixture(scope="module")
def multi(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Multi]:
    assert local_images.exists(PY.example), f"{PY.example} is missing: run ./dev setup"
    base = tmp_path_factory.mktemp("mme")
    folder = base / "models"
    folder.mkdir()
    model = models.get(PY).model
    for k in range(1, 5):
        _archive(model, folder / f"customer-{k}.tar.gz", 4_000_000)
    _archive(model, folder / "huge.tar.gz", 12_000_000)
    (folder / "not-a-model.tar.gz").write_bytes(b"garbage")
    state = State(base / "state")
    made = spec.from_create_model({"PrimaryContainer": {"Image": PY.example, "Mode": "MultiModel",
                                                        "ModelDataUrl": str(folder),
                                                        "Environment": {"ROSETTA_MME_MEMORY_MB": "10",
                                                                        "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}}},
                                  source="test")
    try:
        deploy.up(state, "mm", made)
        yield Multi(state, daemon.ensure_front(state))
    finally:
        deploy.down(state, "mm")
        daemon.stop_front(state)


def test_target_model_loads_then_lru_unloads_on_507(multi: Multi) -> None:
    client = multi.client()
    for k in (1, 2, 3, 1, 4):  # room for two: 3 unloads 1, 1 unloads 2, 4 unloads 3
        resp = client.invoke_endpoint(EndpointName="mm", TargetModel=f"customer-{k}.tar.gz",
                                      ContentType="text/csv", Body=ROWS)
        assert resp["Body"].read().decode().split() == ["setosa", "virginica"]
    assert multi.loaded() == {"customer-1", "customer-4"}


def test_target_model_errors(multi: Multi) -> None:
    client = multi.client()
    cases = [({}, "ValidationError", "give TargetModel"),
             ({"TargetModel": "nope.tar.gz"}, "ValidationError", "Could not find model data for TargetModel nope"),
             ({"TargetModel": "not-a-model.tar.gz"}, "ValidationError", "is not a model.tar.gz"),
             ({"TargetModel": "huge.tar.gz"}, "ModelError", "Received server error (507) from primary")]
    for kw, code, says in cases:
        with pytest.raises(ClientError) as caught:
            client.invoke_endpoint(EndpointName="mm", ContentType="text/csv", Body=ROWS, **kw)
        assert caught.value.response["Error"]["Code"] == code, kw
        assert says in caught.value.response["Error"]["Message"], caught.value.response["Error"]["Message"]


def test_round_robin_at_c8_with_unloads_has_no_errors(multi: Multi) -> None:
    client = multi.client()

    def one(k: int) -> str:
        resp = client.invoke_endpoint(EndpointName="mm", TargetModel=f"customer-{k % 4 + 1}.tar.gz",
                                      ContentType="text/csv", Body=ROWS)
        return str(resp["Body"].read().decode())

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(80)))
    assert answers == ["setosa\nvirginica\n"] * 80
    assert len(multi.loaded()) == 2
