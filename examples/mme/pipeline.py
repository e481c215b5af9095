"""One iris model per customer, in Python, R and Julia, gathered for one multi-model endpoint per language.

Every customer (``data/customers/customer-NN.csv``, 24 of them) gets its own training job in each
language, on that customer's rows only: ``Train<Language><NN>`` (72 training jobs by default). The
``Gather`` step then copies each model to ``models/<language>/customer-NN.tar.gz``: the layout a
multi-model endpoint serves with ``TargetModel=customer-NN.tar.gz`` (see README.md).

    rosetta pipeline run examples/mme/pipeline.py                # here, with Docker
    rosetta pipeline definition examples/mme/pipeline.py         # what upsert sends to AWS

``build(customers=…, languages=…)`` makes a smaller pipeline of the same shape (its test trains two
customers per language). Images: ``rosetta-example/iris-{python,r,julia}`` (``rosetta setup --examples``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rosetta_orchestrator import Pipeline
from rosetta_orchestrator.sdk import sdk

HERE = Path(__file__).resolve().parent
CUSTOMERS = sorted(f.stem for f in (HERE / "data" / "customers").glob("customer-*.csv"))
TRAINERS = {
    "python": "rosetta-example/iris-python:latest",
    "r": "rosetta-example/iris-r:latest",
    "julia": "rosetta-example/iris-julia:latest",
}


def hyperparameters(language: str, customer: str) -> dict[str, Any]:
    """Small, fast models: the point is how many, not how good each one is."""
    seed = int(customer.rsplit("-", 1)[1])
    return {"python": {"n_estimators": 25, "min_samples_leaf": 1, "target": "species"},
            "r": {"ntree": 50, "seed": seed, "target": "species"},
            "julia": {"epochs": 300, "lr": 0.5, "target": "species"}}[language]


def step_name(language: str, customer: str) -> str:
    return f"Train{language.capitalize()}{customer.rsplit('-', 1)[1]}"


def build(customers: Sequence[str] = CUSTOMERS, languages: Sequence[str] = tuple(TRAINERS),
          name: str = "rosetta-mme") -> Pipeline:
    """The pipeline for these customers and languages (each customer's table must exist)."""
    p = Pipeline(name, bucket="rosetta-mme", description="one iris model per customer and language, "
                 "gathered per language for a multi-model endpoint")
    images = {lang: p.parameter(f"{'R' if lang == 'r' else lang.capitalize()}Image", TRAINERS[lang])
              for lang in languages}
    models: list[Any] = []
    for customer in customers:
        data = p.upload(HERE / "data" / "customers" / f"{customer}.csv", f"mme-{customer}")
        for lang in languages:
            train = p.training(step_name(lang, customer), image=images[lang], runtime=lang, inputs={"train": data},
                               hyperparameters=hyperparameters(lang, customer))
            models += ["--model", p.join(f"{lang}/{customer}=", train.model_data)]
    # the models are read from this execution's run prefix; each --model argument is a property
    # of its training step, so Gather runs after all of them
    runs = p.s3("runs", sdk().ExecutionVariables.PIPELINE_EXECUTION_ID)
    p.processing("Gather", image="rosetta/python:latest", code=HERE / "gather" / "gather.py",
                 inputs={"runs": runs}, outputs=["models"], arguments=["--prefix", runs, *models])
    return p


def pipeline() -> Pipeline:
    return build()


def report(result: Any, console: Any) -> None:
    """Where each language's models are, and the command that serves them from one endpoint."""
    out = next(o["S3Output"]["S3Uri"] for o in result.steps["Gather"].properties["ProcessingOutputConfig"]["Outputs"]
               if o["OutputName"] == "models")
    index = json.loads(result.store.read_text(f"{out}/index.json"))
    for lang, models in sorted(index.items()):
        console.print(f"{lang}: {len(models)} customer models in {out}/{lang}/")
        console.print(f"  rosetta endpoint up iris-mme-{lang} {TRAINERS[lang]} --multi-model {out}/{lang}/")
