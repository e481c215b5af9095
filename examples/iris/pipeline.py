"""The README's main job: one iris model per language, trained in parallel, compared in R, gated.

split (Python) → train Python | tune R | train Julia → create 3 models → batch-transform the hold-out
with each → evaluate all three (R) → AccuracyGate: the best accuracy ≥ MinAccuracy? → register the
best model (model package group ``rosetta-iris``) : else fail the execution with the accuracy in the
message. R's forest is a tuning job: 3 jobs (2 at a time) draw ``ntree`` between 25 and ``RNTree``
and the one with the lowest out-of-bag error (``train:oob_error``) is the R model.

    rosetta pipeline run examples/iris/pipeline.py --param MinAccuracy=1.01   # force the Fail branch

    rosetta pipeline definition examples/iris/pipeline.py     # the SageMaker definition JSON
    rosetta pipeline run examples/iris/pipeline.py --local    # run it here with Docker
    rosetta pipeline graph examples/iris/pipeline.py          # Mermaid DAG

Convention: a pipeline file defines ``pipeline() -> rosetta_orchestrator.Pipeline`` (or a
module-level ``pipeline`` object); the CLI loads it from there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rosetta_orchestrator import Pipeline
from rosetta_orchestrator import conditions as c

HERE = Path(__file__).resolve().parent

#: image per training runtime (each example's Dockerfile, FROM the runtime's base image); every
#: image is also a pipeline parameter (PythonImage, RImage, JuliaImage), e.g. for ECR URIs on AWS
TRAINERS = {
    "python": "rosetta-example/iris-python:latest",
    "r": "rosetta-example/iris-r:latest",
    "julia": "rosetta-example/iris-julia:latest",
}
#: the metrics each model's training code logs with log_metric (declared as MetricDefinitions)
METRICS = {"python": ["train_accuracy"], "r": ["train:oob_error"], "julia": ["train_accuracy"]}
#: container steps reuse an earlier run with the same inputs for 30 days (CacheConfig)
CACHE = "P30D"


def pipeline() -> Pipeline:
    p = Pipeline("rosetta-iris", bucket="rosetta-iris",
                 description="iris in Python, R and Julia, evaluated in R")
    min_accuracy = p.parameter("MinAccuracy", 0.9)
    test_fraction = p.parameter("TestFraction", 0.2)
    seed = p.parameter("SplitSeed", 7)
    target = p.parameter("Target", "species")
    hyperparameters = {
        "python": {"n_estimators": p.parameter("PythonNEstimators", 100),
                   "min_samples_leaf": p.parameter("PythonMinSamplesLeaf", 1), "target": target},
        "r": {"ntree": p.parameter("RNTree", 200), "target": target},  # RNTree: the largest ntree tuned
        "julia": {"epochs": p.parameter("JuliaEpochs", 500),
                  "lr": p.parameter("JuliaLearningRate", 0.5), "target": target},
    }

    # the labelled rows (train.csv + test.csv); the split step makes its own stratified hold-out
    for csv in ("train.csv", "test.csv"):
        p.upload(HERE / "data" / csv, "iris-labelled")
    labelled = p.s3("assets", "iris-labelled")

    split = p.processing(
        "Split", image="rosetta/python:latest", code=HERE / "split" / "split.py",
        inputs={"data": labelled},
        outputs=["train", "test", "features"],
        arguments=["--test-fraction", test_fraction, "--seed", seed, "--target", target], cache=CACHE)

    predictions = {}
    named: list[object] = []
    for runtime, default_image in TRAINERS.items():
        name = runtime.capitalize()
        image = p.parameter(f"{'R' if runtime == 'r' else name}Image", default_image)
        if runtime == "r":  # tuned: ntree from 25 to RNTree, the lowest out-of-bag error wins
            hps = dict(hyperparameters[runtime])
            train: Any = p.tuning(
                f"Tune{name}", image=image, runtime=runtime, inputs={"train": split.output("train")},
                ranges={"ntree": (25, hps.pop("ntree"))}, hyperparameters=hps, objective=METRICS[runtime][0],
                objective_type="Minimize", metrics=METRICS[runtime], strategy="Random", max_jobs=3,
                max_parallel=2, seed=7, cache=CACHE)
            model_data = train.best_model_data
        else:
            train = p.training(f"Train{name}", image=image, runtime=runtime,
                               inputs={"train": split.output("train")},
                               hyperparameters=hyperparameters[runtime], metrics=METRICS[runtime], cache=CACHE)
            model_data = train.model_data
        model = p.model(f"Model{name}", model_data=model_data, trained_by=train)
        predictions[runtime] = p.transform(
            f"Transform{name}", model=model, data=split.output("features"),
            content_type="text/csv", split_type="Line", strategy="MultiRecord", assemble_with="Line",
            cache=CACHE).output
        named += ["--model", p.join(f"{runtime}=", model_data), "--image", p.join(f"{runtime}=", image)]

    evaluate = p.processing(
        "Evaluate", image="rosetta/r:latest", code=HERE / "evaluate" / "evaluate.R",
        inputs={"test": split.output("test"), **predictions}, outputs=["evaluation"],
        arguments=["--target", target, *named], property_files={"evaluation": ("evaluation", "evaluation.json")},
        cache=CACHE)

    # the gate: register the best model when it is good enough, else stop the execution saying why
    best = evaluate.json("evaluation", "best.accuracy")
    register = p.register(
        "RegisterBest", group="rosetta-iris", image=evaluate.json("evaluation", "best.image"),
        model_data=evaluate.json("evaluation", "best.model_data"),
        metrics_uri=p.join(evaluate.output("evaluation"), "/evaluation.json"))
    too_low = p.fail("AccuracyTooLow", p.join("best accuracy ", best, " (", evaluate.json("evaluation", "best.runtime"),
                                              ") is below MinAccuracy ", min_accuracy))
    p.condition("AccuracyGate", conditions=[c.ge(best, min_accuracy)], if_steps=[register], else_steps=[too_low])
    return p


def report(result: Any, console: Any) -> None:
    """After a local run: accuracy per runtime (from Evaluate's evaluation.json), step timings and
    what the gate decided."""
    from rosetta_orchestrator.ui import is_plain, table

    evaluate = result.steps["Evaluate"].properties
    uri = next(o["S3Output"]["S3Uri"] for o in evaluate["ProcessingOutputConfig"]["Outputs"]
               if o["OutputName"] == "evaluation")
    scores = json.loads(result.store.read_text(f"{uri}/evaluation.json"))
    rows = []
    for runtime in TRAINERS:
        name = runtime.capitalize()
        sc = scores.get(runtime, {})
        trainer = result.steps.get(f"Train{name}") or result.steps[f"Tune{name}"]
        rows.append((runtime, f"{sc.get('accuracy', float('nan')):.3f}", f"{sc.get('correct', '?')}/{sc.get('n', '?')}",
                     f"{trainer.seconds:.1f}", f"{result.steps[f'Transform{name}'].seconds:.1f}", trainer.image))
    table(console, "iris: one model per language (evaluated in R)",
          ("runtime", "accuracy", "correct", "train s", "transform s", "image"), rows, plain=is_plain(console),
          right=("accuracy", "correct", "train s", "transform s"))
    tuned = result.steps["TuneR"].properties.get("BestTrainingJob") or {}
    if tuned:
        objective = tuned["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        console.print(f"R tuned: {tuned['TunedHyperParameters']} had the lowest train:oob_error {objective:.4f} "
                      f"({tuned['TrainingJobName']})")
    best = scores.get("best", {})
    gate = f"gate: best {best.get('runtime')} accuracy {best.get('accuracy')}"
    registered = result.steps["RegisterBest"].properties
    if result.steps["RegisterBest"].status == "Succeeded":
        console.print(f"{gate} ≥ MinAccuracy {result.parameters['MinAccuracy']} → registered rosetta-iris version "
                      f"{registered['ModelPackageVersion']} ({registered['ModelApprovalStatus']}); "
                      "`rosetta models list rosetta-iris` shows every version")
    else:
        console.print(f"{gate} < MinAccuracy {result.parameters['MinAccuracy']} → "
                      f"{result.steps['AccuracyTooLow'].reason or 'not registered'}")
