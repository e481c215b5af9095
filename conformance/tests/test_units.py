"""Fast tests of the suite's pure parts: manifests, record counting, socket tables, profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from rosetta_conformance import clauses, wire
from rosetta_conformance.manifest import ManifestError, load, load_expected_failures

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("lang", ["python", "r", "julia"])
def test_example_manifests_load(lang: str) -> None:
    m = load(ROOT / "examples" / "iris" / lang / "conformance.toml")
    assert m.training is not None and set(m.training.channels) == {"train"}
    assert m.training.channels["train"] == ROOT / "examples" / "iris" / "data" / "train.csv"
    assert m.training.bad_hyperparameters
    csv = m.csv
    assert csv is not None and csv.records == len(wire.csv_rows(csv.body)) == 30
    assert {p.content_type for p in m.serving.payloads} == {"text/csv", "application/json", "application/jsonlines"}


def test_manifest_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text('[training]\nchannels = { train = "nope.csv" }\n')
    with pytest.raises(ManifestError, match=r"nope\.csv"):
        load(bad)
    bad.write_text('[[serving.payloads]]\ncontent_type = "text/csv"\nrecords = 1\n')
    with pytest.raises(ManifestError, match=r"serving.payloads\[0\]"):
        load(bad)


def test_expected_failures_need_reasons(tmp_path: Path) -> None:
    f = tmp_path / "x.toml"
    f.write_text('[expected-failures]\n"S-16" = "500 for unsupported types"\n')
    assert load_expected_failures(f) == {"S-16": "500 for unsupported types"}
    f.write_text('[expected-failures]\n"S-16" = ""\n')
    with pytest.raises(ManifestError):
        load_expected_failures(f)


def test_output_records_by_content_type() -> None:
    assert wire.output_records(b"a\nb\n", "text/csv") == ["a", "b"]
    assert wire.output_records(b"a\nb", "text/csv; charset=utf-8") == ["a", "b"]
    assert wire.output_records(b"", "text/csv") == []
    assert wire.output_records(b'{"predictions": [1, 2, 3]}', "application/json") == ["1", "2", "3"]
    assert wire.output_records(b"[0.1, 0.9]\n[1, 0]\n", "application/jsonlines") == ["[0.1, 0.9]", "[1, 0]"]


def test_hyperparameter_encodings_differ_where_the_sdk_does() -> None:
    hps = {"n": 3, "flag": True, "name": "abc", "xs": [1, 2]}
    assert wire.encode_str(hps) == {"n": "3", "flag": "True", "name": "abc", "xs": "[1, 2]"}
    assert wire.encode_json(hps) == {"n": "3", "flag": "true", "name": '"abc"', "xs": "[1, 2]"}


def test_proc_net_tcp_listeners() -> None:
    v4 = ("  sl  local_address rem_address   st tx_queue rx_queue\n"
          "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000\n"
          "   1: 0100007F:23A3 00000000:0000 0A 00000000:00000000\n"
          "   2: 0200A8C0:1F90 0100A8C0:D431 01 00000000:00000000\n")
    assert wire._parse_proc_net(v4, v6=False) == [wire.Listener("0.0.0.0", 8080), wire.Listener("127.0.0.1", 9123)]
    v6 = ("  sl  local_address remote_address st\n"
          "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A\n"
          "   1: 00000000000000000000000001000000:270F 00000000000000000000000000000000:0000 0A\n")
    found = wire._parse_proc_net(v6, v6=True)
    assert found == [wire.Listener("::", 8080), wire.Listener("::1", 9999)]
    assert wire.is_loopback("::1") and wire.is_loopback("127.0.0.1") and not wire.is_loopback("0.0.0.0")


def test_profiles_select_clauses() -> None:
    must = {c.id for c in clauses.select(["must"])}
    assert {"C-02", "T-17", "T-21", "S-04", "S-13", "B-08", "B-09", "M-02"} <= must
    assert "S-16" not in must and "E-01" not in must
    assert {c.id for c in clauses.select(["all"])} == set(clauses.CLAUSES)
    with pytest.raises(ValueError):
        clauses.select(["nice-to-have"])


def test_every_clause_has_a_check() -> None:
    from rosetta_conformance.checks import load_all

    assert set(load_all()) == set(clauses.CLAUSES)
