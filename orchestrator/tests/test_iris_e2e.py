"""The README's main job end to end, offline, with the real example images (CI builds them first;
a missing image fails this test, it never skips)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from orch_helpers import ROOT, rosetta

pytestmark = pytest.mark.docker
IRIS = ROOT / "examples" / "iris" / "pipeline.py"


def test_iris_pipeline_runs_locally(tmp_path: Path) -> None:
    res = rosetta("run", str(IRIS), "--local", "--store", str(tmp_path / "s3"), "--workdir",
                  str(tmp_path / "runs"), timeout=1200)
    assert res.returncode == 0, res.stderr[-6000:]
    saved = json.loads(next((tmp_path / "runs").glob("*/result.json")).read_text())
    assert saved["status"] == "Succeeded"
    assert {n: s["status"] for n, s in saved["steps"].items()} == {**dict.fromkeys(
        ["Split", "TrainPython", "ModelPython", "TransformPython", "TuneR", "ModelR", "TransformR",
         "TrainJulia", "ModelJulia", "TransformJulia", "Evaluate", "AccuracyGate", "RegisterBest"], "Succeeded"),
        "AccuracyTooLow": "NotRun"}
    evaluate = saved["steps"]["Evaluate"]["properties"]["ProcessingOutputConfig"]["Outputs"][0]
    bucket_key = evaluate["S3Output"]["S3Uri"].removeprefix("s3://")
    scores = json.loads((tmp_path / "s3" / bucket_key / "evaluation.json").read_text())
    assert set(scores) == {"python", "r", "julia", "best"}
    for runtime, s in scores.items():
        if runtime == "best":
            continue
        assert s["n"] == 30, runtime
        assert s["accuracy"] >= 0.8, (runtime, s)  # iris is easy: every language should get this
    # every transform produced one prediction per hold-out row
    for rt in ("Python", "R", "Julia"):
        out = saved["steps"][f"Transform{rt}"]["properties"]["TransformOutput"]["S3OutputPath"]
        lines = (tmp_path / "s3" / out.removeprefix("s3://") / "test_features.csv.out").read_text().splitlines()
        assert len(lines) == 30
    err = " ".join(res.stderr.split())
    assert "iris: one model per language (evaluated in R)" in err
    assert "[TrainJulia]" in err and "[Evaluate]" in err  # logs streamed with step prefixes
    # the gate: the best model registered as version 1, shown with the branch taken
    best = scores["best"]
    assert best["accuracy"] == max(scores[r]["accuracy"] for r in ("python", "r", "julia"))
    registered = saved["steps"]["RegisterBest"]["properties"]
    assert (registered["ModelPackageGroupName"], registered["ModelPackageVersion"]) == ("rosetta-iris", 1)
    assert registered["InferenceSpecification"]["Containers"][0]["Image"] == best["image"]
    assert registered["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == best["model_data"]
    assert "ran the if branch (RegisterBest)" in err and "registered rosetta-iris version 1" in err
    # every trainer's declared metric reached FinalMetricDataList through its MetricDefinition
    for rt, name in (("Python", "train_accuracy"), ("Julia", "train_accuracy")):
        metrics = saved["steps"][f"Train{rt}"]["properties"]["FinalMetricDataList"]
        assert [m["MetricName"] for m in metrics] == [name], rt
    # R was tuned: 3 jobs with ntree in [25, RNTree], the lowest out-of-bag error is the R model
    tune = saved["steps"]["TuneR"]["properties"]
    jobs = tune["RosettaTrainingJobs"]
    assert len(jobs) == 3 and all(25 <= int(j["TunedHyperParameters"]["ntree"]) <= 200 for j in jobs)
    errors = {j["TrainingJobName"]: j["FinalMetricDataList"][0]["Value"] for j in jobs}
    assert tune["BestTrainingJob"]["TrainingJobName"] == min(errors, key=lambda k: errors[k])
    model_r = saved["steps"]["ModelR"]["properties"]["PrimaryContainer"]["ModelDataUrl"]
    assert model_r.endswith(f"/tuning/TuneR/{tune['BestTrainingJob']['TrainingJobName']}/output/model.tar.gz")
    assert "R tuned: {'ntree':" in err

    # --param forces the other branch; the cached container steps make this run cheap
    res = rosetta("run", str(IRIS), "--param", "MinAccuracy=1.01", "--store", str(tmp_path / "s3"), "--workdir",
                  str(tmp_path / "runs"), timeout=600)
    assert res.returncode == 1, res.stderr[-6000:]
    again = max((json.loads(f.read_text()) for f in (tmp_path / "runs").glob("*/result.json")),
                key=lambda r: str(r["execution_id"]))
    assert again["execution_id"] != saved["execution_id"]
    assert again["steps"]["RegisterBest"]["status"] == "NotRun"
    assert again["steps"]["AccuracyTooLow"]["status"] == "Failed"
    assert again["failure_reason"].startswith(f"best accuracy {best['accuracy']:g} ({best['runtime']}) is below "
                                              "MinAccuracy 1.01")
    cached = [n for n, s in again["steps"].items() if s["cached_from"] == saved["execution_id"]]
    assert sorted(cached) == sorted(["Split", "TrainPython", "TransformPython", "TuneR", "TransformR", "TrainJulia",
                                     "TransformJulia", "Evaluate"])
    assert "gate: best" in res.stderr and "< MinAccuracy 1.01" in res.stderr
