"""The SageMaker container contract as data: every clause ID, its rule, source, profile and test.

This table is the single source of the clause list: ``docs/contract.md`` is generated from it
(``python -m rosetta_conformance.contract_doc``) and a test fails when the two disagree or when
any file of the repository cites an ID that is not here.

Profiles this suite checks black-box (``rosetta conform -p``): ``must`` (what breaks a real job
or endpoint), ``should`` (what breaks some of them or makes them fragile), ``toolkit`` (the
``SM_*`` environment of the training toolkit, seen through a file the image's code writes),
``multi-model`` (AWS's custom-container contract for multi-model endpoints, MM-).
The other kinds are written down but not checked here: ``runtime`` (a promise of Rosetta's own
runtimes, proven by their test suites and the golden cases), ``platform`` (what SageMaker, or
Rosetta's local runner in its place, does), ``untested`` (needs a real AWS job or hardware this
suite does not have), ``info`` (optional behaviour), and the evidence behind the rules:
``pitfall`` (P-, real-world failures) and ``divergence`` (D-, SDK local mode vs the platform).
Source keys (DG-, API, TTK, ITK, LOCAL, EX-, MLF, GRAV) are explained in ``docs/contract.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the profiles ``rosetta conform`` can check
PROFILES = ("must", "should", "toolkit", "multi-model")
#: clauses and references written down but not checked by this suite
DOCUMENTED = ("runtime", "platform", "untested", "info", "pitfall", "divergence")
#: clause families in document order
FAMILIES = {"C": "Common image rules", "T": "Training", "E": "Training toolkit environment (SM_*)",
            "S": "Real-time serving", "B": "Batch transform", "M": "Multi-container endpoints and pipelines",
            "MM": "Multi-model endpoints",
            "P": "Real-world pitfalls (evidence)", "D": "SDK local mode vs the platform (divergences)"}
#: what every ID looks like, wherever it is cited
ID_PATTERN = r"\b(?:MM|[CTESBMDP])-\d{2}\b"


@dataclass(frozen=True)
class Clause:
    id: str
    title: str
    source: str
    profile: str
    how: str = ""

    @property
    def checked(self) -> bool:
        """Checked black-box by this suite (it has a check function)."""
        return self.profile in PROFILES


RT = "Rosetta's runtime tests (runtimes/*/tests) and golden cases (conformance/golden)"
LR = "Rosetta's local runner (orchestrator/rosetta_orchestrator/local) and its tests"

_ROWS: list[tuple[str, str, str, str, str]] = [
    # -- C: common --------------------------------------------------------------------------------
    ("C-01", "`IMAGE train` runs training and `IMAGE serve` serves (the word replaces CMD); an unknown word "
     "exits non-zero", "DG-TRUN, DG-INF, DG-BT; LOCAL", "must",
     "`IMAGE train` on a fake /opt/ml succeeds; `IMAGE not-a-sagemaker-word` exits non-zero within 20 s"),
    ("C-02", "exec-form ENTRYPOINT (not `sh -c`), so PID 1 receives SIGTERM", "DG-TRUN, DG-INF", "must",
     "image config: Entrypoint is not `sh -c …` (no ENTRYPOINT is fine: `train`/`serve` run from PATH as PID 1)"),
    ("C-03", "entrypoint is not tini/docker-init (confused by the train/serve word)", "DG-TRUN, DG-INF", "should",
     "image config: Entrypoint[0] is not tini, docker-init or dumb-init"),
    ("C-04", "nothing baked under /opt/ml (SageMaker mounts over it)", "DG-TRUN", "should",
     "/opt/ml copied out of a created container: no files"),
    ("C-05", "GPU images carry the CUDA toolkit, not NVIDIA drivers", "DG-TRUN, DG-INF", "untested",
     "no GPU host here"),
    ("C-06", "the API's Environment map arrives as environment variables; the image never overrides them",
     "DG-TINFO, DG-INF, DG-BT; API", "platform", LR),
    ("C-07", "every platform/toolkit variable is a string; lists and objects are JSON", "TTK mapping.py; API",
     "runtime", RT),
    ("C-08", "the image is built for the machine that runs it: its Os/Architecture are the host's, and the "
     "instance type's when one is named (Graviton families `ml.<letters><generation>g…` are arm64, every other "
     "family amd64); else the job fails on AWS with `exec format error`", "DG-INF; GRAV", "must",
     "static (L0): `docker image inspect` Os/Architecture against the engine's (`docker version`) and against "
     "`--instance-type` or the manifest's `instance_type` (`local`/`local_gpu` name no hardware)"),
    # -- T: training -------------------------------------------------------------------------------
    ("T-01", "reads /opt/ml/input/config/hyperparameters.json, whose values are all strings", "DG-TINFO; API",
     "must", "train with the manifest's hyperparameters as strings; `bad_hyperparameters` must fail"),
    ("T-02", "accepts both SDK encodings: str(v) (Estimator) and json.dumps(v) (framework estimators)",
     "SDK estimator.py; P-01, P-02", "must",
     "the same job with str(v) and with json.dumps(v) values: both exit 0 with the same model files and sizes"),
    ("T-03", "hyperparameter size limits (value length, map size) are the caller's concern", "issue sdk#314; P-04",
     "untested", "limits not confirmed by AWS documentation"),
    ("T-04", "inputdataconfig.json without ContentType (local-mode shape) works", "DG-TINFO; TTK", "must",
     "train with channels configured without ContentType"),
    ("T-05", "host names come from resourceconfig.json, never hard-coded", "DG-TINFO; TTK", "must",
     'train with `{"current_host": "node-a", "hosts": ["node-a"]}`'),
    ("T-06", "peer host names may resolve late in distributed jobs: retry DNS", "DG-TINFO", "untested",
     "needs a multi-host job"),
    ("T-07", "File-mode channel /opt/ml/input/data/<channel>/ is read", "DG-TINFO; TTK", "must",
     "train with the manifest's channels copied under /opt/ml/input/data"),
    ("T-08", "a read-only (FastFile) channel works: nothing is written into it", "DG-TINFO", "should",
     "train with every channel mounted read-only"),
    ("T-09", "Pipe-mode channels are FIFOs <channel>_<epoch>, read to EOF in turn", "DG-TINFO; P-15", "untested",
     "Rosetta's runtimes read File/FastFile channels; Pipe mode needs a real job"),
    ("T-10", "the platform sets TRAINING_JOB_NAME/TRAINING_JOB_ARN; SM_* come from a toolkit, not the platform",
     "DG-TINFO; LOCAL", "platform", LR),
    ("T-11", "toolkit convention: the program named by SAGEMAKER_PROGRAM is run", "TTK params.py", "runtime",
     "Rosetta's runtimes accept ROSETTA_PROGRAM or SAGEMAKER_PROGRAM as the user file name: " + RT),
    ("T-12", "ContainerEntrypoint/ContainerArguments replace the entrypoint/`train` word", "DG-TRUN; LOCAL",
     "untested", "an image claiming it is run without `train`: not claimed by Rosetta"),
    ("T-13", "the checkpoint folder (/opt/ml/checkpoints, or checkpointconfig.json's LocalPath) is synced to S3 "
     "and restored when a job restarts; a stopped job saves its progress there and the restarted one resumes "
     "from it", "DG-CKPT", "should",
     "with `[training.checkpoint]` (the image opts in; SKIP with the lines to add otherwise): a job with "
     "checkpointconfig.json (LocalPath /opt/ml/checkpoints) gets SIGTERM at `delay` (stopped with an empty "
     "LocalPath, it runs again and is stopped at its first file there): files "
     "must be in LocalPath, its log must not match `resumed`; a new job on a fresh /opt/ml with those files restored "
     "must exit 0, write a model and log a line matching `resumed` (Rosetta's runtimes: D8, golden runs)"),
    ("T-14", "the model goes to /opt/ml/model, packed as model.tar.gz of its contents", "DG-TOUT; LOCAL", "must",
     "files appear in /opt/ml/model; packed with the contents at the archive root (then served, S-01)"),
    ("T-15", "other artifacts go to /opt/ml/output/data, packed as output.tar.gz", "DG-TOUT; LOCAL", "platform",
     LR + " (packs output/data as output.tar.gz)"),
    ("T-16", "exit 0 on success, non-zero on every failure path", "DG-TSIG", "must",
     "good training exits 0; a missing channel, empty channel files and bad hyperparameters exit non-zero"),
    ("T-17", "every failure writes /opt/ml/output/failure, the human reason on the first line", "DG-TOUT; TTK",
     "must", "the T-16 failure paths each leave a failure file whose first line is a reason, not a traceback, "
     "≤ 1024 chars"),
    ("T-18", "an empty /opt/ml/output/success may be written", "TTK files.py; EX-R", "info", "optional"),
    ("T-19", "the toolkit's exit codes: ClientError → 1, else the exception's errno or 1", "TTK trainer.py", "info",
     "optional; Rosetta exits 1 on failure, 143 when stopped"),
    ("T-20", "metrics are found by the job's MetricDefinitions regexes in the logs; the first group parses as a "
     "number", "DG-MET", "should",
     "`[training] metric_definitions` (Name, Regex as for CreateTrainingJob) run over the training log: each "
     "matches, its value is a number (SKIP without definitions)"),
    ("T-21", "SIGTERM reaches the training code; the container exits non-zero well within 120 s", "DG-TRUN; P-05",
     "must",
     "SIGTERM half-way through a `[training.sigterm]` run (or at `delay`): exits non-zero, not 137, within "
     "`timeout`; a run that ends first is repeated with more rows or an earlier signal, else INCONCLUSIVE"),
    ("T-22", "distributed training: every host runs `train`; the leader is hosts[0]", "DG-TINFO; TTK", "untested",
     "needs a multi-host job"),
    # -- E: toolkit environment -------------------------------------------------------------------
    ("E-01", "SM_MODEL_DIR=/opt/ml/model", "TTK environment.py", "toolkit", "env dump of the training code"),
    ("E-02", "SM_CHANNELS = sorted JSON list of channel names", "TTK environment.py", "toolkit",
     "env dump of the training code"),
    ("E-03", "SM_CHANNEL_<NAME> = /opt/ml/input/data/<name>", "TTK environment.py", "toolkit",
     "env dump of the training code"),
    ("E-04", "SM_HPS = JSON object of the decoded hyperparameters given; SageMaker's own keys (`sagemaker_*`, and "
     "`_tuning_objective_metric`, which a tuning job adds to each of its training jobs) are accepted, never "
     "rejected as undeclared, and left out of SM_HPS and of the user's hyperparameters",
     "TTK environment.py", "toolkit", "env dump of the training code"),
    ("E-05", "SM_HP_<NAME> = each decoded hyperparameter (strings as they are, the rest JSON)", "TTK environment.py",
     "toolkit", "env dump of the training code"),
    ("E-06", "SM_OUTPUT_DATA_DIR=/opt/ml/output/data, SM_OUTPUT_DIR=/opt/ml/output", "TTK environment.py",
     "toolkit", "env dump of the training code"),
    ("E-07", "SM_INPUT_DIR=/opt/ml/input, SM_INPUT_CONFIG_DIR=/opt/ml/input/config", "TTK environment.py",
     "toolkit", "env dump of the training code"),
    ("E-08", "SM_NUM_CPUS, SM_NUM_GPUS (and neuron cores) of the host", "TTK environment.py", "runtime", RT),
    ("E-09", "SM_HOSTS (JSON list) and SM_CURRENT_HOST from resourceconfig.json", "TTK environment.py", "toolkit",
     "env dump of the training code"),
    ("E-10", "instance-group variables (SM_CURRENT_INSTANCE_TYPE, SM_INSTANCE_GROUPS, …)", "TTK environment.py",
     "info", "not set by Rosetta's runtimes"),
    ("E-11", "SM_RESOURCE_CONFIG and SM_INPUT_DATA_CONFIG = the two config files as JSON", "TTK environment.py",
     "toolkit", "env dump of the training code, compared with the files the suite wrote"),
    ("E-12", "SM_TRAINING_ENV = JSON of the whole environment mapping", "TTK environment.py", "runtime", RT),
    ("E-13", "SM_USER_ARGS = JSON list `--key value` per hyperparameter, keys sorted, `-k` for one-letter keys",
     "TTK mapping.py to_cmd_args", "toolkit",
     "env dump of the training code: names and order exact; string and number values exact"),
    ("E-14", "entry-point bookkeeping (SM_MODULE_NAME, SM_USER_ENTRY_POINT, SM_LOG_LEVEL, …)", "TTK environment.py",
     "info", "not applicable: Rosetta has no entry-point module"),
    ("E-15", "the toolkit also sets SAGEMAKER_JOB_NAME, CURRENT_HOST, SAGEMAKER_REGION", "TTK environment.py", "info",
     "optional"),
    # -- S: serving ---------------------------------------------------------------------------------
    ("S-01", "serves a model.tar.gz extracted into /opt/ml/model before start", "DG-INF; LOCAL", "must",
     "the T-14 tarball extracted into a fresh directory mounted at /opt/ml/model; the sample invocation → 200"),
    ("S-02", "serves with /opt/ml/model read-only (caches go elsewhere)",
     "autogluon#3064; sagemaker-python-sdk#5698; P-14", "must", "the model mounted read-only; the sample → 200"),
    ("S-03", "HTTP on port 8080: GET /ping 200, POST /invocations 200", "DG-INF, DG-BT", "must",
     "/ping → 200 and the sample → 200 on 8080"),
    ("S-04", "SAGEMAKER_BIND_TO_PORT honoured: that port answers, 8080 does not listen", "DG-PIPE; ITK", "must",
     "SAGEMAKER_BIND_TO_PORT=9123: listening sockets of the container (/proc/<pid>/net/tcp{,6})"),
    ("S-05", "listens on 0.0.0.0, not loopback only", "EX-R; ITK", "must",
     "listening address of 8080; /ping through the published port"),
    ("S-06", "accepts TCP connections within 250 ms", "DG-INF", "must", "20 TCP connects, each < 250 ms"),
    ("S-07", "/ping answers 200 within 2 s, also while an invocation is in flight", "DG-INF, DG-BT", "must",
     "/ping every 20 ms during a 1 MB invocation: all 200 within 2 s (a stall is confirmed by a second window)"),
    ("S-08", "first /ping 200 within the health-check window (default 240 s)", "DG-INF; API", "must",
     "/ping polled every 0.1 s from start: time to the first 200 ≤ `ready_timeout`"),
    ("S-09", "no /ping 200 before the model is loaded; pings answered < 2 s while loading", "DG-INF; EX-SKL; MLF",
     "should", "the sample sent right after the first 200 succeeds (retried only while the server says it is "
     "loading); every ping < 2 s"),
    ("S-10", "unknown request headers are ignored", "DG-INF", "must",
     "the sample with X-Amzn-SageMaker-Custom-Attributes, X-Foo, X-Amzn-Trace-Id: same answer"),
    ("S-11", "requests answered within 60 s", "DG-INF; API InvokeEndpoint", "must",
     "each manifest payload answered < 60 s"),
    ("S-12", "a 5.9 MB body is accepted (not 413): the server's own limit is at least 6 MB", "re:Post; P-13",
     "should", "5.9 MB of valid records → not 413"),
    ("S-13", "SIGTERM: in-flight requests complete, the container exits within 30 s", "DG-INF", "must",
     "SIGTERM 0.3 s into a 1 MB invocation: it completes, the container exits within 30 s"),
    ("S-14", "ContainerHostname names the container; the image does not depend on its host name", "DG-INF",
     "platform", LR),
    ("S-15", "X-Amzn-SageMaker-Custom-Attributes is forwarded verbatim; a response may set it", "API InvokeEndpoint",
     "untested", "only for images that claim it; not claimed by Rosetta"),
    ("S-16", "content negotiation: parameters ignored; 415 bad type, 406 bad Accept, 400 bad body",
     "MLF; EX-SKL; P-08, P-09, P-10", "should",
     "per payload type: plain, `; charset=utf-8`, `Accept: */*` → 200; malformed body → 400; unknown "
     "Content-Type → 415; unknown Accept → 406"),
    ("S-17", "error responses carry a short non-empty body (≤ 4 KiB)", "re:Post; examples#4839", "should",
     "the error responses of the S-16 matrix"),
    ("S-18", "sagemaker-inference-toolkit behaviour (MMS, handlers, exact Content-Type match, 500 for an "
     "unsupported type)", "ITK", "info",
     "reference only: Rosetta deliberately answers 415/406 (S-16) and ignores media-type parameters"),
    ("S-19", "SDK framework models pass SAGEMAKER_PROGRAM, SAGEMAKER_REGION, … as env; the image starts without "
     "them", "SDK model.py", "info", "every check here starts images without them"),
    # -- B: batch transform -------------------------------------------------------------------------
    ("B-01", "batch transform starts the same `serve`: /ping and /invocations", "DG-BT", "must",
     "a server with the batch environment: /ping 200, the sample → 200"),
    ("B-02", "works with SAGEMAKER_BATCH=true and the strategy/payload/concurrency variables", "DG-BT; LOCAL",
     "should", "the sample served with SAGEMAKER_BATCH, SAGEMAKER_BATCH_STRATEGY, SAGEMAKER_MAX_PAYLOAD_IN_MB, "
     "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"),
    ("B-03", "/execution-parameters: 200 with valid JSON, or 404", "DG-BT", "should",
     "GET /execution-parameters: 404, or 200 JSON with valid MaxConcurrentTransforms, BatchStrategy, "
     "MaxPayloadInMB"),
    ("B-04", "without /execution-parameters: MaxConcurrentTransforms 1, MultiRecord, MaxPayloadInMB 6",
     "API; LOCAL entities.py", "platform", LR),
    ("B-05", "/execution-parameters within limits: MaxPayloadInMB ≤ 100, concurrency × payload ≤ 100",
     "API CreateTransformJob", "should", "the values of B-03"),
    ("B-06", "requests without an Accept header succeed (batch sends none unless the job sets one)",
     "API TransformInput; LOCAL; xgboost-container#122; P-09", "must",
     "each payload POSTed without Accept → 200"),
    ("B-07", "SplitType None/Line/RecordIO/TFRecord; records of different files never share a request",
     "API TransformInput; DG-BTM", "platform", LR + " (batching.py)"),
    ("B-08", "one output record per input record, in order; with or without a final newline",
     "API; LOCAL data.py; DG-BTM", "must",
     "1, 2 and 1,000 records, with and without a final newline: as many outputs, each the sample's own "
     "prediction for that row"),
    ("B-09", "CSV headers are not special: a single headerless row gives exactly one prediction",
     "LOCAL LineSplitter; P-11", "must", "one CSV row with and without a newline → one prediction"),
    ("B-10", "AssembleWith=Line adds a newline after each response; output <input>.out per file", "DG-BTM; LOCAL",
     "platform", LR),
    ("B-11", "a bad record fails its whole input file; the other files go on", "DG-BTE; DG-BT", "platform", LR),
    ("B-12", "DataProcessing filters and joins happen outside the container", "DG-BTD", "platform",
     "nothing for the image to do"),
    ("B-13", "a headered CSV file split across payloads, each sent with `Content-Type: text/csv; header=present`, "
     "gives exactly one output per data row, in order", "RFC 4180 §3 (header parameter); API TransformInput "
     "(one ContentType for every request); P-11; issue 13", "must",
     "the payload's `header` line + its rows split into payloads of 2, 3, 7, half and all the lines, each sent "
     "with `text/csv; header=present`: outputs equal the headerless predictions (SKIP without `header`)"),
    # -- M: multi-container ----------------------------------------------------------------------------
    ("M-01", "a chain member: with SAGEMAKER_BIND_TO_PORT it listens there and nowhere near 8080, takes the "
     "content type its predecessor sends and answers with one the next container takes (container k's response "
     "body is container k+1's request body), also beside a copy of itself in one network namespace",
     "DG-PIPE", "should",
     "two copies in one network namespace, each with its own SAGEMAKER_BIND_TO_PORT and SAGEMAKER_SAFE_PORT_RANGE: "
     "both answer /ping and every manifest payload (its content type, no Accept) on their own port; nothing "
     "listens on 8080 or outside those ports and ranges; each answer's media type is a payload type of the "
     "manifest or one of `[serving] output_types`"),
    ("M-02", "label com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true", "DG-PIPE", "must",
     "image config: the label's value is `true`"),
    ("M-03", "no listening port other than SAGEMAKER_BIND_TO_PORT outside SAGEMAKER_SAFE_PORT_RANGE",
     "DG-PIPE; ITK", "should", "listening sockets of the S-04 server"),
    ("M-04", "ContainerHostname names each container (direct invocation, log streams)", "DG-PIPE", "platform",
     "nothing for the image to do"),
    ("M-05", "containers share the instance's memory and CPUs: all models must fit", "DG-PIPE", "untested",
     "depends on the instance type"),
    ("M-06", "pipelines run in batch transform too, every container with the batch environment", "DG-PIPE; P-16",
     "untested", "needs a real pipeline transform job"),
    # -- MM: multi-model endpoints ---------------------------------------------------------------------
    ("MM-01", "label com.amazonaws.sagemaker.capabilities.multi-models=true (CreateModel refuses the image for a "
     "multi-model endpoint without it)", "DG-MME; examples#3470", "multi-model",
     "image config: the label's value is `true`"),
    ("MM-02", "started with SAGEMAKER_MULTI_MODEL=true and nothing in /opt/ml/model, /ping answers 200 with no "
     "model loaded", "DG-MME", "multi-model",
     "`serve` with SAGEMAKER_MULTI_MODEL=true, the models mounted read-only at /opt/ml/models, no /opt/ml/model: "
     "/ping 200 within `ready_timeout`; GET /models 200 lists no model"),
    ("MM-03", "POST /models {\"model_name\", \"url\"} loads the model at url (/opt/ml/models/<name>/model): 200 "
     "once it can serve it", "DG-MME", "multi-model",
     "load the trained model under a new name: 200; right after, it is listed and POST /models/<name>/invoke → 200"),
    ("MM-04", "loading a name that is already loaded → 409", "DG-MME", "multi-model",
     "the same load twice: 200, then 409"),
    ("MM-05", "a bad load request → 4xx with a short message: a body that is not a JSON object, no model_name, "
     "no url, a url that does not exist", "DG-MME; issue 17", "multi-model",
     "each bad body → 4xx (not 2xx, not 5xx) with a non-empty body ≤ 4 KiB; the name stays free (loadable after)"),
    ("MM-06", "GET /models/<name> describes a loaded model ({modelName, modelUrl}); 404 for a name not loaded",
     "DG-MME", "multi-model", "get a loaded model: 200 with its modelName and modelUrl; an unknown name → 404"),
    ("MM-07", "GET /models lists the loaded models ({\"models\": [{modelName, modelUrl}, …]}), paginated: "
     "`nextPageToken` while more remain, passed back as `next_page_token`", "DG-MME", "multi-model",
     "three models loaded, then GET /models?limit=1 following nextPageToken: each model exactly once, the last "
     "page without a token (one page holding all is allowed: `limit` is MMS's parameter, not AWS's)"),
    ("MM-08", "DELETE /models/<name> unloads: 200, then get and invoke → 404 and it is not listed; DELETE of a "
     "name not loaded → 404", "DG-MME", "multi-model", "load, delete, then get/invoke/list; delete an unknown name"),
    ("MM-09", "POST /models/<name>/invoke has the /invocations semantics: the same answers, codecs and errors; "
     "X-Amzn-SageMaker-Target-Model is for logging only; 404 for a model not loaded", "DG-MME", "multi-model",
     "every manifest payload → 200 with the records single-model /invocations gives for it; malformed body → 400, "
     "unknown Content-Type → 415, unknown Accept → 406; with X-Amzn-SageMaker-Target-Model: same answer; an "
     "unloaded name → 404"),
    ("MM-10", "a load never blocks /ping or the invocations of loaded models", "DG-MME; DG-INF (2 s ping)",
     "multi-model",
     "four loads at once while /ping and a loaded model are called in a loop: every ping 200 < 2 s, every "
     "invocation 200 < 2 s, at least one of them overlapping a load (else INCONCLUSIVE)"),
    ("MM-11", "when memory runs out a load answers 507 (SageMaker then unloads idle models and retries), never an "
     "OOM kill or a 5xx", "DG-MME", "multi-model",
     "`serve` with `docker run --memory [multi_model] memory_mb` (no swap): copies of the model padded to "
     "`model_pad_mb` loaded one by one until 507; the container must stay up and answer /ping; no 507 after "
     "enough loads to fill the limit twice → INCONCLUSIVE (the image ignores the padding)"),
    ("MM-12", "unloading frees memory: after a 507, deleting a loaded model lets the next load succeed", "DG-MME",
     "multi-model", "after MM-11's 507: DELETE one loaded model, then the refused load → 200"),
    # -- P: pitfalls (evidence for the rules) --------------------------------------------------------
    ("P-01", "hyperparameters arrive as strings; numbers, booleans and lists need parsing",
     "sagemaker-python-sdk#613; sagemaker-containers#179; EX-R", "pitfall", "T-01, T-02"),
    ("P-02", "SDK 2.110 started JSON-encoding values (`\"x\"`), breaking images that read the file raw",
     "sagemaker-python-sdk#3487", "pitfall", "T-02"),
    ("P-03", "the toolkit logs 'Failed to parse hyperparameter' for plain strings", "sagemaker-training-toolkit#66",
     "pitfall", "-"),
    ("P-04", "hyperparameter values had a length limit", "sagemaker-python-sdk#314", "pitfall", "T-03"),
    ("P-05", "SIGTERM lost behind a wrapper PID 1: checkpoints lost on stop/spot",
     "sagemaker-training-toolkit#125, #173; deep-learning-containers#632", "pitfall", "C-02, T-21"),
    ("P-06", "failing /ping ('did not pass the ping health check'): bad handler, slow load, OOM",
     "sagemaker-python-sdk#1554, #4115; amazon-sagemaker-examples#210, #1072", "pitfall", "S-07, S-08, S-09"),
    ("P-07", "gunicorn worker timeouts and restart loops on slow loads or requests",
     "sagemaker-containers#185; EX-SKL", "pitfall", "S-09, S-11"),
    ("P-08", "`text/csv; charset=utf-8` rejected between pipeline containers and in batch",
     "amazon-sagemaker-examples#3235, #729; sagemaker-inference-toolkit#10", "pitfall", "S-16"),
    ("P-09", "a missing Accept in batch transform crashed servers; `*/*` must fall back to a default",
     "sagemaker-xgboost-container#122; sagemaker-containers#142", "pitfall", "B-06, S-16"),
    ("P-10", "an unsupported Accept reaches the client as ModelError 406", "amazon-sagemaker-examples#4839",
     "pitfall", "S-16, S-17"),
    ("P-11", "CSV headers in batch transform: the header is sent as a record; single rows have none",
     "sagemaker-huggingface-inference-toolkit#24, #25; jina-ai/serve#6055", "pitfall", "B-09, B-13"),
    ("P-12", "without SplitType=Line the whole file is one request: one prediction per file",
     "sagemaker-python-sdk#672; amazon-sagemaker-examples#3783", "pitfall", "B-07"),
    ("P-13", "413 from the server's own body limit although MaxPayloadInMB was raised",
     "sagemaker-python-sdk#1882, #1096; multi-model-server#738", "pitfall", "S-12"),
    ("P-14", "writing into /opt/ml/model at serve time fails: it is read-only",
     "autogluon#3064; sagemaker-tensorflow-serving-container#211", "pitfall", "S-02"),
    ("P-15", "Pipe mode concatenates files: per-file CSV headers appear mid-stream", "awslabs/ml-io#19", "pitfall",
     "T-09"),
    ("P-16", "MultiRecord batch through a multi-container pipeline fails where SingleRecord works",
     "sagemaker-python-sdk#4042", "pitfall", "M-06"),
    ("P-17", "the R example dispatches train/serve with a substring match over all command arguments", "EX-R mars.R",
     "pitfall", "C-01"),
    ("P-18", "MLflow's container hard-codes port 8080 and ignores SAGEMAKER_BIND_TO_PORT", "MLF", "pitfall",
     "S-04, M-03"),
    # -- D: local mode vs the platform ------------------------------------------------------------------
    ("D-01", "local-mode hosts are algo-<i>-<suffix> and eth0; the platform uses algo-<i> and e.g. eth1",
     "LOCAL image.py; DG-TINFO", "divergence", "T-05 renames the host"),
    ("D-02", "local mode sets SAGEMAKER_BATCH=True, the docs say true: compare case-insensitively", "LOCAL",
     "divergence", "B-02"),
    ("D-03", "local mode reads BatchStrategy MultiRecord/SingleRecord, the docs show MULTI_RECORD", "LOCAL entities.py",
     "divergence", "B-03 accepts both spellings"),
    ("D-04", "local mode writes only TrainingInputMode (+ContentType) per channel and File mode",
     "LOCAL image.py", "divergence", "T-04"),
    ("D-05", "local mode polls /ping every 5 s and gives up after about 120 s", "LOCAL entities.py", "divergence",
     "S-08"),
    ("D-06", "local mode maps only some /opt/ml folders: no checkpoints, no Pipe mode", "LOCAL image.py",
     "divergence", "T-09, T-13"),
]

CLAUSES: dict[str, Clause] = {row[0]: Clause(*row) for row in _ROWS}


def select(profiles: list[str], only: list[str] | None = None) -> list[Clause]:
    """Checked clauses of the given profiles (``all`` = every profile), optionally narrowed to IDs."""
    wanted = set(PROFILES) if "all" in profiles else set(profiles)
    unknown = wanted - set(PROFILES)
    if unknown:
        raise ValueError(f"unknown profile(s) {sorted(unknown)}; choose from {', '.join(PROFILES)}, all")
    picked = [c for c in CLAUSES.values() if c.profile in wanted]
    if only:
        missing = set(only) - set(CLAUSES)
        if missing:
            raise ValueError(f"unknown clause(s) {sorted(missing)}")
        unchecked = [i for i in only if not CLAUSES[i].checked]
        if unchecked:
            raise ValueError(f"clause(s) {unchecked} are documented, not checked here (see docs/contract.md)")
        picked = [CLAUSES[i] for i in only]
    return picked
