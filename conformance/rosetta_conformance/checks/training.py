"""L1 training: ``IMAGE train`` on a fake /opt/ml (T-01 … T-21, C-01)."""

from __future__ import annotations

import re
import subprocess

from rosetta_conformance import wire
from rosetta_conformance.checks import check
from rosetta_conformance.harness import Harness, TrainRun
from rosetta_conformance.outcome import Outcome, Skip
from sagemaker_rosetta import containers


def _ok_run(run: TrainRun, what: str) -> Outcome:
    files = [str(p.relative_to(run.root / "model")) for p in run.model_files()]
    got = f"exit {run.exit_code} in {run.seconds:.1f} s; model: {', '.join(files[:6]) or 'none'}"
    if run.exit_code != 0:
        return Outcome(False, f"training failed: {run.log_tail}", what, got)
    if not files:
        return Outcome(False, "exit 0 but nothing in /opt/ml/model", what, got)
    return Outcome(True, "", what, got)


def _failure_runs(h: Harness) -> list[TrainRun]:
    """Runs that must fail: channel missing, channel empty, bad hyperparameters (if given)."""
    tr = h.manifest.training
    assert tr is not None
    runs = [h.train("missing-channel", data=False), h.train("empty-channel", empty=True)]
    if tr.bad_hyperparameters:
        runs.append(h.train("bad-hp", hyperparameters={**tr.hyperparameters, **tr.bad_hyperparameters}))
    return runs


WHAT_FAILS = {
    "missing-channel": "channels listed in inputdataconfig.json, directories absent",
    "empty-channel": "channel files empty",
    "bad-hp": "manifest's bad_hyperparameters",
}


@check("C-01")
def train_word(h: Harness) -> Outcome:
    main = h.main_training()
    if main.exit_code != 0:
        return Outcome(False, f"`IMAGE train` failed: {main.log_tail}", "docker run IMAGE train",
                       f"exit {main.exit_code}")
    try:
        res = containers.run(h.image, ["not-a-sagemaker-word"], extra=h.label_args, timeout=20)
        code: int | None = res.returncode
    except subprocess.TimeoutExpired:
        code = None
    ok = code not in (0, None)
    return Outcome(ok, "" if ok else "an unknown word should exit non-zero, not run or serve",
                   "docker run IMAGE train; docker run IMAGE not-a-sagemaker-word",
                   f"train: exit 0; unknown word: {'still running after 20 s' if code is None else f'exit {code}'}")


@check("T-01")
def hyperparameters_read(h: Harness) -> Outcome:
    tr = h.manifest.training
    h.require_training()
    assert tr is not None
    hps = wire.encode_str(tr.hyperparameters)
    out = _ok_run(h.main_training(), f"hyperparameters.json {wire.short(str(hps))}")
    if out.ok and tr.bad_hyperparameters:
        bad = h.train("bad-hp", hyperparameters={**tr.hyperparameters, **tr.bad_hyperparameters})
        out.received += f"; with bad_hyperparameters {tr.bad_hyperparameters}: exit {bad.exit_code}"
        if bad.exit_code == 0:
            return Outcome(False, "bad hyperparameters were accepted: are they read at all?", out.sent,
                           out.received)
    return out


@check("T-02")
def both_encodings(h: Harness) -> Outcome:
    tr = h.manifest.training
    h.require_training()
    assert tr is not None
    main = h.main_training()
    js = h.train("json", encode=wire.encode_json)
    sent = f"str(v): {wire.encode_str(tr.hyperparameters)} vs json.dumps(v): {wire.encode_json(tr.hyperparameters)}"
    if main.exit_code != 0:
        return _ok_run(main, sent)
    out = _ok_run(js, sent)
    if not out.ok:
        out.detail = "JSON-encoded hyperparameters (SDK framework estimators) break training: " + out.detail
        return out
    a = {str(p.relative_to(main.root)): p.stat().st_size for p in main.model_files()}
    b = {str(p.relative_to(js.root)): p.stat().st_size for p in js.model_files()}
    if a.keys() != b.keys():
        return Outcome(False, "the two encodings produced different model files", sent, f"{sorted(a)} vs {sorted(b)}")
    differ = sorted(k for k in a if abs(a[k] - b[k]) > max(64, a[k] // 100))
    if differ:
        return Outcome(False, f"model files differ in size: {differ}", sent, f"{a} vs {b}")
    return Outcome(True, "", sent, f"both exit 0, same model files and sizes: {a}")


@check("T-04")
def no_content_type(h: Harness) -> Outcome:
    return _ok_run(h.train("no-content-type", content_type=None),
                   "inputdataconfig.json channels without ContentType")


@check("T-05")
def hosts_renamed(h: Harness) -> Outcome:
    out = _ok_run(h.train("hosts", hosts=("node-a",)),
                  'resourceconfig.json {"current_host": "node-a", "hosts": ["node-a"]}')
    if not out.ok:
        out.detail = "fails when the host is not called algo-1: " + out.detail
    return out


@check("T-07")
def file_channel(h: Harness) -> Outcome:
    tr = h.manifest.training
    h.require_training()
    assert tr is not None
    return _ok_run(h.main_training(), f"channels {sorted(tr.channels)} under /opt/ml/input/data")


@check("T-08")
def read_only_channel(h: Harness) -> Outcome:
    out = _ok_run(h.train("ro", ro_channels=True), "channels mounted read-only (FastFile)")
    if not out.ok:
        out.detail = "fails with a read-only channel: " + out.detail
    return out


@check("T-14")
def model_written(h: Harness) -> Outcome:
    h.require_training()
    out = _ok_run(h.main_training(), "docker run IMAGE train")
    if out.ok:
        tarball = h.model_tarball()
        out.received += f"; model.tar.gz {tarball.stat().st_size} bytes"
    return out


@check("T-16")
def exit_codes(h: Harness) -> Outcome:
    h.require_training()
    main = h.main_training()
    runs = _failure_runs(h)
    got = [f"success: exit {main.exit_code}"] + [f"{r.name}: exit {r.exit_code}" for r in runs]
    sent = "; ".join(f"{r.name} ({WHAT_FAILS[r.name]})" for r in runs)
    bad = [r.name for r in runs if r.exit_code == 0]
    if main.exit_code != 0:
        return Outcome(False, f"good training exited {main.exit_code}: {main.log_tail}", sent, "; ".join(got))
    if bad:
        return Outcome(False, f"exit 0 on a failure path: {', '.join(bad)}", sent, "; ".join(got))
    return Outcome(True, "", sent, "; ".join(got))


def failure_problem(run: TrainRun) -> str | None:
    """Why this run's failure file does not satisfy T-17 (``None`` if it does)."""
    text = run.failure
    if text is None:
        return "no /opt/ml/output/failure"
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not first:
        return "failure file is empty"
    if first.startswith(("Traceback", 'File "', "at ", "Stacktrace")):
        return f"first line is a stack trace, not the reason: {first[:80]!r}"
    if len(first) > 1024:
        return "first line is longer than the 1024 chars SageMaker keeps"
    return None


@check("T-17")
def failure_file(h: Harness) -> Outcome:
    h.require_training()
    runs = [r for r in _failure_runs(h) if r.exit_code != 0]
    if not runs:
        return Outcome(False, "no failure path failed (see T-16)", "failure paths", "all exit 0")
    got, problems = [], []
    for r in runs:
        why = failure_problem(r)
        first = (r.failure or "").strip().splitlines()[:1]
        got.append(f"{r.name}: {wire.short(first[0], 100) if first else 'no file'}")
        if why:
            problems.append(f"{r.name}: {why}")
    sent = "; ".join(f"{r.name} ({WHAT_FAILS[r.name]})" for r in runs)
    return Outcome(not problems, "; ".join(problems), sent, "; ".join(got))


@check("T-20")
def metric_lines(h: Harness) -> Outcome:
    """SageMaker finds metrics by regex in the job's log, per line; the first group must be a number."""
    h.require_training()
    tr = h.manifest.training
    assert tr is not None
    if not tr.metric_definitions:
        raise Skip("no [training] metric_definitions in the manifest")
    run = h.main_training()
    if run.exit_code != 0:
        return _ok_run(run, "docker run IMAGE train")
    lines = (run.stdout + "\n" + run.stderr).splitlines()
    got, problems = [], []
    for name, regex in tr.metric_definitions:
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            problems.append(f"{name}: the manifest's Regex does not compile: {exc}")
            continue
        found = [m for m in map(pattern.search, lines) if m is not None]
        if not found:
            problems.append(f"{name}: no log line matches {regex!r}")
            continue
        value = found[0].group(1) if pattern.groups else found[0].group(0)
        got.append(f"{name}={value} ({len(found)} line(s))")
        try:
            float(value)
        except ValueError:
            problems.append(f"{name}: {value!r} is not a number")
    return Outcome(not problems, "; ".join(problems), f"MetricDefinitions {tr.metric_definitions} over the "
                   "training log", "; ".join(got) or wire.short(run.log_tail, 200))
