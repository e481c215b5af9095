"""One model in three languages: an inference pipeline (serial model) trained, deployed and
batch-transformed in one local pipeline.

train R standardiser | train Python model | train Julia post-processor (in parallel, on the iris
training split) → one Model of three Containers (Serial: R → Python → Julia) → batch-transform the
hold-out features through the chain (label + confidence as JSON Lines, one per row).

    rosetta pipeline run examples/chain/pipeline.py --local
    rosetta endpoint up chain --step Chain          # the same model as a local endpoint (README.md)
"""

from __future__ import annotations

from pathlib import Path

from rosetta_orchestrator import Pipeline

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "iris" / "data"

#: the chain's steps in order: ContainerHostname → (runtime, image)
STEPS = {
    "standardise": ("r", "rosetta-example/chain-r:latest"),
    "model": ("python", "rosetta-example/chain-python:latest"),
    "label": ("julia", "rosetta-example/chain-julia:latest"),
}


def pipeline() -> Pipeline:
    p = Pipeline("rosetta-chain", bucket="rosetta-chain",
                 description="R standardiser → Python model → Julia post-processor, one serial model")
    target = p.parameter("Target", "species")
    train = p.upload(DATA / "train.csv", "train")
    trained = {host: p.training(f"Train{host.capitalize()}", image=image, runtime=runtime,
                                inputs={"train": train}, hyperparameters={"target": target}, cache="P30D",
                                metrics=["train_accuracy"] if runtime == "python" else [])
               for host, (runtime, image) in STEPS.items()}
    chain = p.model("Chain", containers=[{"trained_by": t, "hostname": host} for host, t in trained.items()])
    p.transform("TransformHoldout", model=chain, data=p.upload(DATA / "test_features.csv", "holdout"),
                content_type="text/csv", split_type="Line", strategy="MultiRecord", assemble_with="Line",
                accept="application/jsonlines")
    return p
