"""The README's main job: one iris model per language, trained in parallel, compared in R.

split (Python) → train Python | R | Julia → create 3 models → batch-transform the hold-out with each
→ evaluate all three (R) → comparison table.

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

HERE = Path(__file__).resolve().parent

#: image per training runtime (each example's Dockerfile, FROM the runtime's base image); every
#: image is also a pipeline parameter (PythonImage, RImage, JuliaImage), e.g. for ECR URIs on AWS
TRAINERS = {
    "python": "rosetta-example/iris-python:latest",
    "r": "rosetta-example/iris-r:latest",
    "julia": "rosetta-example/iris-julia:latest",
}


def pipeline() -> Pipeline:
    p = Pipeline("rosetta-iris", bucket="rosetta-iris",
                 description="iris in Python, R and Julia, evaluated in R")
    test_fraction = p.parameter("TestFraction", 0.2)
    seed = p.parameter("SplitSeed", 7)
    target = p.parameter("Target", "species")
    hyperparameters = {
        "python": {"n_estimators": p.parameter("PythonNEstimators", 100),
                   "min_samples_leaf": p.parameter("PythonMinSamplesLeaf", 1), "target": target},
        "r": {"ntree": p.parameter("RNTree", 200), "target": target},
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
        arguments=["--test-fraction", test_fraction, "--seed", seed, "--target", target])

    predictions = {}
    for runtime, default_image in TRAINERS.items():
        name = runtime.capitalize()
        image = p.parameter(f"{'R' if runtime == 'r' else name}Image", default_image)
        train = p.training(f"Train{name}", image=image, runtime=runtime,
                           inputs={"train": split.output("train")},
                           hyperparameters=hyperparameters[runtime])
        model = p.model(f"Model{name}", model_data=train.model_data, trained_by=train)
        predictions[runtime] = p.transform(
            f"Transform{name}", model=model, data=split.output("features"),
            content_type="text/csv", split_type="Line", strategy="MultiRecord", assemble_with="Line").output

    p.processing(
        "Evaluate", image="rosetta/r:latest", code=HERE / "evaluate" / "evaluate.R",
        inputs={"test": split.output("test"), **predictions}, outputs=["evaluation"],
        arguments=["--target", target])
    return p


def report(result: Any, console: Any) -> None:
    """After a local run: accuracy per runtime (from Evaluate's evaluation.json) and step timings."""
    from rich.table import Table

    evaluate = result.steps["Evaluate"].properties
    uri = next(o["S3Output"]["S3Uri"] for o in evaluate["ProcessingOutputConfig"]["Outputs"]
               if o["OutputName"] == "evaluation")
    scores = json.loads(result.store.read_text(f"{uri}/evaluation.json"))
    table = Table(title="iris: one model per language (evaluated in R)")
    for col in ("runtime", "accuracy", "correct", "train s", "transform s", "image"):
        table.add_column(col, justify="left" if col in ("runtime", "image") else "right", no_wrap=True,
                         overflow="ellipsis")
    for runtime in TRAINERS:
        name = runtime.capitalize()
        s = scores.get(runtime, {})
        table.add_row(runtime, f"{s.get('accuracy', float('nan')):.3f}",
                      f"{s.get('correct', '?')}/{s.get('n', '?')}",
                      f"{result.steps[f'Train{name}'].seconds:.1f}",
                      f"{result.steps[f'Transform{name}'].seconds:.1f}", result.steps[f"Train{name}"].image)
    console.print(table)
