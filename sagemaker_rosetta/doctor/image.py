"""Doctor an image: a look inside it (executables, a debug web server), then a short conformance profile.

The checks themselves are the conformance suite's (:func:`rosetta_conformance.runner.run_suite`, so the
verdicts are the same as ``rosetta conform``'s); doctor picks the clauses behind the failures users meet
most (``QUICK``) and words each failure in SageMaker's terms with what to do (:mod:`.advice`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sagemaker_rosetta import containers, local_images
from sagemaker_rosetta.doctor.advice import from_report
from sagemaker_rosetta.doctor.findings import Finding, dedupe

#: the short profile: image config and files, `train`, `serve` on 8080 / SAGEMAKER_BIND_TO_PORT, /ping timing
QUICK = ("C-01", "C-02", "C-03", "C-04", "C-08", "T-16", "T-17", "S-03", "S-04", "S-05", "S-07", "S-08", "S-09")

#: run by ``/bin/sh`` inside the image: where `train`/`serve` are, Werkzeug, files starting a dev server
PROBE = r"""
for w in train serve; do p=$(command -v "$w" 2>/dev/null) && echo "exe $w $p" || echo "missing $w"; done
for d in /usr /opt /root /home /app /srv /var/task; do
  [ -d "$d" ] && find "$d" -xdev -type d -name werkzeug 2>/dev/null | head -n 1 | sed 's/^/werkzeug /'
done
s=$(command -v serve 2>/dev/null)
for f in $s ${s:+$(dirname "$s")/*.py} ./*.py; do
  [ -f "$f" ] || continue
  grep -qE 'debug *= *True' "$f" 2>/dev/null && echo "debug $f"
  grep -qE '\.run\(' "$f" 2>/dev/null && echo "devserver $f"
done
if [ -n "$DOCTOR_ENTRY" ]; then
  e=$(command -v "$DOCTOR_ENTRY" 2>/dev/null || echo "$DOCTOR_ENTRY")
  if [ -f "$e" ] && head -n 1 "$e" | grep -qE '^#!.*(/|env +)(ba|da|a|z|k)?sh( |$)'; then
    grep -qE '(^|[;&|({[:space:]])exec[[:space:]]+[^0-9<>[:space:]]' "$e" \
      || grep -qE 'trap[[:space:]].*(TERM|15)' "$e" || echo "shellentry $e"
  fi
fi
true
"""
#: shells whose script as ENTRYPOINT stays PID 1 unless it execs its program or traps SIGTERM
SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh"}

#: log lines of the Werkzeug development server (Flask's ``app.run``)
DEV_SERVER_LOG = re.compile(r"This is a development server|Debugger is active|Serving Flask app|Werkzeug")
DEBUGGER_LOG = re.compile(r"Debugger is active|Debugger PIN|Debug mode: on|debug=True")


@dataclass
class ImageLook:
    """What the probe saw inside the image."""

    entrypoint: list[str]
    missing: list[str] = field(default_factory=list)
    werkzeug: bool = False
    debug_files: list[str] = field(default_factory=list)
    devserver_files: list[str] = field(default_factory=list)
    #: the ENTRYPOINT's shell script, when it neither execs its program nor traps SIGTERM
    shell_entry: str = ""
    #: why the probe could not run (no /bin/sh in the image, …)
    error: str = ""


def look(image: str) -> ImageLook:
    """Run :data:`PROBE` in the image (``--entrypoint /bin/sh``, no network needs, removed after)."""
    cfg = local_images.config(image)
    found = ImageLook([str(x) for x in cfg.get("Entrypoint") or []])
    ep = found.entrypoint
    script = ep[1] if len(ep) > 1 and ep[0].rsplit("/", 1)[-1] in SHELLS and ep[1] != "-c" else ep[0] if ep else ""
    try:
        res = containers.run(image, ["-c", PROBE], entrypoint="/bin/sh", timeout=60, network_mode="none",
                             env={"DOCTOR_ENTRY": script})
    except containers.RunTimeout:
        found.error = "the look inside the image timed out"
        return found
    if res.returncode != 0:
        found.error = f"no /bin/sh to look inside the image ({res.stderr.strip()[:120]})"
        return found
    for line in res.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "missing":
            found.missing.append(rest)
        elif kind == "werkzeug":
            found.werkzeug = True
        elif kind == "debug":
            found.debug_files.append(rest)
        elif kind == "devserver":
            found.devserver_files.append(rest)
        elif kind == "shellentry":
            found.shell_entry = rest
    return found


def debug_server_findings(*, werkzeug: bool, debug: list[str], devserver: list[str], where: str) -> list[Finding]:
    """The Flask/Werkzeug development server, with or without its debugger."""
    if not werkzeug:
        return []
    todo = ("serve with a production WSGI server, e.g. gunicorn --bind 0.0.0.0:${SAGEMAKER_BIND_TO_PORT:-8080} "
            "predictor:app (or a Rosetta runtime image), without debug=True")
    if debug:
        return [Finding("S-17", "a debug web server: Flask/Werkzeug's debugger is on (debug=True), so every error "
                        "answers a large HTML page with the traceback, and the debugger runs code sent to it",
                        todo, f"{where}: {', '.join(debug[:3])}")]
    if devserver:
        return [Finding("S-07", "a development web server (Flask's app.run / Werkzeug): not made for "
                        "production load; /ping can stall behind requests and health checks fail", todo,
                        f"{where}: {', '.join(devserver[:3])}")]
    return []


def look_findings(found: ImageLook) -> list[Finding]:
    out: list[Finding] = []
    if not found.entrypoint:  # SageMaker runs `docker run IMAGE train|serve`: the word is the command
        for word in found.missing:
            out.append(Finding("C-01", f"no `{word}` executable on PATH and no ENTRYPOINT: on AWS `exec: "
                               f"\"{word}\": executable file not found in $PATH`",
                               f"COPY a `{word}` script, chmod +x it and put its folder on PATH (or add an "
                               f"exec-form ENTRYPOINT that handles `{word}`)", "image config and PATH"))
    if found.shell_entry:
        out.append(Finding("C-02", f"the ENTRYPOINT script {found.shell_entry} is a shell that stays PID 1: it runs "
                           "the program as its child, with no exec and no SIGTERM trap, so SIGTERM never reaches it "
                           "(a stopped or spot job is killed 120 s later without saving)",
                           "end the script with `exec prog \"$@\"` (or trap TERM and forward it to the child)",
                           "the script has no exec and no trap"))
    out += debug_server_findings(werkzeug=found.werkzeug, debug=found.debug_files,
                                 devserver=[f for f in found.devserver_files if f not in found.debug_files],
                                 where="in the image")
    return out


@dataclass
class Diagnosis:
    subject: str
    findings: list[Finding]
    #: what could not be checked, and how to make it checkable
    notes: list[str] = field(default_factory=list)
    #: each conformance clause run on an image: its status (pass, fail, blocked, skip, inconclusive)
    statuses: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0


def diagnose_image(image: str, *, manifest: Path | None = None, model_dir: Path | None = None,
                   instance_type: str | None = None, clauses: tuple[str, ...] | list[str] = QUICK,
                   profiles: list[str] | None = None, jobs: int = 4,
                   progress: Callable[[str], None] | None = None) -> Diagnosis:
    """Look inside ``image``, then run ``clauses`` (default :data:`QUICK`; ``profiles`` instead: whole
    conformance profiles) with the manifest's data or ``model_dir``; findings in SageMaker's terms."""
    from rosetta_conformance.manifest import load
    from rosetta_conformance.outcome import Result, Status
    from rosetta_conformance.runner import run_suite

    man = load(manifest)
    notes: list[str] = []
    found = look(image)
    if found.error:
        notes.append(found.error)
    findings = look_findings(found)

    def tick(r: Result) -> None:
        if progress:
            progress(f"{r.clause} {r.status.value}")

    report = run_suite(image, man, profiles=profiles or ["all"], only=None if profiles else list(clauses),
                       model_dir=model_dir, jobs=jobs, progress=tick, instance_type=instance_type)
    seen = {f.clause for f in findings}  # the look said it more precisely (C-01: which word is missing)
    findings += [f for f in from_report(report) if f.clause not in seen]
    skipped = [r.clause for r in report.results if r.status is Status.SKIP]
    if skipped and man.training is None and model_dir is None:
        notes.append(f"not run ({', '.join(skipped)}): give -m conformance.toml (training data, payloads) or "
                     "--model-dir DIR to also check `train` and `serve`")
    for r in report.results:
        if r.status is Status.INCONCLUSIVE:
            notes.append(f"{r.clause} inconclusive: {r.detail[:200]}")
    return Diagnosis(image, dedupe(findings), notes, {r.clause: r.status.value for r in report.results})
