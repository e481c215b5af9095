"""``rosetta doctor`` on real images and real job folders.

- every broken fixture image of the conformance suite is diagnosed with exactly its clause(s): the ones
  whose breakage the short profile (``QUICK``) covers with no hint, the others with their clauses named
  (``diagnose_image(clauses=…)``, as ``--deep`` would find them), the static look always on;
- a blog-style Flask image (the "bring your own container" pattern: train/serve scripts on PATH, Flask's
  development server with debug=True on a fixed port, the model loaded inside /ping) built FROM the
  fixtures' Python base with Flask copied from the locked environment (no network);
- a failed ``rosetta train`` job folder explained from its failure file and exit code, job.json exit codes
  137/143/127, a pipeline run's result.json (as the local runner writes it);
- a running ``rosetta endpoint`` of the blog image, then with its container killed;
- the command's contract: one line per finding, plain when not a terminal, exit 0 / 1 / 2.

The fixture images are the conformance tests' (conformance/tests/conformance_fixture_images.py), built by
the same function: after those tests (or an earlier run) every layer comes from Docker's cache.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sagemaker_rosetta import images
from sagemaker_rosetta.doctor import QUICK, Diagnosis, diagnose_folder, diagnose_image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "conformance" / "tests"))
from conformance_fixture_images import (  # noqa: E402
    BASE_TAG,
    EXTRA,
    MANIFEST,
    VARIANTS,
    Variant,
    build_variants,
)

pytestmark = pytest.mark.docker

BROKEN = [v for v in VARIANTS if v.fails]
#: the image-config clauses doctor always runs: they must not blame an image for the wrong thing
STATIC = ("C-02", "C-03", "C-04", "C-08")
BLOG_TAG = "rosetta-test/doctor-blog:latest"
IRIS = ROOT / "examples" / "iris" / "data"
#: Flask and what it imports, copied from the locked environment into the image (no PyPI in the build)
FLASK = ("flask", "werkzeug", "jinja2", "markupsafe", "itsdangerous", "click", "blinker")

BLOG_DOCKERFILE = f"""\
# The blog pattern: train/serve scripts on PATH, no ENTRYPOINT, Flask's development server
FROM {BASE_TAG}
COPY site /opt/flask
COPY program /opt/program
RUN chmod +x /opt/program/train /opt/program/serve
ENV PATH="/opt/program:${{PATH}}" PYTHONPATH=/opt/flask PYTHONUNBUFFERED=TRUE
ENTRYPOINT []
WORKDIR /opt/program
"""
BLOG_TRAIN = """\
#!/usr/bin/env python3
# The blog's training script, stdlib only: per-class feature means as the model
import csv, glob, json, os, sys, traceback
try:
    hps = json.load(open("/opt/ml/input/config/hyperparameters.json"))
    rows = [r for f in glob.glob("/opt/ml/input/data/training/*.csv") for r in csv.DictReader(open(f))]
    if not rows:
        raise ValueError("There are no files in /opt/ml/input/data/training.")
    target = hps.get("target", "species")
    sums = {}
    for r in rows:
        label = r.pop(target)
        acc = sums.setdefault(label, [0.0] * (len(r) + 1))
        for i, v in enumerate(r.values()):
            acc[i] += float(v)
        acc[-1] += 1
    json.dump({k: [x / v[-1] for x in v[:-1]] for k, v in sums.items()}, open("/opt/ml/model/model.json", "w"))
    print("Training complete.")
except Exception as e:
    open("/opt/ml/output/failure", "w").write("Exception during training: " + str(e) + "\\n" + traceback.format_exc())
    sys.exit(255)
"""
BLOG_PREDICTOR = """\
# The blog's predictor: the model is loaded lazily inside /ping
import csv, io, json, math, time
import flask

class ScoringService:
    model = None

    @classmethod
    def get_model(cls):
        if cls.model is None:
            time.sleep(2.5)  # unpickling a large model: over 2 s, well under the harness's 5 s ping timeout
            cls.model = json.load(open("/opt/ml/model/model.json"))
        return cls.model

app = flask.Flask(__name__)

@app.route("/ping", methods=["GET"])
def ping():
    return flask.Response("\\n", status=200 if ScoringService.get_model() else 404, mimetype="application/json")

@app.route("/invocations", methods=["POST"])
def invocations():
    if flask.request.content_type != "text/csv":
        return flask.Response("This predictor only supports CSV data", status=415, mimetype="text/plain")
    rows = list(csv.reader(io.StringIO(flask.request.data.decode())))[1:]  # read_csv's default header
    model = ScoringService.get_model()
    out = [min(model, key=lambda k: math.dist(model[k], [float(x) for x in r])) for r in rows if r]
    return flask.Response("\\n".join(out) + "\\n", status=200, mimetype="text/csv")
"""
BLOG_SERVE = """\
#!/usr/bin/env python3
from predictor import app
app.run(host="0.0.0.0", port=8080, debug=True)
"""
BLOG_MANIFEST = f"""\
[training]
channels = {{ training = "{IRIS / 'train.csv'}" }}
hyperparameters = {{ target = "species" }}
timeout = 60

[serving]
ready_timeout = 60

[[serving.payloads]]
content_type = "text/csv"
file = "{IRIS / 'test_features.csv'}"
records = 30
"""


@pytest.fixture(scope="module")
def fixture_tags() -> dict[str, str]:
    # the conformance tests' own images and build: from Docker's cache (seconds) when they built them
    build_variants(VARIANTS + EXTRA)
    return {v.name: v.tag for v in VARIANTS}


@pytest.fixture(scope="module")
def blog(tmp_path_factory: pytest.TempPathFactory, fixture_tags: dict[str, str]) -> tuple[str, Path]:
    ctx = tmp_path_factory.mktemp("doctor-blog")
    site = Path(sysconfig.get_paths()["purelib"])
    for name in FLASK:  # the package and its metadata (Werkzeug reads its own version)
        for src in [site / name, *site.glob(f"{name}-*.dist-info")]:
            shutil.copytree(src, ctx / "site" / src.name, ignore=shutil.ignore_patterns("__pycache__"))
    program = ctx / "program"
    program.mkdir()
    for name, text in (("train", BLOG_TRAIN), ("serve", BLOG_SERVE), ("predictor.py", BLOG_PREDICTOR)):
        (program / name).write_text(text)
    (ctx / "Dockerfile").write_text(BLOG_DOCKERFILE)
    images.docker_build(BLOG_TAG, ctx / "Dockerfile", ctx)
    manifest = ctx / "conformance.toml"
    manifest.write_text(BLOG_MANIFEST)
    return BLOG_TAG, manifest


def _clauses(d: Diagnosis) -> set[str]:
    return {f.clause for f in d.findings}


def _show(d: Diagnosis) -> str:
    return "\n".join([f.line() for f in d.findings] + [f"note: {n}" for n in d.notes]
                     + [f"{c}: {s}" for c, s in d.statuses.items() if s != "pass"])


@pytest.fixture(scope="module")
def diagnosed(request: pytest.FixtureRequest, fixture_tags: dict[str, str]) -> dict[str, Diagnosis]:
    """Each broken fixture the session selected, doctored once, in parallel: the short profile when it
    covers the breakage (no hint), else the image-config clauses plus the fixture's own (as ``--deep``)."""
    selected = {item.callspec.params["variant"].name for item in request.session.items
                if item.name.startswith("test_each_broken_fixture") and hasattr(item, "callspec")}
    def one(v: Variant) -> tuple[str, Diagnosis]:
        if v.fails & set(QUICK):
            return v.name, diagnose_image(v.tag, manifest=MANIFEST, jobs=3)
        return v.name, diagnose_image(v.tag, manifest=MANIFEST, clauses=[*STATIC, *sorted(v.fails)], jobs=3)

    with ThreadPoolExecutor(max_workers=3) as pool:
        # the slowest (waits out a swallowed SIGTERM or fills memory) first, so they overlap the others
        order = sorted((v for v in BROKEN if v.name in selected),
                       key=lambda v: not ({"T-21", "T-13", "MM-02", "MM-11", "MM-12"} & v.fails))
        return dict(pool.map(one, order))


@pytest.mark.parametrize("variant", BROKEN, ids=[v.name for v in BROKEN])
def test_each_broken_fixture_is_diagnosed_with_its_clause(variant: Variant, diagnosed: dict[str, Diagnosis]) -> None:
    d = diagnosed[variant.name]
    expected = variant.fails & set(QUICK) or variant.fails
    assert _clauses(d) == set(expected), _show(d)
    assert d.exit_code == 1
    for f in d.findings:  # each says what to do
        assert f.todo and f.what, f


def test_good_fixture_short_profile_finds_nothing(fixture_tags: dict[str, str]) -> None:
    d = diagnose_image(fixture_tags["good"], manifest=MANIFEST)
    assert d.findings == [] and d.exit_code == 0, _show(d)
    assert not d.notes, d.notes


def test_blog_flask_image(blog: tuple[str, Path]) -> None:
    """The blog pattern: Flask's debugger (S-17, seen inside the image), 8080 hard-coded (S-04), the model
    loaded inside a 2.5 s /ping (S-09); nothing else of the short profile."""
    tag, manifest = blog
    d = diagnose_image(tag, manifest=manifest)
    assert _clauses(d) == {"S-17", "S-04", "S-09"}, _show(d)
    debug = next(f for f in d.findings if f.clause == "S-17")
    assert "debug=True" in debug.what and "/opt/program/serve" in debug.evidence and "gunicorn" in debug.todo
    slow = next(f for f in d.findings if f.clause == "S-09")
    assert "slowest" in slow.evidence, slow


def test_blog_image_without_manifest_is_looked_at_only(blog: tuple[str, Path]) -> None:
    d = diagnose_image(blog[0])
    assert _clauses(d) == {"S-17"}, _show(d)
    assert any("-m conformance.toml" in n for n in d.notes), d.notes


def _rosetta(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sagemaker_rosetta.cli", *args], capture_output=True, text=True,
                          cwd=cwd, check=False, timeout=600)


def test_failed_train_job_folder(blog: tuple[str, Path], tmp_path: Path) -> None:
    """``rosetta train`` on an empty channel: the blog's failure file and exit 255, then doctor on the folder."""
    (tmp_path / "empty").mkdir()
    out = tmp_path / "job"
    train = _rosetta("train", blog[0], "--channel", f"training={tmp_path / 'empty'}", "--output", str(out))
    assert train.returncode == 1, train.stderr
    job = json.loads((out / "job.json").read_text())
    assert job["ExitCode"] == 255 and (out / "failure").is_file()
    d = diagnose_folder(out)
    reason = next(f for f in d.findings if f.clause == "T-17")
    assert "There are no files in /opt/ml/input/data/training" in reason.what, _show(d)
    assert "T-07" in _clauses(d), _show(d)  # an empty channel, by the reason's words
    doctor = _rosetta("doctor", str(out))
    assert doctor.returncode == 1, doctor.stderr
    lines = doctor.stdout.splitlines()
    assert lines and all(line.split("  ", 1)[0] in {"T-17", "T-07"} for line in lines), doctor.stdout
    assert all(len(line) > 100 for line in lines), "full width, not wrapped, when stdout is a pipe"


@pytest.mark.parametrize(("code", "clause", "words"), [
    (137, "T-16", "out-of-memory"), (143, "T-21", "spot"), (127, "C-01", "executable file not found")])
def test_exit_codes_of_a_job_folder(tmp_path: Path, code: int, clause: str, words: str) -> None:
    """A job.json as ``rosetta train`` writes it for a job that left no failure file."""
    doc: dict[str, Any] = {"TrainingJobName": "j", "TrainingJobStatus": "Failed", "ExitCode": code,
                           "FailureReason": "no /opt/ml/output/failure written"}
    (tmp_path / "job.json").write_text(json.dumps(doc))
    d = diagnose_folder(tmp_path)
    assert [f.clause for f in d.findings] == [clause], _show(d)
    assert words in d.findings[0].what


def test_usage_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    for args in ([], ["rosetta-test/no-such-image:none"], [str(tmp_path)], ["x", "--endpoint", "y"]):
        res = _rosetta("doctor", *args)
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, (args, res.stderr)


def test_pipeline_run_folder(tmp_path: Path) -> None:
    """A run's ``result.json`` as the local runner writes it: the failed Training step is explained, the
    step that succeeded is not; a ``--workdir`` means its latest execution."""
    from rosetta_orchestrator.local.runner import RunResult, StepResult

    details = "Traceback (most recent call last):\n  File \"train\", line 3\nValueError: invalid literal for int()\n"
    steps = {"Train": StepResult("Train", "Training", status="Failed", image="my-model:latest",
                                 reason="Traceback (most recent call last):", exit_code=1, details=details),
             "Prep": StepResult("Prep", "Processing", status="Succeeded")}
    result = RunResult("p", "exec-1", "Failed", 1.0, steps, store=None,  # type: ignore[arg-type]  # doctor reads no artifact
                       parameters={})
    (tmp_path / "exec-1").mkdir()
    (tmp_path / "exec-1" / "result.json").write_text(json.dumps(result.to_json(), default=str))
    d = diagnose_folder(tmp_path)
    assert {f.clause for f in d.findings} == {"T-17", "T-02"}, _show(d)
    assert all(f.what.startswith("step Train (Training)") for f in d.findings), _show(d)
    assert "traceback" in next(f for f in d.findings if f.clause == "T-17").what
    assert d.notes and "exec-1" in d.notes[0]


def test_running_endpoint(blog: tuple[str, Path], tmp_path: Path) -> None:
    """``rosetta endpoint up`` with the blog image: the debug server is seen in its log and answers; once
    its container is killed from outside, the exit code says why (137, the OOM killer's signal)."""
    from sagemaker_rosetta.containers import Container
    from sagemaker_rosetta.endpoint.state import State

    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"setosa": [5.0, 3.4, 1.5, 0.2], "virginica": [6.6, 3.0, 5.6, 2.0]}))
    state = tmp_path / "state"
    up = _rosetta("endpoint", "up", "doctor-blog", blog[0], "--model", str(model), "--state", str(state),
                  "--ready-timeout", "60")
    try:
        assert up.returncode == 0, up.stderr
        doctor = _rosetta("doctor", "--endpoint", "doctor-blog", "--state", str(state))
        assert doctor.returncode == 1, doctor.stderr
        assert [line.split("  ", 1)[0] for line in doctor.stdout.splitlines()] == ["S-17"], doctor.stdout
        assert "Debug mode: on" in doctor.stdout or "Debugger is active" in doctor.stdout
        ep = State(state).load("doctor-blog")
        assert ep is not None
        Container("", name=ep.members[0].container).kill("KILL")
        doctor = _rosetta("doctor", "--endpoint", "doctor-blog", "--state", str(state))
        assert doctor.returncode == 1, doctor.stderr
        assert "exit 137" in doctor.stdout and "out-of-memory" in doctor.stdout, doctor.stdout
        missing = _rosetta("doctor", "--endpoint", "no-such-endpoint", "--state", str(state))
        assert missing.returncode == 2 and missing.stderr.startswith("error: no local endpoint"), missing.stderr
    finally:
        down = _rosetta("endpoint", "down", "doctor-blog", "--state", str(state))
        assert down.returncode == 0, down.stderr


@pytest.mark.parametrize(("script", "found"), [
    ('python3 /opt/fixture/fixture.py "$@"\n', {"C-02"}),  # the shell stays PID 1, SIGTERM never reaches python
    ('echo starting\nexec python3 /opt/fixture/fixture.py "$@"\n', set())])
def test_entrypoint_script_without_exec(fixture_tags: dict[str, str], tmp_path: Path, script: str,
                                        found: set[str]) -> None:
    """An exec-form ENTRYPOINT that is a shell script: fine when it execs its program, C-02 when not."""
    (tmp_path / "entry.sh").write_text("#!/bin/sh\n" + script)
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_TAG}\nCOPY entry.sh /entry.sh\nRUN chmod +x /entry.sh\n"
                                         'ENTRYPOINT ["/entry.sh"]\n')
    tag = f"rosetta-test/doctor-entry:{'plain' if found else 'exec'}"
    images.docker_build(tag, tmp_path / "Dockerfile", tmp_path)
    d = diagnose_image(tag, manifest=MANIFEST, clauses=STATIC)
    assert _clauses(d) == found, _show(d)
    if found:
        assert "/entry.sh" in d.findings[0].what and "exec" in d.findings[0].todo
