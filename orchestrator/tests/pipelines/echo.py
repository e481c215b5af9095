"""Test pipeline on the tiny echo image: prepare (processing) → train → model → transform → check."""

from __future__ import annotations

from pathlib import Path

from rosetta_orchestrator import Pipeline

HERE = Path(__file__).resolve().parent
IMAGE = "rosetta-test/echo:latest"


def pipeline() -> Pipeline:
    p = Pipeline("rosetta-echo-test", bucket="rosetta-test")
    prefix = p.parameter("Prefix", "hi")
    repeat = p.parameter("Repeat", "1")  # a string, so a test can pass a bad value through
    lines = p.parameter("Lines", 5)
    prep = p.processing("Prepare", image=IMAGE, code=HERE / "prepare.py", outputs=["train", "batch"],
                        arguments=["--lines", lines])
    train = p.training("Train", image=IMAGE, inputs={"train": prep.output("train")},
                       hyperparameters={"prefix": prefix, "repeat": repeat}, metrics=["rows"])
    model = p.model("Model", model_data=train.model_data, trained_by=train)
    tr = p.transform("Transform", model=model, data=prep.output("batch"), split_type="Line",
                     strategy="MultiRecord", max_payload_mb=1, assemble_with="Line")
    p.processing("Check", image=IMAGE, code=HERE / "check.py", inputs={"predictions": tr.output},
                 outputs=["report"])
    return p
