"""Serial inference pipelines end to end: examples/chain's pipeline (R standardiser → Python
model → Julia post-processor) run locally once for the module (training, one serial Model,
batch transform of the hold-out through the chain), then its Model step served in one Pod and
called with boto3's own ``invoke_endpoint``; Direct mode (``TargetContainerHostname``) on a
second endpoint of two of those containers. The endpoints serve the whole module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rosetta_orchestrator.loader import load
from rosetta_orchestrator.local.run import execute
from rosetta_orchestrator.local.runner import QuietReporter, RunResult
from rosetta_orchestrator.local.store import LocalStore
from rosetta_testkit.runtimes import DATA, ROOT
from sagemaker_rosetta import images, local_images
from sagemaker_rosetta.endpoint import daemon, deploy, spec
from sagemaker_rosetta.endpoint.state import State

STEPS = {"standardise": "chain-r", "model": "chain-python", "label": "chain-julia"}
EXAMPLE = ROOT / "examples" / "chain" / "pipeline.py"
ROWS = b"5.1,3.5,1.4,0.2\n6.9,3.1,5.4,2.1\n5.9,3.0,4.2,1.5\n"


@dataclass
class Chain:
    state: State
    url: str
    result: RunResult

    def client(self) -> Any:
        return boto3.client("sagemaker-runtime", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local",
                            config=Config(retries={"max_attempts": 1}, max_pool_connections=16))


def _holdout_labels(result: RunResult) -> list[str]:
    store = result.store
    assert isinstance(store, LocalStore)
    out = Path(store.path(result.steps["TransformHoldout"].properties["TransformOutput"]["S3OutputPath"]))
    return [json.loads(line)["label"] for line in (out / "test_features.csv.out").read_text().splitlines()]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """examples/chain/pipeline.py run locally; its Chain step served Serial, and two of its
    containers Direct."""
    for name in STEPS.values():
        image = images.tag(name)
        assert local_images.exists(image), f"{image} is missing: run ./dev setup (rosetta setup --examples)"
    base = tmp_path_factory.mktemp("chain")
    result = execute(load(EXAMPLE), store=LocalStore(base / "s3"), workdir=base / "runs", parameters={},
                     reporter=QuietReporter(), max_parallel=3)
    assert result.status == "Succeeded", {n: s.reason for n, s in result.steps.items() if s.reason}
    state = State(base / "state")
    serial = spec.from_pipeline_step("Chain", workdir=base / "runs", execution=None, store=str(base / "s3"),
                                     s3_endpoint_url=None)
    direct = spec.ModelSpec(serial.containers[:2], mode="Direct", store=serial.store, source="test").checked()
    try:
        deploy.up(state, "chain", serial, ready_timeout=300)
        deploy.up(state, "direct", direct, ready_timeout=300)
        yield Chain(state, daemon.ensure_front(state), result)
    finally:
        for name in state.names():
            deploy.down(state, name)
        daemon.stop_front(state)


def test_pipeline_transforms_the_holdout_through_the_chain(chain: Chain) -> None:
    """One JSON line per hold-out row, in order, and the labels are right."""
    labels = _holdout_labels(chain.result)
    truth = [line.split(",")[-1] for line in (DATA / "test.csv").read_text().splitlines()[1:]]
    assert len(labels) == len(truth)
    assert sum(a == b for a, b in zip(labels, truth, strict=True)) >= 0.9 * len(truth)
    assert chain.result.steps["TransformHoldout"].properties["Records"] == len(truth)


def test_serial_csv_through_three_languages(chain: Chain) -> None:
    resp = chain.client().invoke_endpoint(EndpointName="chain", ContentType="text/csv", Body=ROWS,
                                          CustomAttributes="trace=on")
    assert resp["ContentType"] == "application/json"  # the last container's default (its image's ENV)
    out = json.loads(resp["Body"].read())["predictions"]
    assert [p["label"] for p in out] == ["setosa", "virginica", "versicolor"]
    assert all(0.5 < p["confidence"] <= 1 for p in out)


def test_serial_json_in_jsonlines_out(chain: Chain) -> None:
    """The client's Content-Type goes to container 1 only, its Accept to the last only."""
    resp = chain.client().invoke_endpoint(EndpointName="chain", ContentType="application/json",
                                          Accept="application/jsonlines",
                                          Body=json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}))
    assert resp["ContentType"] == "application/jsonlines"
    assert json.loads(resp["Body"].read())["label"] == "setosa"


def test_serial_csv_answer_from_the_last_containers_output_fn(chain: Chain) -> None:
    resp = chain.client().invoke_endpoint(EndpointName="chain", ContentType="text/csv", Accept="text/csv", Body=ROWS)
    assert resp["ContentType"].startswith("text/csv")
    rows = [line.split(",") for line in resp["Body"].read().decode().splitlines()]
    assert [r[0] for r in rows] == ["setosa", "virginica", "versicolor"] and all(0.5 < float(r[1]) <= 1 for r in rows)


def test_serial_equals_the_containers_called_one_after_the_other(chain: Chain) -> None:
    client = chain.client()
    z = client.invoke_endpoint(EndpointName="direct", TargetContainerHostname="standardise",
                               ContentType="text/csv", Body=ROWS)
    assert z["ContentType"].startswith("text/csv")
    standardised = z["Body"].read()
    assert [len(line.split(b",")) for line in standardised.splitlines()] == [4, 4, 4]
    p = client.invoke_endpoint(EndpointName="direct", TargetContainerHostname="model", ContentType="text/csv",
                               Body=standardised)
    probs = [[float(x) for x in line.split(b",")] for line in p["Body"].read().splitlines()]
    out = json.loads(client.invoke_endpoint(EndpointName="chain", ContentType="text/csv", Body=ROWS)["Body"].read())
    assert [o["confidence"] for o in out["predictions"]] == [round(max(r), 4) for r in probs]


def test_middle_container_4xx_is_model_error_naming_it(chain: Chain) -> None:
    """R standardises 1.7e308 to Inf; the Python container refuses it (400)."""
    client = chain.client()
    with pytest.raises(client.exceptions.ModelError) as caught:
        client.invoke_endpoint(EndpointName="chain", ContentType="text/csv", Body=ROWS + b"1.7e308,1,1,1\n")
    err = caught.value.response
    assert err["OriginalStatusCode"] == 400
    assert "row 4: non-finite value" in err["OriginalMessage"]
    assert err["Error"]["Message"].startswith("Received client error (400) from container-2 (model) with message")
    assert err["LogStreamArn"].endswith(":log-stream:AllTraffic/model")


def test_direct_routing_needs_a_known_hostname(chain: Chain) -> None:
    client = chain.client()
    for kw, says in (({}, "give TargetContainerHostname (one of standardise, model)"),
                     ({"TargetContainerHostname": "label"}, "has no container 'label'")):
        with pytest.raises(ClientError) as caught:
            client.invoke_endpoint(EndpointName="direct", ContentType="text/csv", Body=ROWS, **kw)
        assert caught.value.response["Error"]["Code"] == "ValidationError"
        assert says in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(EndpointName="chain", ContentType="text/csv", Body=ROWS, TargetContainerHostname="model")
    assert "applies only to Direct invocation" in caught.value.response["Error"]["Message"]


def test_each_container_on_its_own_port(chain: Chain) -> None:
    ep = chain.state.load("chain")
    assert ep is not None and ep.mode == "Serial"
    ports = [m.port for m in ep.members]
    assert len(set(ports)) == 3 and 8080 not in ports
    assert len({m.host_port for m in ep.members}) == 3


def test_concurrent_invocations_through_the_chain(chain: Chain) -> None:
    client = chain.client()
    rows = (DATA / "test_features.csv").read_bytes().splitlines()

    def one(k: int) -> str:
        resp = client.invoke_endpoint(EndpointName="chain", ContentType="text/csv", Body=rows[k % len(rows)] + b"\n")
        return str(json.loads(resp["Body"].read())["predictions"][0]["label"])

    with ThreadPoolExecutor(8) as pool:
        labels = list(pool.map(one, range(96)))
    assert len(labels) == 96
    # the same row always gets the same label, whichever request and connection carried it
    by_row: dict[int, set[str]] = {}
    for k, label in enumerate(labels):
        by_row.setdefault(k % len(rows), set()).add(label)
    assert all(len(s) == 1 for s in by_row.values())
