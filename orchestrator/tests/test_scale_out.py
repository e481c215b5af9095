"""Multi-instance jobs and checkpoints with real containers on the tiny echo image (issue 18.1, 19.4).

Training on 3 hosts (resourceconfig per host, names resolvable from each other, ShardedByS3Key
shards disjoint and covering the input, FullyReplicated everywhere, models merged), a failing host
stopping the others, processing and transform on 2 instances, and a job killed mid-way (spot-style)
that resumes from its checkpoint on the retry and after ``--resume``.
"""

from __future__ import annotations

import json
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from orch_helpers import HERE

from rosetta_orchestrator import Pipeline
from rosetta_orchestrator.local.run import execute
from rosetta_orchestrator.local.runner import QuietReporter, RunResult
from rosetta_orchestrator.local.store import LocalStore
from sagemaker_rosetta import dockerapi
from sagemaker_rosetta.containers import LABEL, RUN_ID, Container

pytestmark = pytest.mark.docker
IMAGE = "rosetta-test/echo:latest"


def run(p: Pipeline, tmp: Path, resume: str | None = None) -> tuple[RunResult, QuietReporter]:
    reporter = QuietReporter()
    result = execute(p, store=LocalStore(tmp / "s3"), workdir=tmp / "runs", reporter=reporter, max_parallel=4,
                     resume=resume)
    return result, reporter


def local(result: RunResult, uri: str) -> Path:
    assert isinstance(result.store, LocalStore)
    return Path(result.store.path(uri))


def leftovers() -> tuple[list[str], list[str]]:
    """This process's containers and networks still on the engine."""
    api = dockerapi.api()
    containers = [c["Names"][0] for c in api.containers(all=True, filters={"label": f"{LABEL}={RUN_ID}"})]
    networks = [n["Name"] for n in api.networks(filters={"label": f"{LABEL}={RUN_ID}"})]
    return containers, networks


def wait_clean(timeout: float = 60) -> tuple[list[str], list[str]]:
    from rosetta_orchestrator.local import container

    container.wait_removals()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = leftovers()
        if not any(found):
            return found
        time.sleep(0.5)
    return leftovers()


def shard_files(tmp: Path) -> tuple[Path, list[str]]:
    data = tmp / "data"
    names = [f"part-{i}.csv" for i in range(5)] + ["sub/part-5.csv", "sub/part-6.csv"]
    for i, name in enumerate(names):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text("".join(f"{i},{j}\n" for j in range(i + 1)))
    return data, names


def model_files(result: RunResult, step: str) -> dict[str, Any]:
    tar_path = local(result, result.steps[step].properties["ModelArtifacts"]["S3ModelArtifacts"])
    with tarfile.open(tar_path) as tar:
        return {m.name: json.loads(tar.extractfile(m).read())  # type: ignore[union-attr]
                for m in tar.getmembers() if m.isfile() and m.name.endswith(".json")}


def test_three_hosts_resourceconfig_sharding_and_merged_model(echo_image: str, tmp_path: Path) -> None:
    data, names = shard_files(tmp_path)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "settings.csv").write_text("x\n")
    p = Pipeline("rosetta-multi-host", bucket="rosetta-test")
    p.training("Train", image=IMAGE, inputs={"train": p.upload(data, "shards"), "conf": p.upload(tmp_path / "conf")},
               distribution={"train": "ShardedByS3Key"}, instance_count=3, hyperparameters={"prefix": "m"},
               metrics=["rows"])
    result, reporter = run(p, tmp_path)
    assert result.status == "Succeeded", {n: s.reason for n, s in result.steps.items()}
    files = model_files(result, "Train")
    assert sorted(files) == ["hosts/algo-1.json", "hosts/algo-2.json", "hosts/algo-3.json", "model.json"]
    hosts = ["algo-1", "algo-2", "algo-3"]
    seen = [files[f"hosts/{h}.json"] for h in hosts]
    addresses = set()
    for host, s in zip(hosts, seen, strict=True):
        rc = s["resourceconfig"]
        assert (rc["current_host"], rc["hosts"], rc["network_interface_name"]) == (host, hosts, "eth0")
        assert rc["instance_groups"][0]["hosts"] == hosts and rc["current_group_name"] == "homogeneousCluster"
        assert s["hostname"] == host
        assert sorted(s["addresses"]) == hosts  # every host resolves every other by name
        addresses.add(tuple(sorted(s["addresses"].values())))
        assert s["inputdataconfig"]["train"]["S3DistributionType"] == "ShardedByS3Key"
        assert s["inputdataconfig"]["conf"]["S3DistributionType"] == "FullyReplicated"
        assert s["files"]["conf"] == ["settings.csv"]  # FullyReplicated: every host, every file
    assert len(addresses) == 1 and len(set(next(iter(addresses)))) == 3  # one view, three distinct addresses
    shards = [s["files"]["train"] for s in seen]
    flat = [f for shard in shards for f in shard]
    assert sorted(flat) == sorted(names) and len(flat) == len(set(flat))  # disjoint, union = the input
    assert [len(x) for x in shards] == [3, 2, 2]  # round-robin by key: sizes differ by at most one
    assert shards[0] == sorted(names)[0::3]
    # the model came from algo-1 (only the first host writes model.json); rows of algo-1's shard
    assert files["model.json"]["rows"] == sum(int(f.split("-")[1].split(".")[0]) + 1 for f in shards[0])
    # metrics are read from every host's output (the last value wins)
    assert [m["MetricName"] for m in result.steps["Train"].properties["FinalMetricDataList"]] == ["rows"]
    assert any(line.startswith("[algo-3] ") for line in reporter.lines["Train"])
    assert any("ShardedByS3Key, 7 object(s) round-robin" in line for line in reporter.lines["Train"])
    assert wait_clean() == ([], [])


def test_a_failing_host_fails_the_job_and_stops_the_others(echo_image: str, tmp_path: Path) -> None:
    data, _ = shard_files(tmp_path)
    p = Pipeline("rosetta-multi-host-fail", bucket="rosetta-test")
    p.training("Train", image=IMAGE, inputs={"train": p.upload(data)}, instance_count=3,
               hyperparameters={"fail_host": "algo-2", "sleep": 300})
    t0 = time.monotonic()
    result, reporter = run(p, tmp_path)
    step = result.steps["Train"]
    assert step.status == "Failed"
    assert step.reason == "algo-2: DataError: told to fail on algo-2"
    assert step.exit_code == 1 and "details: echo test image" in step.details
    assert time.monotonic() - t0 < 150  # the hosts sleeping 300 s were stopped
    assert any("algo-2 exited with 1: stopping the other hosts" in line for line in reporter.lines["Train"])
    assert wait_clean() == ([], [])


def test_processing_on_two_instances_with_sharded_input(echo_image: str, tmp_path: Path) -> None:
    data, names = shard_files(tmp_path)
    p = Pipeline("rosetta-multi-processing", bucket="rosetta-test")
    p.processing("Shards", image=IMAGE, code=HERE / "pipelines" / "shards.py", inputs={"data": p.upload(data)},
                 outputs=["listing"], instance_count=2, distribution="ShardedByS3Key")
    result, _ = run(p, tmp_path)
    assert result.status == "Succeeded", {n: s.reason for n, s in result.steps.items()}
    out = local(result, result.steps["Shards"].properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"])
    listings = [json.loads((out / f"algo-{i}.json").read_text()) for i in (1, 2)]  # both hosts' outputs merged
    assert [(x["host"], x["hosts"]) for x in listings] == [("algo-1", ["algo-1", "algo-2"]),
                                                          ("algo-2", ["algo-1", "algo-2"])]
    flat = listings[0]["files"] + listings[1]["files"]
    assert sorted(flat) == sorted(names) and len(set(flat)) == len(flat)
    assert wait_clean() == ([], [])


def test_transform_on_two_instances_spreads_the_files(echo_image: str, tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in "abcd":
        (batch / f"{name}.csv").write_text("".join(f"{name}{i}\n" for i in range(3)))
    train = tmp_path / "train.csv"
    train.write_text("1,2\n")
    p = Pipeline("rosetta-multi-transform", bucket="rosetta-test")
    t = p.training("Train", image=IMAGE, inputs={"train": p.upload(train)}, hyperparameters={"prefix": "t"})
    model = p.model("Model", model_data=t.model_data, trained_by=t)
    p.transform("Transform", model=model, data=p.upload(batch), instance_count=2)
    result, reporter = run(p, tmp_path)
    assert result.status == "Succeeded", {n: s.reason for n, s in result.steps.items()}
    out = local(result, result.steps["Transform"].properties["TransformOutput"]["S3OutputPath"])
    for name in "abcd":
        assert (out / f"{name}.csv.out").read_text() == "".join(f"t:{name}{i}\n" for i in range(3))
    lines = reporter.lines["Transform"]
    for host in ("algo-1", "algo-2"):  # each instance served requests: the files were spread
        assert sum(1 for line in lines if line.startswith(f"[{host}] request records=3")) == 2
    assert any("input files per instance: algo-1: 2, algo-2: 2" in line for line in lines)
    assert wait_clean() == ([], [])


def _checkpoint_pipeline(max_runtime: int, retry: bool = False) -> Pipeline:
    from rosetta_orchestrator.sdk import sdk

    s = sdk()
    p = Pipeline("rosetta-checkpoints", bucket="rosetta-test")
    policies = [s.SageMakerJobStepRetryPolicy(exception_types=[s.SageMakerJobExceptionTypeEnum.INTERNAL_ERROR],
                                              interval_seconds=1, max_attempts=1)] if retry else []
    p.training("Epochs", image=IMAGE, inputs={"train": "s3://rosetta-test/ckpt-data/train.csv"},
               hyperparameters={"epochs": 6, "epoch_seconds": 2}, metrics=["epoch"], checkpoint=True,
               max_runtime=max_runtime, retry=policies)
    return p


def _stage(tmp: Path) -> None:
    target = tmp / "s3" / "rosetta-test" / "ckpt-data"
    target.mkdir(parents=True)
    (target / "train.csv").write_text("1,2\n")


def test_spot_style_kill_then_retry_resumes_from_the_checkpoint(echo_image: str, tmp_path: Path) -> None:
    _stage(tmp_path)
    killed: list[int] = []

    def kill_after_two_epochs() -> None:  # a lost instance: SIGKILL from outside, mid-way
        end = time.monotonic() + 240
        while time.monotonic() < end:
            for f in (tmp_path / "runs").glob("*/Epochs/checkpoints/algo-1/echo-checkpoint.json"):
                try:
                    epoch = json.loads(f.read_text())["epoch"]
                except (OSError, ValueError):
                    continue
                if epoch >= 2:
                    for c in dockerapi.api().containers(filters={"label": f"{LABEL}={RUN_ID}"}):
                        if c["Names"][0].startswith("/rosetta-Epochs-"):
                            Container("", name=c["Names"][0].lstrip("/")).kill("KILL")
                            killed.append(epoch)
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_after_two_epochs, daemon=True)
    killer.start()
    result, reporter = run(_checkpoint_pipeline(600, retry=True), tmp_path)
    killer.join(10)
    step = result.steps["Epochs"]
    assert killed, "the job finished before it could be killed"
    assert step.status == "Succeeded", step.reason
    assert step.attempts == 2
    resumed = model_files(result, "Epochs")["model.json"]["resumed_from"]
    assert resumed is not None and resumed >= killed[0]  # the retry started from the saved epoch, not 0
    assert [(m["MetricName"], m["Value"]) for m in step.properties["FinalMetricDataList"]] == [("epoch", 6.0)]
    assert any("restored 1 checkpoint file(s)" in line for line in reporter.lines["Epochs"])
    ckpt = step.properties["CheckpointConfig"]
    assert ckpt["LocalPath"] == "/opt/ml/checkpoints" and f"/runs/{result.execution_id}/Epochs/" in ckpt["S3Uri"]
    assert json.loads((local(result, ckpt["S3Uri"]) / "echo-checkpoint.json").read_text()) == {"epoch": 6}


def test_stopped_job_resumed_execution_continues_from_the_checkpoint(echo_image: str, tmp_path: Path) -> None:
    _stage(tmp_path)
    first, log1 = run(_checkpoint_pipeline(8), tmp_path)  # StopTrainingJob at MaxRuntimeInSeconds (SIGTERM)
    step = first.steps["Epochs"]
    assert step.status == "Failed" and "MaxRuntimeInSeconds" in step.reason, step.reason
    assert any("saved 1 checkpoint file(s)" in line for line in log1.lines["Epochs"]), log1.lines["Epochs"]
    uri = f"s3://rosetta-test/rosetta-checkpoints/runs/{first.execution_id}/Epochs/checkpoints"
    saved = json.loads((local(first, uri) / "echo-checkpoint.json").read_text())["epoch"]
    assert 1 <= saved < 6  # saved on the stop
    second, reporter = run(_checkpoint_pipeline(600), tmp_path, resume=first.execution_id)
    assert second.status == "Succeeded", second.steps["Epochs"].reason
    assert model_files(second, "Epochs")["model.json"]["resumed_from"] == saved
    assert any("restored 1 checkpoint file(s)" in line for line in reporter.lines["Epochs"])
