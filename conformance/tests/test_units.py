"""Fast tests of the suite's pure parts: manifests, record counting, socket tables, profiles."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from rosetta_conformance import clauses, platforms, wire
from rosetta_conformance.checks import sigterm
from rosetta_conformance.checks.batch import split_lines
from rosetta_conformance.harness import Harness, SigtermRun, definite
from rosetta_conformance.manifest import ManifestError, load, load_expected_failures
from rosetta_conformance.outcome import Outcome, Result, Status
from rosetta_conformance.report import plain
from rosetta_conformance.runner import Report
from sagemaker_rosetta.containers import Response

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
    assert {c.id for c in clauses.select(["all"])} == {c.id for c in clauses.CLAUSES.values() if c.checked}
    with pytest.raises(ValueError, match="documented, not checked"):
        clauses.select(["must"], ["T-22"])
    with pytest.raises(ValueError):
        clauses.select(["nice-to-have"])


def test_every_clause_has_a_check() -> None:
    from rosetta_conformance.checks import load_all

    assert set(load_all()) == {c.id for c in clauses.CLAUSES.values() if c.checked}


def test_manifest_header_and_metric_definitions(tmp_path: Path) -> None:
    m = load(ROOT / "conformance" / "fixtures" / "fixture" / "conformance.toml")
    assert m.csv is not None and m.csv.header == b"sepal_length,sepal_width,petal_length,petal_width"
    assert m.training is not None and m.training.metric_definitions == [("train:rows", r"train:rows=(\S+)")]
    assert m.training.sigterm.delay == 3.0
    fast = load(ROOT / "conformance" / "fixtures" / "fixture" / "fast-training.toml")
    assert fast.training is not None and fast.training.sigterm.delay is None  # default: half a normal run
    bad = tmp_path / "m.toml"
    bad.write_text('[[serving.payloads]]\ncontent_type = "text/csv"\nbody = "1,2"\nrecords = 1\nheader = "a\\nb"\n')
    with pytest.raises(ManifestError, match="header"):
        load(bad)


def _response(status: int, body: bytes) -> Response:
    return Response(status, {}, body, 0.01)


def test_definite_answers_stop_the_wait() -> None:
    """4xx, or a 5xx with a body (other than 503), is the server's verdict; 503 and bodiless 5xx mean loading."""
    assert definite(_response(400, b"row 1 has 3 columns, expected 4\n"))
    assert definite(_response(404, b""))
    assert definite(_response(500, b"model error: boom\n"))
    assert not definite(_response(503, b"model is loading\n"))
    assert not definite(_response(502, b""))
    assert not definite(_response(200, b"1\n"))


def _run(*, landed: bool = True, code: int | None = 0, ran: float | None = 2.0, after: float | None = 1.0,
         repeat: int = 1, delay: float = 1.0) -> SigtermRun:
    return SigtermRun(repeat=repeat, delay=delay, landed=landed, exit_code=code, ran=ran, after_signal=after,
                      timeout=30)


def test_t21_verdicts() -> None:
    assert _outcome(sigterm.verdict(_run(code=143), 2.0)).ok
    assert not _outcome(sigterm.verdict(_run(code=None, ran=None, after=None), 2.0)).ok
    assert "137" in _outcome(sigterm.verdict(_run(code=137), 2.0)).detail
    # no exit within the timeout, but a second SIGTERM stops it: the first came before the program could take it
    lost = _run(code=None, ran=None, after=None)
    lost.late_exit = 143
    assert sigterm.verdict(lost, 2.0) is None
    lost.late_exit = None
    assert not _outcome(sigterm.verdict(lost, 2.0)).ok
    # exit 0 long after the signal (more than a whole normal run): it ignored the signal
    ignored = _outcome(sigterm.verdict(_run(code=0, ran=20.0, after=15.0), 2.0))
    assert not ignored.ok and "did not stop training" in ignored.detail
    # exit 0 soon after the signal (it was saving), or the run ended before it: undecided
    assert sigterm.verdict(_run(code=0, after=1.0), 2.0) is None
    assert sigterm.verdict(_run(landed=False, after=None, ran=0.8), 2.0) is None
    assert sigterm.default_delay(None) == 1.0 and sigterm.default_delay(0.5) == 1.0
    assert sigterm.default_delay(9.0) == 4.5


def _outcome(o: Outcome | None) -> Outcome:
    assert o is not None
    return o


def test_t21_advice_gives_the_manifest_lines() -> None:
    """Extrapolated from two timed runs; without growth with rows, it asks for hyperparameters."""
    h = Harness("unused:latest", load(ROOT / "conformance" / "fixtures" / "fixture" / "fast-training.toml"))
    try:
        grows = [_run(repeat=1, ran=2.0), _run(repeat=10, ran=2.9)]  # 0.1 s per repeat
        text = sigterm.advice(h, grows, 1.0)
        assert text.splitlines()[0] == "[training.sigterm]"
        assert "repeat = 60" in text and "delay = 1.0" in text  # (1.9 fixed + 2 + 2) / 0.1 = 59 -> 60
        flat = sigterm.advice(h, [_run(repeat=1, ran=2.0), _run(repeat=10, ran=2.0)], 1.0)
        assert "repeat =" not in flat and "hyperparameters = {" in flat
        assert tomllib.loads("\n".join(ln for ln in text.splitlines() if not ln.startswith("#")))
    finally:
        h.cleanup()


def test_split_lines_keeps_every_line_in_order() -> None:
    lines = [b"a,b", b"1,2", b"3,4", b"5,6"]
    assert split_lines(lines, 3) == [b"a,b\n1,2\n3,4\n", b"5,6\n"]
    assert b"".join(split_lines(lines, 2)).split(b"\n")[:-1] == lines


def test_plain_report_is_full_width() -> None:
    """Not a terminal: every line whole, the notes column kept (no 80-column cut)."""
    long = "x" * 300
    r = Result("S-16", "content negotiation", "MLF", "should", Status.FAIL, detail="415 wanted", sent="12 requests",
               received=long)
    lines = plain(Report("img:1", ["must"], [r], 1.0))
    row = next(ln for ln in lines if ln.startswith("S-16"))
    assert row.endswith(long) and "415 wanted" in row and len(row) > 300


@pytest.mark.parametrize(("instance_type", "arch"), [
    ("ml.c7g.xlarge", "arm64"), ("ml.m6g.large", "arm64"), ("ml.r6gd.2xlarge", "arm64"), ("ml.c6gn.16xlarge", "arm64"),
    ("ml.t4g.medium", "arm64"), ("ml.r8g.xlarge", "arm64"), ("ml.g5g.xlarge", "arm64"), ("ml.m5.xlarge", "amd64"),
    ("ml.c5n.18xlarge", "amd64"), ("ml.c6i.large", "amd64"), ("ml.c7a.large", "amd64"), ("ml.g5.2xlarge", "amd64"),
    ("ml.g6e.xlarge", "amd64"), ("ml.g4dn.xlarge", "amd64"), ("ml.p4d.24xlarge", "amd64"), ("ml.inf2.xlarge", "amd64"),
    ("ml.trn1.2xlarge", "amd64"), ("local", None), ("local_gpu", None)])
def test_instance_type_architecture(instance_type: str, arch: str | None) -> None:
    assert platforms.instance_architecture(instance_type) == arch


def test_every_listed_graviton_family_is_arm64() -> None:
    """The rule (a ``g`` right after the generation) against AWS's list of Graviton families."""
    for family in platforms.GRAVITON_FAMILIES:
        assert platforms.instance_architecture(f"ml.{family}.xlarge") == "arm64", family


def test_manifest_optional_sections(tmp_path: Path) -> None:
    m = load(ROOT / "conformance" / "fixtures" / "fixture" / "conformance.toml")
    assert m.training is not None and m.training.checkpoint is not None
    assert m.training.checkpoint.hyperparameters == {"checkpoint_epochs": 6, "epoch_seconds": 1.0}
    assert m.multi_model.memory_mb == 256 and m.multi_model.pad_mb == 64
    plain = load(ROOT / "examples" / "iris" / "python" / "conformance.toml")
    assert plain.training is not None and plain.training.checkpoint is None  # T-13 skips, with advice
    assert plain.multi_model.memory_mb == 1024 and plain.multi_model.pad_mb == 256 and plain.instance_type is None
    bad = tmp_path / "m.toml"
    bad.write_text('[training]\nchannels = { train = "x.csv" }\n[training.checkpoint]\ndelay = 2\n')
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ManifestError, match="resumed"):
        load(bad)
    bad.write_text('instance_type = "ml.c7g.xlarge"\n[serving]\noutput_types = ["json"]\n')
    with pytest.raises(ManifestError, match="output_types"):
        load(bad)
    bad.write_text('instance_type = "ml.c7g.xlarge"\n[serving]\noutput_types = ["Application/JSON; q=1"]\n')
    assert load(bad).serving.output_types == ["application/json"] and load(bad).instance_type == "ml.c7g.xlarge"
