"""Each checked clause in SageMaker's terms: what the user sees on AWS, and what to do.

:func:`from_report` turns a conformance :class:`~rosetta_conformance.runner.Report` into findings:
each failed clause once, and the clause that blocked others when it was not itself selected.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sagemaker_rosetta.doctor import exitcodes
from sagemaker_rosetta.doctor.findings import Finding

if TYPE_CHECKING:
    from rosetta_conformance.outcome import Result
    from rosetta_conformance.runner import Report

#: clause → (what goes wrong on SageMaker, what to do)
ADVICE: dict[str, tuple[str, str]] = {
    "C-01": ("`IMAGE train` / `IMAGE serve` does not run (on AWS: exec: \"serve\": executable file not found, or "
             "the job fails at once)", "put executables named `train` and `serve` on PATH, or an exec-form "
             "ENTRYPOINT that dispatches on that word and exits non-zero on any other"),
    "C-02": ("the ENTRYPOINT runs through `sh -c`: the shell is PID 1 and swallows SIGTERM, so a stopped or spot "
             "job is killed 120 s later without saving, and an endpoint drops requests on scale-in",
             "use the exec form: ENTRYPOINT [\"/path/prog\"] (or `exec prog \"$@\"` as the script's last line)"),
    "C-03": ("tini/dumb-init as ENTRYPOINT gets `train`/`serve` as its program name", "drop the init or give it "
             "the real program: ENTRYPOINT [\"tini\", \"--\", \"/path/prog\"]"),
    "C-04": ("files baked under /opt/ml are hidden: SageMaker mounts its own /opt/ml over them",
             "move them elsewhere (e.g. /opt/program) and read the model only from /opt/ml/model"),
    "C-08": ("the image's CPU architecture is not the machine's: on AWS the job or endpoint fails with "
             "`exec format error`", "docker build --platform linux/amd64 (linux/arm64 for Graviton types "
             "ml.*g.*) and push that image"),
    "T-01": ("training does not read /opt/ml/input/config/hyperparameters.json (values are strings)",
             "read that file and parse each string value"),
    "T-02": ("the SDK's JSON-encoded hyperparameters (`\"abc\"`, `200`) break training: framework estimators "
             "send them so", "accept both str(v) and json.dumps(v): try json.loads on each value"),
    "T-04": ("inputdataconfig.json without ContentType breaks training", "treat ContentType as optional"),
    "T-05": ("a hard-coded host name: SageMaker names hosts algo-1, algo-2, …", "read current_host and hosts "
             "from /opt/ml/input/config/resourceconfig.json"),
    "T-07": ("the channel files under /opt/ml/input/data/<channel>/ are not read", "read every file of the "
             "channel folder"),
    "T-08": ("training writes into its input channel: FastFile channels are read-only",
             "write temporary files to /tmp or /opt/ml/output/data, never into /opt/ml/input/data"),
    "T-13": ("a restarted (spot) job starts from scratch: nothing saved to /opt/ml/checkpoints or not resumed",
             "save checkpoints under checkpointconfig.json's LocalPath (/opt/ml/checkpoints) and resume from "
             "them (Rosetta: save_checkpoint/load_checkpoint)"),
    "T-14": ("no model in /opt/ml/model: model.tar.gz is empty and the endpoint has nothing to serve",
             "write the model files into /opt/ml/model"),
    "T-16": ("a failure exits 0 (SageMaker reports Completed with a bad model) or a good job exits non-zero",
             "exit non-zero on every failure path, 0 only on success"),
    "T-17": ("the job ends as a bare \"AlgorithmError: Exit Code: 1\": /opt/ml/output/failure is missing or "
             "its first line is not a reason", "write the reason, one line first, to /opt/ml/output/failure "
             "before exiting non-zero"),
    "T-20": ("the MetricDefinitions regexes find nothing in the log, so no metric is reported",
             "print `name=value` lines that the regexes match (first group = a number)"),
    "T-21": ("SIGTERM does not stop training: a stopped or spot job is killed 120 s later and loses its work",
             "handle SIGTERM (save a checkpoint, exit non-zero) and make the trainer PID 1 (exec form)"),
    "S-01": ("the endpoint cannot serve model.tar.gz as SageMaker extracts it into /opt/ml/model",
             "load the model from the files of /opt/ml/model"),
    "S-02": ("serving writes into /opt/ml/model, which is read-only on SageMaker", "write caches to /tmp"),
    "S-03": ("`did not pass the ping health check`: no HTTP server with GET /ping and POST /invocations on "
             "port 8080", "serve on 0.0.0.0:8080 (or $SAGEMAKER_BIND_TO_PORT) with /ping and /invocations"),
    "S-04": ("the server ignores SAGEMAKER_BIND_TO_PORT: in an inference pipeline or multi-container endpoint "
             "it takes another container's port", "listen on $SAGEMAKER_BIND_TO_PORT when set, else 8080"),
    "S-05": ("the server listens on 127.0.0.1 only: SageMaker's health check cannot reach it",
             "bind to 0.0.0.0"),
    "S-06": ("the port does not accept connections quickly", "accept connections in a thread of their own"),
    "S-07": ("/ping takes more than 2 s while a request is running: SageMaker marks the instance unhealthy",
             "answer /ping from its own thread/worker, never behind a running prediction"),
    "S-08": ("`did not pass the ping health check`: no /ping 200 within the health-check window",
             "start faster (load the model at start, not in /ping); look at the container's logs for the crash"),
    "S-09": ("/ping is slow or says 200 before the model is loaded: health checks time out (2 s) or the first "
             "requests fail", "load the model before answering /ping 200, and answer /ping within 2 s "
             "meanwhile (503 while loading)"),
    "S-10": ("unknown request headers break invocations", "ignore headers you do not use"),
    "S-11": ("an invocation takes more than 60 s: InvokeEndpoint times out", "predict faster or use batch "
             "transform / asynchronous inference"),
    "S-12": ("a body under 6 MB is refused with 413", "raise the server's body limit to at least 6 MB"),
    "S-13": ("SIGTERM drops in-flight requests or the container does not exit within 30 s (scale-in, update)",
             "finish in-flight requests on SIGTERM, then exit"),
    "S-16": ("content negotiation: `text/csv; charset=utf-8` refused, or wrong codes (want 415/406/400)",
             "ignore media-type parameters; 415 for a type you cannot read, 406 for an Accept you cannot "
             "write, 400 for a bad body, never 500"),
    "S-17": ("error answers are empty or huge (a debugger page, a traceback)", "answer errors with a short "
             "message (≤ 4 KiB)"),
    "B-01": ("batch transform starts `serve` and it does not become ready", "the same server as real-time"),
    "B-02": ("the batch-transform environment (SAGEMAKER_BATCH, …) breaks the server", "accept those variables"),
    "B-03": ("/execution-parameters answers something batch transform cannot use", "answer 404, or 200 with "
             "valid JSON"),
    "B-05": ("/execution-parameters asks for more than batch transform allows", "MaxPayloadInMB ≤ 100 and "
             "concurrency × payload ≤ 100"),
    "B-06": ("a request without Accept fails: batch transform sends none", "default the response type"),
    "B-08": ("batch transform gets a different number of outputs than inputs (`one record per line` broken)",
             "answer one output record per input record, in order, with or without a final newline"),
    "B-09": ("a single CSV row is taken for a header: 0 predictions", "treat CSV lines as records unless "
             "`header=present` says otherwise"),
    "B-13": ("a headered CSV split across payloads loses or duplicates rows", "honour `text/csv; header=present`"
             " on every payload"),
    "M-01": ("as a pipeline member it does not listen where SAGEMAKER_BIND_TO_PORT says, or its answer is not "
             "a type the next container takes", "listen on $SAGEMAKER_BIND_TO_PORT only and answer a declared "
             "content type"),
    "M-02": ("CreateModel refuses the image in an inference pipeline / multi-container endpoint",
             "LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true"),
    "M-03": ("the server opens ports outside SAGEMAKER_BIND_TO_PORT and SAGEMAKER_SAFE_PORT_RANGE",
             "listen only on $SAGEMAKER_BIND_TO_PORT; helpers inside $SAGEMAKER_SAFE_PORT_RANGE"),
    "MM-01": ("CreateModel refuses the image for a multi-model endpoint",
              "LABEL com.amazonaws.sagemaker.capabilities.multi-models=true"),
    "MM-02": ("a multi-model endpoint starts with no model: /ping must answer 200 then",
              "with SAGEMAKER_MULTI_MODEL=true, answer /ping 200 before any model is loaded"),
    "MM-03": ("POST /models does not load the model so that it can be invoked", "load from the `url` folder and "
              "answer 200 once the model serves"),
    "MM-04": ("loading a loaded model again is not refused with 409", "answer 409 for a name already loaded"),
    "MM-05": ("a bad load request is not a short 4xx (SageMaker passes the error to the caller)",
              "answer 400 (bad body) or 404 (url missing) with a short message; never 5xx"),
    "MM-06": ("GET /models/<name> does not describe a loaded model, or answers 200 for an unknown one",
              "{modelName, modelUrl} for a loaded model, 404 otherwise"),
    "MM-07": ("GET /models does not list each loaded model once across pages", "follow nextPageToken / "
              "next_page_token; no token on the last page"),
    "MM-08": ("DELETE /models/<name> does not unload (or a name not loaded is not 404)",
              "unload, then 404 for get/invoke; 404 for a DELETE of an unknown name"),
    "MM-09": ("POST /models/<name>/invoke differs from /invocations", "the same codecs, answers and errors; 404 "
              "for a model not loaded"),
    "MM-10": ("a load blocks /ping or the loaded models: health checks fail while models load",
              "load in the background; keep /ping and invocations answering"),
    "MM-11": ("when memory runs out a load is killed by the OOM killer instead of answering 507, so SageMaker "
              "cannot unload idle models and retry", "track memory and answer 507 before the limit"),
    "MM-12": ("unloading does not free memory: after a 507 the next load still fails", "free the model's memory "
              "on DELETE"),
}

_FAMILY_TODO = {
    "E": ("the SM_* training environment differs from the training toolkit's", "set SM_* as the toolkit does "
          "(see the clause in docs/contract.md)"),
}


def advise(clause: str, detail: str = "") -> Finding:
    """The finding for a failed ``clause`` with what the check saw."""
    what, todo = ADVICE.get(clause) or _FAMILY_TODO.get(clause.split("-")[0]) or _title(clause)
    return Finding(clause, what, todo, detail)


def _title(clause: str) -> tuple[str, str]:
    from rosetta_conformance.clauses import CLAUSES

    title = CLAUSES[clause].title if clause in CLAUSES else clause
    return (f"breaks: {title}", "see the clause in docs/contract.md")


def _evidence(r: Result) -> str:
    return " ".join(x for x in (r.detail.strip(), r.received.strip()) if x)[:400]


def from_result(r: Result, clause: str | None = None) -> list[Finding]:
    """Findings for one failed or blocked result: the clause's advice, plus an exit code's meaning."""
    evidence = _evidence(r)
    for code, meaning in exitcodes.MEANING.items():  # the check's clause stays the finding's clause
        if re.search(rf"\bexit(ed)? \(?{code}\b", r.detail):
            evidence = f"exit {code} = {meaning}; {evidence}"
            break
    found = [advise(clause or r.clause, evidence)]
    if "exec format error" in r.detail:  # the cause is the platform, whatever the check was
        extra = exitcodes.explain(None, reason=r.detail)
        if extra is not None:
            found.append(extra)
    return found


def from_report(report: Report) -> list[Finding]:
    """Each failed clause, and each blocking clause that did not run itself, as findings."""
    from rosetta_conformance.outcome import Status

    failed = {r.clause for r in report.results if r.status is Status.FAIL}
    out: list[Finding] = []
    for r in report.results:
        if r.status is Status.FAIL:
            out += from_result(r)
    for r in report.results:
        if r.status is Status.BLOCKED and r.blocked_by and r.blocked_by not in failed:
            failed.add(r.blocked_by)
            out += from_result(r, r.blocked_by)
    return out
