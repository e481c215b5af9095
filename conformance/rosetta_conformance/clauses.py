"""The clauses this suite checks: ID, one-line rule, source, profile (sagemaker-contract.md §9).

Profiles: ``must`` (what breaks a real job or endpoint), ``should`` (what breaks some of them
or makes them fragile), ``toolkit`` (the ``SM_*`` environment of the training toolkit).
"""

from __future__ import annotations

from dataclasses import dataclass

PROFILES = ("must", "should", "toolkit")


@dataclass(frozen=True)
class Clause:
    id: str
    title: str
    source: str
    profile: str


_ROWS = [
    # static (L0)
    ("C-02", "exec-form ENTRYPOINT (not `sh -c`), so PID 1 receives SIGTERM", "DG-TRUN, DG-INF", "must"),
    ("C-03", "entrypoint is not tini/docker-init", "DG-TRUN, DG-INF", "should"),
    ("C-04", "nothing baked under /opt/ml (it is hidden at run time)", "DG-TRUN", "should"),
    ("M-02", "label com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true", "DG-PIPE", "must"),
    # training (L1)
    ("C-01", "`IMAGE train` runs training; an unknown word exits non-zero", "DG-TRUN, DG-INF; LOCAL", "must"),
    ("T-01", "reads hyperparameters.json (all values strings)", "DG-TINFO; API", "must"),
    ("T-02", "str(v) and json.dumps(v) hyperparameter encodings give the same model", "SDK estimator.py", "must"),
    ("T-04", "inputdataconfig.json without ContentType (local-mode shape) works", "DG-TINFO; TTK", "must"),
    ("T-05", "host names read from resourceconfig.json, not hard-coded (hosts renamed)", "DG-TINFO; TTK",
     "must"),
    ("T-07", "File-mode channel /opt/ml/input/data/<channel>/ is read", "DG-TINFO; TTK", "must"),
    ("T-08", "read-only (FastFile) channel works: nothing written into it", "DG-TINFO", "should"),
    ("T-14", "model written to /opt/ml/model and packed as model.tar.gz (contents at root)", "DG-TOUT; LOCAL",
     "must"),
    ("T-16", "exit 0 on success, non-zero on every failure path", "DG-TSIG", "must"),
    ("T-17", "every failure writes /opt/ml/output/failure, human reason on the first line", "DG-TOUT; TTK",
     "must"),
    ("T-21", "SIGTERM reaches the training code; the container exits in time", "DG-TRUN", "must"),
    # serving (L1)
    ("S-01", "serves a model.tar.gz extracted into /opt/ml/model the way SageMaker does", "DG-INF; LOCAL",
     "must"),
    ("S-02", "serves with /opt/ml/model mounted read-only", "autogluon#3064; sagemaker-python-sdk#5698", "must"),
    ("S-03", "HTTP on port 8080: GET /ping 200, POST /invocations 200", "DG-INF, DG-BT", "must"),
    ("S-04", "SAGEMAKER_BIND_TO_PORT honoured (that port answers, 8080 does not listen)", "DG-PIPE; ITK",
     "must"),
    ("S-05", "listens on 0.0.0.0 (reachable through a published port), not loopback", "EX-R; ITK", "must"),
    ("S-06", "accepts TCP connections within 250 ms", "DG-INF", "must"),
    ("S-07", "/ping answers 200 within 2 s, also while an invocation is in flight", "DG-INF, DG-BT", "must"),
    ("S-08", "first /ping 200 within the health-check window (default 240 s)", "DG-INF; API", "must"),
    ("S-09", "no /ping 200 before the model is loaded: an invocation right after the first 200 works",
     "DG-INF; EX-SKL; MLF", "should"),
    ("S-10", "unknown request headers are ignored", "DG-INF", "must"),
    ("S-11", "sample requests answered well within 60 s", "DG-INF; API InvokeEndpoint", "must"),
    ("S-12", "a 5.9 MB body is accepted (not 413)", "re:Post; P-13", "should"),
    ("S-13", "SIGTERM: in-flight request completes, container exits within 30 s", "DG-INF", "must"),
    ("S-16", "content negotiation: params ignored, 415/406/400 for bad type/accept/body", "MLF; EX-SKL; P-08..P-10",
     "should"),
    ("S-17", "error responses carry a short non-empty body (≤ 4 KiB)", "re:Post; examples#4839", "should"),
    # batch (L1)
    ("B-01", "batch mode: same `serve`, /ping and /invocations", "DG-BT", "must"),
    ("B-02", "works with the batch environment (SAGEMAKER_BATCH=true, strategy, payload, concurrency)",
     "DG-BT; LOCAL", "should"),
    ("B-03", "/execution-parameters: 200 with valid JSON, or 404", "DG-BT", "should"),
    ("B-05", "/execution-parameters within limits: MaxPayloadInMB ≤ 100, concurrency × payload ≤ 100",
     "API CreateTransformJob", "should"),
    ("B-06", "no Accept header → 200", "API TransformInput; LOCAL; xgboost-container#122", "must"),
    ("B-08", "1, 2 and 1,000 records, with and without final newline → as many outputs, in order",
     "API; LOCAL data.py; DG-BTM", "must"),
    ("B-09", "a single headerless CSV row gives exactly one prediction", "LOCAL LineSplitter; P-11", "must"),
    ("M-03", "no listening port other than SAGEMAKER_BIND_TO_PORT (outside SAGEMAKER_SAFE_PORT_RANGE)",
     "DG-PIPE; ITK", "should"),
    # toolkit environment
    ("E-01", "SM_MODEL_DIR=/opt/ml/model", "TTK environment.py", "toolkit"),
    ("E-02", "SM_CHANNELS = sorted JSON list of channels", "TTK environment.py", "toolkit"),
    ("E-03", "SM_CHANNEL_<NAME> = /opt/ml/input/data/<name>", "TTK environment.py", "toolkit"),
    ("E-04", "SM_HPS = JSON of decoded hyperparameters", "TTK environment.py", "toolkit"),
    ("E-06", "SM_OUTPUT_DATA_DIR / SM_OUTPUT_DIR", "TTK environment.py", "toolkit"),
    ("E-07", "SM_INPUT_DIR / SM_INPUT_CONFIG_DIR", "TTK environment.py", "toolkit"),
    ("E-09", "SM_HOSTS / SM_CURRENT_HOST from resourceconfig.json", "TTK environment.py", "toolkit"),
]

CLAUSES: dict[str, Clause] = {row[0]: Clause(*row) for row in _ROWS}


def select(profiles: list[str], only: list[str] | None = None) -> list[Clause]:
    """Clauses of the given profiles (``all`` = every profile), optionally narrowed to IDs."""
    wanted = set(PROFILES) if "all" in profiles else set(profiles)
    unknown = wanted - set(PROFILES)
    if unknown:
        raise ValueError(f"unknown profile(s) {sorted(unknown)}; choose from {', '.join(PROFILES)}, all")
    picked = [c for c in CLAUSES.values() if c.profile in wanted]
    if only:
        missing = set(only) - set(CLAUSES)
        if missing:
            raise ValueError(f"unknown clause(s) {sorted(missing)}")
        picked = [CLAUSES[i] for i in only]
    return picked
