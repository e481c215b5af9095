"""The golden-case judge: records as parsed values, messages exact, the cases well formed; the trained-setup cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rosetta_conformance import golden, golden_cache
from rosetta_conformance.golden import Case
from sagemaker_rosetta.containers import Response


def _case(expect: dict[str, object]) -> Case:
    return Case("c", "B-08", "plain", {}, {"method": "POST", "path": "/invocations"}, expect)


def _r(status: int, body: bytes, ctype: str) -> Response:
    return Response(status, {"content-type": ctype}, body, 0.01)


def test_records_compare_as_numbers_across_number_formats() -> None:
    case = _case({"status": 200, "content_type": "text/csv", "records": [[6], [15.5]]})
    assert golden.judge(case, _r(200, b"6.0\n15.5\n", "text/csv; charset=utf-8")) == []
    assert golden.judge(case, _r(200, b"6\n15.500000000001\n", "text/csv")) == []  # within 1e-9 relative
    assert golden.judge(case, _r(200, b"6\n15.6\n", "text/csv"))  # a different number
    assert golden.judge(case, _r(200, b"6\n", "text/csv"))  # a record lost
    assert golden.judge(case, _r(200, b'{"predictions": [6, 15.5]}', "application/json")) == [
        "content type 'application/json', want 'text/csv'"]
    jl = _case({"status": 200, "records": [[1, 2], ["a"]]})
    assert golden.judge(jl, _r(200, b'[1.0, 2]\n"a"\n', "application/jsonlines")) == []
    assert golden.judge(jl, _r(200, b'[1.0, 2]\n"b"\n', "application/jsonlines"))  # strings exactly


def test_messages_are_exact_or_match_their_pattern() -> None:
    case = _case({"status": 400, "message": "row 2: 'x' is not a number"})
    assert golden.judge(case, _r(400, b"row 2: 'x' is not a number\n", "text/plain; charset=utf-8")) == []
    assert golden.judge(case, _r(400, b"row 2: 'x' is not a number", "text/plain; charset=utf-8"))  # no newline
    assert golden.judge(case, _r(400, b"row 2: 'x' is not a number\n", "text/html"))
    assert golden.judge(case, _r(500, b"row 2: 'x' is not a number\n", "text/plain; charset=utf-8"))
    pat = _case({"status": 413, "message_pattern": r"payload too large: \d+ bytes > limit \d+ bytes"})
    assert golden.judge(pat, _r(413, b"payload too large: 7 bytes > limit 6 bytes\n", "text/plain")) == []
    assert golden.judge(pat, _r(413, b"too large\n", "text/plain"))


def test_headers_and_exact_bodies() -> None:
    case = _case({"status": 200, "body": "6|15.5", "headers": {"Content-Type": "application/x-pipe"}})
    assert golden.judge(case, _r(200, b"6|15.5", "application/x-pipe")) == []
    assert golden.judge(case, _r(200, b"6.0|15.5", "application/x-pipe"))


def test_normalized_bodies_agree_across_runtimes() -> None:
    a = golden.normalized(_r(200, b"3.0\n", "text/csv"))
    b = golden.normalized(_r(200, b"3\n", "text/csv"))
    assert golden.agree(a, b)
    assert not golden.agree(a, golden.normalized(_r(200, b"4\n", "text/csv")))
    m1 = golden.normalized(_r(400, b"cannot decode payload: input refused\n", "text/plain"))
    m2 = golden.normalized(_r(400, b"cannot decode payload: ValueError: input refused\n", "text/plain"))
    assert not golden.agree(m1, m2)
    # an empty body is empty whatever its content type; JSON documents compare as parsed values
    assert golden.agree(golden.normalized(_r(200, b"", "text/plain")), golden.normalized(_r(200, b"", "")))
    spaced = golden.normalized(_r(200, b'{"MaxPayloadInMB": 2, "BatchStrategy": "MULTI_RECORD"}', "application/json"))
    compact = golden.normalized(_r(200, b'{"BatchStrategy":"MULTI_RECORD","MaxPayloadInMB":2}', "application/json"))
    assert golden.agree(spaced, compact)
    assert not golden.agree(spaced, golden.normalized(_r(200, b'{"BatchStrategy":"MULTI_RECORD","MaxPayloadInMB":6}',
                                                        "application/json")))


def test_expected_differences_need_reasons(tmp_path: Path) -> None:
    (tmp_path / "expected-differences").mkdir()
    (tmp_path / "expected-differences" / "r.json").write_text(json.dumps({"csv-two-rows": ""}))
    with pytest.raises(ValueError, match="reason"):
        golden.expected_differences("r", tmp_path)
    (tmp_path / "expected-differences" / "r.json").write_text(json.dumps({"csv-two-rows": "R writes 6 as 6.0"}))
    assert golden.expected_differences("r", tmp_path) == {"csv-two-rows": "R writes 6 as 6.0"}


def test_record_counts_json_keys_and_repeated_bodies() -> None:
    case = Case("big", "S-12", "plain", {}, {"method": "POST", "body": "1,2,3\n", "body_repeat": 3},
                {"status": 200, "record_count": 3})
    assert case.body == b"1,2,3\n" * 3
    assert golden.judge(case, _r(200, b"6\n6\n6\n", "text/csv")) == []
    assert golden.judge(case, _r(200, b"6\n6\n", "text/csv")) == ["2 records, want 3"]
    params = _case({"status": 200, "json": {"MaxPayloadInMB": 2, "BatchStrategy": "MULTI_RECORD"}})
    body = b'{"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 2}'
    assert golden.judge(params, _r(200, body, "application/json")) == []
    assert golden.judge(params, _r(200, body.replace(b'"MaxPayloadInMB": 2', b'"MaxPayloadInMB": 6'),
                                   "application/json"))


def test_json_keys_and_the_models_placeholder() -> None:
    """multimodel.json: ``{models}`` becomes the models root in the body and in every expected string;
    ``json_keys`` is the exact key set (so a stray nextPageToken fails)."""
    case = golden.MultiCase("mm", "D6", "mme", {"SAGEMAKER_MULTI_MODEL": "true"}, [
        {"request": {"method": "POST", "path": "/models",
                     "body": '{"model_name": "a", "url": "{models}/a/model"}'},
         "expect": {"status": 200, "json": {"modelName": "a", "modelUrl": "{models}/a/model"},
                    "json_keys": ["modelName", "modelUrl"]}}])
    step = case.step(0, "/opt/ml/models")
    assert step.body == b'{"model_name": "a", "url": "/opt/ml/models/a/model"}'
    assert step.expect["json"]["modelUrl"] == "/opt/ml/models/a/model"
    good = b'{"modelName": "a", "modelUrl": "/opt/ml/models/a/model"}'
    assert golden.judge(step, _r(200, good, "application/json")) == []
    extra = b'{"modelName": "a", "modelUrl": "/opt/ml/models/a/model", "nextPageToken": "Yw"}'
    assert golden.judge(step, _r(200, extra, "application/json")) == [
        "JSON keys ['modelName', 'modelUrl', 'nextPageToken'], want ['modelName', 'modelUrl']"]
    assert golden.judge(step, _r(200, good.replace(b"/opt/ml/models", b"{models}"), "application/json"))


def test_the_multimodel_cases_load() -> None:
    cases = golden.load()
    assert cases.multimodel and cases.multi_setups
    for case in cases.multimodel:
        assert case.env.get("SAGEMAKER_MULTI_MODEL", "").lower() == "true", case.id
        for spec in cases.multi_setups[case.setup].models.values():
            assert spec.setup is None or spec.setup in cases.setups


def test_golden_cache_trains_once_per_image_and_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Concurrent callers of one key train once and all get the model; another image ID trains again."""
    monkeypatch.setenv("ROSETTA_GOLDEN_CACHE", str(tmp_path / "cache"))
    trained: list[str] = []

    def train_in(folder: Path) -> Callable[[], Path]:
        def train() -> Path:
            trained.append(folder.name)
            (folder / "model").mkdir(parents=True)
            (folder / "model" / "model.json").write_text(folder.name)
            return folder / "model"
        return train

    setup = {"program": "plain", "hyperparameters": {"target": "y"}}
    key = golden_cache.key("sha256:" + "a" * 64, setup)
    assert key == golden_cache.key("sha256:" + "a" * 64, dict(reversed(setup.items())))
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: golden_cache.cached_model(key, train_in(tmp_path / f"run{i}")), range(4)))
    assert len(trained) == 1 and sorted(hit for _, hit in got) == [False, True, True, True]
    assert {(m / "model.json").read_text() for m, _ in got} == {trained[0]}
    other = golden_cache.key("sha256:" + "b" * 64, setup)
    model, hit = golden_cache.cached_model(other, train_in(tmp_path / "rebuilt"))
    assert not hit and trained == [trained[0], "rebuilt"] and (model / "model.json").read_text() == "rebuilt"
