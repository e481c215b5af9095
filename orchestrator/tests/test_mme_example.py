"""The multi-model example's training half (issue 17.4): one model per customer and language,
gathered into one ``models/<language>/<customer>.tar.gz`` prefix per language, with the real
iris example images. The full example trains 24 customers; the test runs the same pipeline code
for two customers in each language."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from rosetta_orchestrator.local.run import execute
from rosetta_orchestrator.local.runner import QuietReporter
from rosetta_orchestrator.local.store import LocalStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mme"


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mme_example_pipeline", EXAMPLE / "pipeline.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_at_least_twenty_customers_each_with_their_own_rows() -> None:
    customers = example().CUSTOMERS
    assert len(customers) >= 20
    tables = {c: (EXAMPLE / "data" / "customers" / f"{c}.csv").read_text() for c in customers}
    assert len(set(tables.values())) == len(customers)  # every customer trains on different rows
    assert all(t.startswith("sepal_length,sepal_width,petal_length,petal_width,species\n") for t in tables.values())


@pytest.mark.docker
def test_two_customers_per_language_are_trained_and_gathered(tmp_path: Path) -> None:
    from sagemaker_rosetta import images, local_images

    missing = [t for t in (images.tag(f"iris-{lang}") for lang in ("python", "r", "julia"))
               if not local_images.exists(t)]
    if missing:  # `rosetta setup --examples` builds them; CI runs that first
        images.build_examples([t.split("/")[1].split(":")[0] for t in missing], lambda _msg: None)
    ex = example()
    customers = ["customer-03", "customer-17"]
    p = ex.build(customers, name="rosetta-mme-test")
    definition = p.definition_dict()
    gather = next(s for s in definition["Steps"] if s["Name"] == "Gather")
    referenced = {v["Get"] for a in gather["Arguments"]["AppSpecification"]["ContainerArguments"]
                  if isinstance(a, dict) for v in a["Std:Join"]["Values"] if isinstance(v, dict)}
    assert {f"Steps.{ex.step_name(lang, c)}.ModelArtifacts.S3ModelArtifacts"
            for lang in ex.TRAINERS for c in customers} < referenced
    result = execute(p, store=LocalStore(tmp_path / "s3"), workdir=tmp_path / "runs", reporter=QuietReporter())
    assert result.status == "Succeeded", {n: s.reason for n, s in result.steps.items() if s.reason}
    store = result.store
    assert isinstance(store, LocalStore)
    out = next(o["S3Output"]["S3Uri"] for o in result.steps["Gather"].properties["ProcessingOutputConfig"]["Outputs"])
    index = json.loads(store.read_text(f"{out}/index.json"))
    assert sorted(index) == ["julia", "python", "r"]
    for lang in ex.TRAINERS:
        assert sorted(index[lang]) == customers
        assert sorted(f.name for f in store.path(f"{out}/{lang}").iterdir()) == [f"{c}.tar.gz" for c in customers]
        for c in customers:
            trained = result.steps[ex.step_name(lang, c)].properties["ModelArtifacts"]["S3ModelArtifacts"]
            gathered = store.path(f"{out}/{lang}/{c}.tar.gz").read_bytes()
            # the archive under the customer's key is exactly that customer's training job's model
            assert index[lang][c] == {"model": trained, "sha256": hashlib.sha256(gathered).hexdigest()}
            assert gathered == store.path(trained).read_bytes()
