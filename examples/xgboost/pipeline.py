"""XGBoost on several hosts, and a tuning job, from one definition that runs here or on SageMaker.

TrainXGB: ``InstanceCount`` hosts (default 3) train one model with XGBoost's collective: channel
``train`` is ``ShardedByS3Key`` (each host a share of the 6 part files), ``validation`` is
``FullyReplicated``; the model comes out of ``algo-1``. ModelXGB → ScoreXGB: a batch transform of
two test files on 2 instances (one file each). TuneXGB: a Random search over ``max_depth`` and
``eta`` (4 single-host jobs, 2 at a time), objective ``validation:accuracy``.

    rosetta pipeline run examples/xgboost/pipeline.py                   # here, with Docker
    rosetta pipeline run examples/xgboost/pipeline.py --param InstanceCount=2
    rosetta pipeline definition examples/xgboost/pipeline.py            # what upsert sends to AWS

The image is ``rosetta-example/xgboost`` (``rosetta setup --examples`` builds it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rosetta_orchestrator import Pipeline

HERE = Path(__file__).resolve().parent
IMAGE = "rosetta-example/xgboost:latest"
METRICS = ["validation:accuracy", "train:error"]


def _inputs(p: Pipeline) -> dict[str, str]:
    return {"train": p.upload(HERE / "data" / "train", "xgboost-train"),
            "validation": p.upload(HERE / "data" / "validation", "xgboost-validation")}


def _train(p: Pipeline, image: Any, hosts: Any, rounds: Any) -> Any:
    return p.training("TrainXGB", image=image, runtime="python", inputs=_inputs(p), instance_count=hosts,
                      distribution={"train": "ShardedByS3Key"}, metrics=METRICS,
                      hyperparameters={"num_round": rounds, "max_depth": 4, "eta": 0.3})


def training_only(instance_count: int) -> Pipeline:
    """Just TrainXGB on ``instance_count`` hosts (the example's test and benchmark compare 1, 2, 3)."""
    p = Pipeline(f"rosetta-xgboost-n{instance_count}", bucket="rosetta-xgboost")
    _train(p, IMAGE, instance_count, 60)
    return p


def pipeline() -> Pipeline:
    p = Pipeline("rosetta-xgboost", bucket="rosetta-xgboost",
                 description="XGBoost's distributed mode on several hosts, and a tuning job")
    image = p.parameter("XGBoostImage", IMAGE)
    hosts = p.parameter("InstanceCount", 3)
    rounds = p.parameter("NumRound", 60)
    inputs = _inputs(p)
    train = _train(p, image, hosts, rounds)
    model = p.model("ModelXGB", model_data=train.model_data, trained_by=train)
    p.transform("ScoreXGB", model=model, data=p.upload(HERE / "data" / "test", "xgboost-test"), instance_count=2)
    p.tuning("TuneXGB", image=image, runtime="python", inputs=inputs, objective="validation:accuracy",
             objective_type="Maximize", metrics=METRICS,
             ranges={"max_depth": (2, 6), "eta": (0.05, 0.5, "Logarithmic")},
             hyperparameters={"num_round": rounds}, max_jobs=4, max_parallel=2, seed=18)
    return p


def report(result: Any, console: Any) -> None:
    """Accuracy of the distributed model on the test files (batch transform output vs labels)."""
    labels = [int(v) for v in (HERE / "data" / "test-labels.csv").read_text().split()]
    out = result.store.location(result.steps["ScoreXGB"].properties["TransformOutput"]["S3OutputPath"])
    predicted = [int(float(v)) for f in ("test-0.csv.out", "test-1.csv.out")
                 for v in (Path(out) / f).read_text().split()]
    accuracy = sum(a == b for a, b in zip(predicted, labels, strict=True)) / len(labels)
    metrics = {m["MetricName"]: m["Value"] for m in result.steps["TrainXGB"].properties["FinalMetricDataList"]}
    tune = result.steps["TuneXGB"].properties["BestTrainingJob"]
    console.print(f"XGBoost on {result.parameters['InstanceCount']} host(s): validation accuracy "
                  f"{metrics.get('validation:accuracy', float('nan')):.3f}, test accuracy {accuracy:.3f} "
                  f"({len(labels)} rows, batch transform on 2 instances); best tuning job "
                  f"{tune['TrainingJobName']}: {tune['FinalHyperParameterTuningJobObjectiveMetric']['Value']:.3f} "
                  f"with {tune['TunedHyperParameters']}")
