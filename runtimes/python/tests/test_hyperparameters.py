"""T-01/T-02: both encodings give the same typed values; bad values fail with key, value and type."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from rosetta_runtime.errors import HyperparameterError
from rosetta_runtime.hyperparameters import decode_value, parse


@dataclass
class HP:
    epochs: int = 1
    rate: float = 0.1
    flag: bool = False
    name: str = "x"
    layers: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    seed: int | None = None


VALUES = {"epochs": 3, "rate": 0.5, "flag": True, "name": "abc", "layers": [1, 2], "tags": ["a", "b"], "seed": None}


def test_str_and_json_encodings_agree() -> None:
    as_str = {k: str(v) for k, v in VALUES.items()}  # SDK Estimator: str(v)
    as_json = {k: json.dumps(v) for k, v in VALUES.items()}  # Framework estimators: json.dumps(v)
    assert parse(as_str, HP) == parse(as_json, HP) == HP(**VALUES)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw, expected", [
    ("3", 3), ("3.5", 3.5), ("True", "True"), ("true", True), ('"abc"', "abc"), ("abc", "abc"),
    ("None", None), ("[1, 2]", [1, 2]), ("['a', 'b']", ["a", "b"]), ("{'k': 1}", {"k": 1}),
    ("__import__('os').system('id')", "__import__('os').system('id')"),  # never evaluated
])
def test_decode_value(raw: str, expected: object) -> None:
    assert decode_value(raw) == expected


@pytest.mark.parametrize("raw, message", [
    ({"epochs": "abc"}, "epochs: expected an integer, got 'abc'"),
    ({"epochs": "2.5"}, "epochs: expected an integer"),
    ({"rate": "fast"}, "rate: expected a number"),
    ({"flag": "maybe"}, "flag: expected a boolean"),
    ({"layers": "7"}, "layers: expected a list"),
    ({"layers": "['a']"}, "layers[0]: expected an integer"),
    ({"epoch": "3"}, "unknown hyperparameter 'epoch'; declared:"),
])
def test_bad_values_name_key_and_type(raw: dict[str, str], message: str) -> None:
    with pytest.raises(HyperparameterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(raw, HP)


def test_sagemaker_keys_ignored_and_untyped_mode() -> None:
    assert parse({"sagemaker_program": "x.py", "sagemaker_region": '"us-east-1"'}, HP) == HP()
    raw = {"sagemaker_program": "x.py", "a": "1", "b": '"s"', "c": "[1, 2]"}
    assert parse(raw) == {"a": 1, "b": "s", "c": [1, 2]}


def test_required_without_default() -> None:
    @dataclass
    class Needs:
        target: str

    with pytest.raises(HyperparameterError, match="target: required hyperparameter is missing"):
        parse({}, Needs)
    assert parse({"target": '"species"'}, Needs) == Needs("species")
