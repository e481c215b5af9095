"""The XGBoost example (issue 18.3): XGBoost's own collective across 2 hosts of one training job,
against a single-host fit on the same data, with the real example image."""

from __future__ import annotations

import importlib.util
import json
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from rosetta_orchestrator.local.run import execute
from rosetta_orchestrator.local.runner import QuietReporter, RunResult
from rosetta_orchestrator.local.store import LocalStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "xgboost"
#: the accuracy a 2-host fit may differ by from the 1-host fit on the same rows (XGBoost merges the
#: hosts' quantile sketches, so the histogram bins, and so the trees, can differ slightly)
TOLERANCE = 0.03


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("xgboost_example_pipeline", EXAMPLE / "pipeline.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def xgboost_image() -> str:
    from sagemaker_rosetta import images, local_images

    tag = images.tag("xgboost")
    if not local_images.exists(tag):  # `rosetta setup --examples` builds it; CI runs that first
        images.build_examples(["xgboost"], lambda _msg: None)
    return tag


def test_definition_has_the_cluster_the_shards_and_the_tuning_step() -> None:
    definition = example().pipeline().definition_dict()
    steps = {s["Name"]: s for s in definition["Steps"]}
    train = steps["TrainXGB"]["Arguments"]
    assert train["ResourceConfig"]["InstanceCount"] == {"Get": "Parameters.InstanceCount"}
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
                for c in train["InputDataConfig"]}
    assert channels == {"train": "ShardedByS3Key", "validation": "FullyReplicated"}
    assert steps["TuneXGB"]["Type"] == "Tuning"
    assert steps["ScoreXGB"]["Arguments"]["TransformResources"]["InstanceCount"] == 2
    assert {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}["InstanceCount"] == 3


def run(n: int, tmp: Path) -> tuple[RunResult, QuietReporter]:
    reporter = QuietReporter()
    result = execute(example().training_only(n), store=LocalStore(tmp / "s3"), workdir=tmp / "runs",
                     reporter=reporter)
    assert result.status == "Succeeded", result.steps["TrainXGB"].reason
    return result, reporter


def metrics(result: RunResult) -> dict[str, Any]:
    return {m["MetricName"]: m["Value"] for m in result.steps["TrainXGB"].properties["FinalMetricDataList"]}


@pytest.mark.docker
def test_two_hosts_train_one_model_as_accurate_as_one_host(xgboost_image: str, tmp_path: Path) -> None:
    single, _ = run(1, tmp_path / "n1")
    double, reporter = run(2, tmp_path / "n2")
    one, two = metrics(single)["validation:accuracy"], metrics(double)["validation:accuracy"]
    assert one > 0.85 and abs(one - two) <= TOLERANCE, (one, two)
    lines = reporter.lines["TrainXGB"]
    # XGBoost's collective ranked both hosts (algo-1 runs the tracker), each on its own shard
    assert any("algo-1: rank 0 of 2" in line for line in lines) and any("algo-2: rank 1 of 2" in line for line in lines)
    assert any('algo-2 of [\'algo-1\', \'algo-2\'] (SM_HOSTS=["algo-1","algo-2"]): 3000 rows' in line for line in lines)
    assert sum(1 for line in lines if line.startswith("[algo-1] #metric")) == 2  # only algo-1 logs metrics
    store = double.store
    assert isinstance(store, LocalStore)
    tar_path = store.path(double.steps["TrainXGB"].properties["ModelArtifacts"]["S3ModelArtifacts"])
    with tarfile.open(tar_path) as tar:  # the model came out of algo-1 (only it saves)
        assert sorted(tar.getnames()) == ["rosetta.json", "xgboost-model.json"]
        assert json.loads(tar.extractfile("rosetta.json").read())["n_features"] == 8  # type: ignore[union-attr]
