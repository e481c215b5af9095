"""Doctor a failed job or run from its folder: ``rosetta train``'s ``--output`` (``job.json``, ``failure``,
``ml/``), a pipeline execution's folder (``result.json``), a ``--workdir`` holding executions, or an
``/opt/ml`` root (``output/failure``). Nothing runs: the findings come from the exit code, the failure
file, the recorded reason and the image's platform."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagemaker_rosetta.doctor import exitcodes
from sagemaker_rosetta.doctor.findings import Finding, dedupe
from sagemaker_rosetta.doctor.image import DEBUGGER_LOG, DEV_SERVER_LOG, Diagnosis, debug_server_findings


class FolderError(ValueError):
    """The folder is not one doctor can read; the message says what to give instead."""


#: the step types whose container is started with `train` / `serve`
WORD = {"Training": "train", "Tuning": "train", "Transform": "serve", "Model": "serve"}

#: patterns of failure reasons → (clause, what it means, what to do)
PATTERNS: list[tuple[re.Pattern[str], str, str, str]] = [
    (re.compile(r"exec format error", re.I), "C-08", "the image was built for another CPU architecture",
     "docker build --platform linux/amd64 (linux/arm64 for Graviton types) and push that image"),
    (re.compile(r"invalid literal for int|could not convert string to float|hyperparameter|"
                r"Expecting value: line 1", re.I), "T-02",
     "a hyperparameter value could not be read: SageMaker passes every value as a string, and SDK framework "
     "estimators JSON-encode them (\"abc\" with its quotes)",
     "parse each value of hyperparameters.json, accepting both str(v) and json.dumps(v) (a Rosetta runtime does)"),
    (re.compile(r"/opt/ml/input/data/|no channel|channel .*(missing|not found|empty)|no (csv|data) files", re.I),
     "T-07", "a channel the code reads is missing or empty",
     "give that channel (--channel NAME=PATH, or the step's inputs) with files in it"),
    (re.compile(r"MemoryError|Cannot allocate memory|bad_alloc|out of memory|OutOfMemory", re.I), "T-16",
     "the job ran out of memory", "use an instance type with more memory or process the data in pieces"),
]
TRACEBACK = re.compile(r"^(Traceback \(most recent call last\)|Error in |ERROR: LoadError|\s+at |\s+File \")")


@dataclass
class JobRecord:
    """What a folder says about one failed container run."""

    name: str
    word: str
    status: str
    reason: str = ""
    exit_code: int | None = None
    failure: str | None = None
    failure_path: Path | None = None
    image: str = ""
    instance_type: str = ""


def explain(job: JobRecord) -> list[Finding]:
    """Findings for one job: its exit code, its failure file's reason, the patterns of that reason, the
    debug web server in its text, and the image's platform against the instance type."""
    if job.status in ("Completed", "Succeeded") and not job.failure:
        return []
    out: list[Finding] = []
    text = "\n".join(x for x in (job.reason, job.failure or "") if x)
    code = exitcodes.explain(job.exit_code, word=job.word, reason=text)
    if code is not None:
        out.append(code)
    first = (job.failure or "").strip().splitlines()[0] if (job.failure or "").strip() else ""
    where = str(job.failure_path) if job.failure_path else "the failure file"
    if first:
        if TRACEBACK.match(first):
            out.append(Finding("T-17", f"{job.name}: the failure file starts with a traceback, so SageMaker's "
                               "FailureReason is a useless first line", "catch the error at the top of the "
                               "program and write a one-line reason first, the traceback after",
                               f"{where}: {first[:160]}"))
        else:
            out.append(Finding("T-17", f"{job.name} failed; SageMaker's FailureReason would read "
                               f"\"AlgorithmError: {first[:200]}\"", "fix what the reason says (the whole text is "
                               f"in {where})", f"exit {job.exit_code}" if job.exit_code is not None else ""))
    elif job.exit_code not in (None, 0) and code is None:
        out.append(Finding("T-17", f"{job.name} exited {job.exit_code} without /opt/ml/output/failure: SageMaker "
                           f"says only \"AlgorithmError: Exit Code: {job.exit_code}\"", "write the reason, one line "
                           "first, to /opt/ml/output/failure before exiting non-zero", job.reason[:160]))
    for pattern, clause, what, todo in PATTERNS:
        hit = pattern.search(text)
        if hit:
            out.append(Finding(clause, f"{job.name}: {what}", todo, hit.group(0)))
    if DEV_SERVER_LOG.search(text):
        debug = [m.group(0) for m in [DEBUGGER_LOG.search(text)] if m]
        out += debug_server_findings(werkzeug=True, debug=debug, devserver=["Werkzeug in the log"], where="its text")
    out += platform_findings(job)
    return out


def platform_findings(job: JobRecord) -> list[Finding]:
    """C-08 for a job whose image is on this engine: its architecture against the host and instance type."""
    if not job.image:
        return []
    from rosetta_conformance import platforms
    from sagemaker_rosetta import local_images
    from sagemaker_rosetta.dockerapi import DockerError

    try:
        arch = local_images.architecture(job.image)
        _, host = local_images.engine_platform()
    except (DockerError, KeyError, ValueError):
        return []
    wanted = platforms.instance_architecture(job.instance_type) if job.instance_type else None
    todo = f"docker build --platform linux/{wanted or host} and use that image"
    if wanted and arch != wanted:
        return [Finding("C-08", f"{job.image} is {arch} but {job.instance_type} runs {wanted}: on AWS the job fails "
                        "with `exec format error`", todo, f"image {arch}")]
    if arch != host:
        return [Finding("C-08", f"{job.image} is {arch}, this machine is {host}", todo, f"image {arch}")]
    return []


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FolderError(f"{path}: cannot read it ({exc})") from exc
    if not isinstance(doc, dict):
        raise FolderError(f"{path}: not a JSON object")
    return doc


def _failure_of(folder: Path) -> tuple[str | None, Path | None]:
    candidates = [folder / "failure", folder / "ml" / "output" / "failure", folder / "output" / "failure",
                  *sorted(folder.glob("hosts/*/output/failure"))]
    for path in candidates:
        if path.is_file():
            return path.read_text(errors="replace"), path
    return None, None


def train_job(folder: Path) -> JobRecord:
    """``rosetta train --output`` folder: ``job.json`` (DescribeTrainingJob's shape) and the failure file."""
    doc = _read_json(folder / "job.json")
    failure, path = _failure_of(folder)
    return JobRecord(name=f"training job {doc.get('TrainingJobName', folder.name)}", word="train",
                     status=str(doc.get("TrainingJobStatus", "")), reason=str(doc.get("FailureReason") or ""),
                     exit_code=doc.get("ExitCode"), failure=failure, failure_path=path,
                     image=str((doc.get("AlgorithmSpecification") or {}).get("TrainingImage", "")),
                     instance_type=str((doc.get("ResourceConfig") or {}).get("InstanceType", "")))


def run_steps(folder: Path) -> list[JobRecord]:
    """A pipeline execution's ``result.json``: each failed step."""
    doc = _read_json(folder / "result.json")
    jobs = []
    for name, step in (doc.get("steps") or {}).items():
        if step.get("status") != "Failed":
            continue
        props = step.get("properties") or {}
        jobs.append(JobRecord(name=f"step {name} ({step.get('type', '?')})", word=WORD.get(step.get("type"), "serve"),
                              status="Failed", reason=str(step.get("reason") or ""), exit_code=step.get("exit_code"),
                              failure=step.get("details") or None, image=str(step.get("image") or ""),
                              instance_type=str((props.get("ResourceConfig") or {}).get("InstanceType", ""))))
    return jobs


def diagnose_folder(folder: Path) -> Diagnosis:
    """Findings for a failed job or run folder (see the module's docstring for the kinds)."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise FolderError(f"{folder} is not a folder")
    if (folder / "job.json").is_file():
        jobs = [train_job(folder)]
    elif (folder / "result.json").is_file():
        jobs = run_steps(folder)
    elif runs := sorted(folder.glob("*/result.json"), key=lambda p: p.stat().st_mtime):
        return _latest(runs)
    elif (folder / "output" / "failure").is_file() or (folder / "input" / "config").is_dir():
        failure, path = _failure_of(folder)
        jobs = [JobRecord(name=f"the job of {folder}", word="train", status="Failed" if failure else "",
                          failure=failure, failure_path=path)]
    else:
        raise FolderError(f"{folder} holds no job.json (rosetta train --output), result.json (a pipeline "
                          "execution) or output/failure (an /opt/ml root): give one of those, or an image")
    findings = [f for job in jobs for f in explain(job)]
    notes = [] if jobs else ["no failed step in this execution"]
    return Diagnosis(str(folder), dedupe(findings), notes)


def _latest(runs: list[Path]) -> Diagnosis:
    """A ``--workdir``: its latest execution."""
    latest = runs[-1].parent
    found = diagnose_folder(latest)
    found.notes.insert(0, f"latest execution: {latest.name} (of {len(runs)})")
    return found
