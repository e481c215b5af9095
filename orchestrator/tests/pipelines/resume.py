"""Test pipeline for --resume: Prepare runs on its own; Train reads s3://rosetta-test/resume/train.csv
(staged with --upload), which fails the job while it holds a FAIL row."""

from __future__ import annotations

from pathlib import Path

from rosetta_orchestrator import Pipeline

HERE = Path(__file__).resolve().parent
IMAGE = "rosetta-test/echo:latest"


def pipeline() -> Pipeline:
    p = Pipeline("rosetta-resume-test", bucket="rosetta-test")
    prep = p.processing("Prepare", image=IMAGE, code="prepare.py", outputs=["train", "batch"])
    train = p.training("Train", image=IMAGE, inputs={"train": "s3://rosetta-test/resume/train.csv"},
                       metrics=["rows"], hyperparameters={"prefix": "re"})
    model = p.model("Model", model_data=train.model_data, trained_by=train)
    p.transform("Transform", model=model, data=prep.output("batch"))
    return p
