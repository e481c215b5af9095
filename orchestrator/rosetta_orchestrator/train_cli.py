"""``rosetta train IMAGE --channel NAME=PATH …``: one local training job, as a pipeline's Training step runs it.

The job is the CreateTrainingJob request a Training step would send, given to the local runner's own
executor (:func:`rosetta_orchestrator.local.training.run_training`), so the ``/opt/ml`` layout,
hyperparameters, metrics, failure file, ``model.tar.gz`` and MaxRuntimeInSeconds behave exactly as in
``rosetta pipeline run``. Channels are local files or folders; the outputs go to a local folder.

Hyperparameters are sent as strings (T-02), exactly as typed: a value typed on the command line is a
string, and the SDK's encodings leave a string unchanged (``Estimator``'s ``str(v)``, ``ModelTrainer``'s
``safe_serialize``, Rosetta's ``p.training``). ``--hp-encoding json`` sends the other encoding, that
of SDK v2 framework estimators and estimators with ``source_dir`` (``json.dumps(v)``: ``abc`` →
``"abc"`` with its quotes, ``200`` → ``200``), with each value read as a JSON literal when it is one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from rosetta_orchestrator.local.store import LocalStore, StoreError, split_uri

#: where the request's channels and outputs point (mapped to local paths by :class:`JobFiles`)
INPUT_BUCKET = "rosetta-train-input"
OUTPUT_BUCKET = "rosetta-train-output"
#: the files a job leaves in its folder (removed first when a folder is reused)
ARTIFACTS = ("model.tar.gz", "output.tar.gz", "job.json", "failure")
DEFAULT_OUTPUT = Path("rosetta-train")
#: CreateTrainingJob's limits (botocore's SageMaker service model: HyperParameters,
#: HyperParameterKey/Value, TrainingEnvironmentMap/Key/Value, ChannelName, InputDataConfig,
#: MetricDefinitionList, MetricName/Regex, TrainingJobName)
MAX_HPS, MAX_HP_KEY, MAX_HP_VALUE = 100, 256, 2500
MAX_ENV, MAX_ENV_KEY, MAX_ENV_VALUE = 100, 512, 512
ENV_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
CHANNEL = re.compile(r"[A-Za-z0-9.\-_]{1,64}")
MAX_CHANNELS, MAX_METRICS = 20, 40
JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
#: the training executor's note about a metric line that no MetricDefinitions entry matches
_UNDECLARED = re.compile(r"^\[rosetta\] metric '([^']+)' was printed but no MetricDefinitions entry matches it")


class TrainUsageError(ValueError):
    """A bad ``rosetta train`` argument, reported before any container starts."""


class JobFiles(LocalStore):
    """The store the training executor reads and writes, on local paths: ``s3://rosetta-train-input/<channel>``
    is the channel's file or folder; ``s3://rosetta-train-output/jobs/<job>/output/<file>`` is
    ``<output folder>/<file>``."""

    def __init__(self, channels: Mapping[str, Path], output: Path) -> None:
        super().__init__(output)
        self.channels = dict(channels)

    def describe(self) -> str:
        return f"file://{self.root}"

    def path(self, uri: str) -> Path:
        bucket, key = split_uri(uri)
        if bucket == INPUT_BUCKET:
            name, _, rest = key.partition("/")
            if name not in self.channels:
                raise StoreError(f"no channel {name!r} (given: {', '.join(self.channels) or 'none'})")
            return self.channels[name] / rest if rest else self.channels[name]
        parts = key.split("/", 3)  # jobs/<job>/output/<file>
        if bucket == OUTPUT_BUCKET and len(parts) >= 3 and parts[0] == "jobs" and parts[2] == "output":
            return self.root / parts[3] if len(parts) == 4 else self.root
        raise StoreError(f"{uri} is outside this training job's inputs and outputs")

    def keys(self, uri: str) -> list[str]:
        p = self.path(uri)
        if p.is_file():
            return [uri]
        if not p.is_dir():
            return []
        return [f"{uri.rstrip('/')}/{f.relative_to(p).as_posix()}" for f in sorted(p.rglob("*")) if f.is_file()]


# -- arguments → a CreateTrainingJob request ----------------------------------------------------
def pairs(items: Sequence[str], option: str) -> dict[str, str]:
    """``K=V`` items → a dict; a key given twice is an error (which one was meant?)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TrainUsageError(f"{option} expects NAME=VALUE, got {item!r}")
        if key in out:
            raise TrainUsageError(f"{option} {key} is given twice ({out[key]!r} and {value!r})")
        out[key] = value
    return out


def channels_of(items: Sequence[str], base: Path | None = None) -> dict[str, Path]:
    """``--channel NAME=PATH`` → {name: absolute path}; every path must exist (checked before Docker runs)."""
    out: dict[str, Path] = {}
    for name, raw in pairs(items, "--channel").items():
        if not CHANNEL.fullmatch(name):
            raise TrainUsageError(f"--channel {name}: a channel name is 1-64 characters of A-Z a-z 0-9 . - _")
        if raw.startswith("s3://"):
            raise TrainUsageError(f"--channel {name}={raw}: give a local file or folder (rosetta train runs "
                                  "here; copy the data down first, e.g. aws s3 cp --recursive)")
        path = ((base or Path.cwd()) / Path(raw).expanduser()).resolve()
        if not path.exists():
            raise TrainUsageError(f"--channel {name}={raw}: {path} does not exist")
        out[name] = path
    if len(out) > MAX_CHANNELS:
        raise TrainUsageError(f"{len(out)} channels: SageMaker takes at most {MAX_CHANNELS}")
    return out


def encode_hyperparameters(raw: Mapping[str, str], encoding: str) -> dict[str, str]:
    """The strings ``hyperparameters.json`` holds (T-02); see the module's docstring for both encodings."""
    if len(raw) > MAX_HPS:
        raise TrainUsageError(f"{len(raw)} hyperparameters: SageMaker takes at most {MAX_HPS}")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if encoding == "json":
            try:
                parsed: Any = json.loads(value)
            except ValueError:
                parsed = value
            value = json.dumps(parsed)
        if len(key) > MAX_HP_KEY or len(value) > MAX_HP_VALUE:
            raise TrainUsageError(f"--hp {key[:40]}: SageMaker takes keys up to {MAX_HP_KEY} and values up to "
                                  f"{MAX_HP_VALUE} characters")
        out[key] = value
    return out


def environment_of(items: Sequence[str]) -> dict[str, str]:
    env = pairs(items, "--env")
    if len(env) > MAX_ENV:
        raise TrainUsageError(f"{len(env)} --env variables: SageMaker takes at most {MAX_ENV}")
    for key, value in env.items():
        if not ENV_KEY.fullmatch(key) or len(key) > MAX_ENV_KEY or len(value) > MAX_ENV_VALUE:
            raise TrainUsageError(f"--env {key[:40]}: a name of letters, digits and _ (not first), up to "
                                  f"{MAX_ENV_KEY} characters, and a value up to {MAX_ENV_VALUE}")
    return env


def metrics_of(items: Sequence[str]) -> list[dict[str, str]]:
    """``--metric NAME=REGEX`` (SageMaker's MetricDefinitions: the first group is the value), or a bare
    ``NAME`` for the runtimes' ``#metric NAME=value`` line (as ``p.training(metrics=[NAME])``)."""
    from rosetta_orchestrator.api import metric_definitions

    out: list[dict[str, str]] = []
    for item in items or []:
        name, sep, regex = item.partition("=")
        if not name:
            raise TrainUsageError(f"--metric expects NAME or NAME=REGEX, got {item!r}")
        if not sep:
            out += metric_definitions([name])
            continue
        try:
            groups = re.compile(regex).groups
        except re.error as exc:
            raise TrainUsageError(f"--metric {name}: {regex!r} is not a regular expression: {exc}") from None
        if groups < 1:
            raise TrainUsageError(f"--metric {name}: the regular expression '{regex}' needs a group around the "
                                  f"value (SageMaker reports the first group), as in '{name}=loss: ([0-9.]+)'")
        out.append({"Name": name, "Regex": regex})
    names = [d["Name"] for d in out]
    if len(set(names)) != len(names):
        raise TrainUsageError(f"--metric: a name is given twice ({', '.join(names)})")
    if len(out) > MAX_METRICS:
        raise TrainUsageError(f"{len(out)} metrics: SageMaker takes at most {MAX_METRICS} MetricDefinitions")
    return out


def job_name_for(image: str, given: str | None, now: dt.datetime | None = None) -> str:
    """``--job-name``, else ``<image name>-<UTC time to the millisecond>`` (the SDK's ``name_from_base``)."""
    if given is not None:
        if not JOB_NAME.fullmatch(given):
            raise TrainUsageError(f"--job-name {given!r}: 1-63 letters, digits and hyphens, starting and ending "
                                  "with a letter or digit (SageMaker's TrainingJobName)")
        return given
    base = re.sub(r"[^a-zA-Z0-9]+", "-", image.rsplit("/", 1)[-1].split(":")[0].split("@")[0]).strip("-") or "train"
    t = now or dt.datetime.now(dt.UTC)
    stamp = t.strftime("%Y-%m-%d-%H-%M-%S-") + f"{t.microsecond // 1000:03d}"
    return f"{base[:63 - len(stamp) - 1].rstrip('-')}-{stamp}"


def training_request(*, job: str, image: str, channels: Mapping[str, Path], hyperparameters: Mapping[str, str],
                     metrics: list[dict[str, str]], env: Mapping[str, str], content_type: str | None,
                     max_runtime: int, instance_count: int, instance_type: str) -> dict[str, Any]:
    """The CreateTrainingJob request a Training step would carry, channels and outputs on local paths."""
    from rosetta_orchestrator.sdk import DEFAULT_ROLE

    algorithm: dict[str, Any] = {"TrainingImage": image, "TrainingInputMode": "File"}
    if metrics:
        algorithm["MetricDefinitions"] = metrics
    inputs = []
    for name in channels:
        channel: dict[str, Any] = {"ChannelName": name, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{INPUT_BUCKET}/{name}",
            "S3DataDistributionType": "FullyReplicated"}}}
        if content_type:
            channel["ContentType"] = content_type
        inputs.append(channel)
    request: dict[str, Any] = {
        "TrainingJobName": job,
        "AlgorithmSpecification": algorithm,
        "RoleArn": DEFAULT_ROLE,
        "HyperParameters": dict(hyperparameters),
        "InputDataConfig": inputs,
        "OutputDataConfig": {"S3OutputPath": f"s3://{OUTPUT_BUCKET}/jobs"},
        "ResourceConfig": {"InstanceCount": instance_count, "InstanceType": instance_type, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }
    if env:
        request["Environment"] = dict(env)
    return request


def multi_instance_support(run_training: Callable[..., Any]) -> str | None:
    """How the local trainer takes an instance count: ``"parameter"`` (an ``instance_count`` argument),
    ``"request"`` (it reads ``ResourceConfig.InstanceCount``), or None (one instance per job)."""
    if "instance_count" in inspect.signature(run_training).parameters:
        return "parameter"
    try:
        source = inspect.getsource(inspect.getmodule(run_training) or run_training)
    except (OSError, TypeError):
        return None
    return "request" if "InstanceCount" in source else None


# -- the command ----------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from rosetta_orchestrator.local import container, training
    from rosetta_orchestrator.local.context import JobContext, Models, StepFailed

    channels = channels_of(args.channel)
    hps = encode_hyperparameters(pairs(args.hp, "--hp"), args.hp_encoding)
    env = environment_of(args.env)
    metrics = metrics_of(args.metric)
    if args.max_runtime < 1:
        raise TrainUsageError(f"--max-runtime {args.max_runtime}: at least 1 second")
    if args.instance_count < 1:
        raise TrainUsageError(f"--instance-count {args.instance_count}: at least 1")
    support = multi_instance_support(training.run_training)
    if args.instance_count > 1 and support is None:
        raise TrainUsageError(f"--instance-count {args.instance_count}: the local trainer runs one instance per "
                              "job for now (multi-instance jobs are not built yet); use --instance-count 1")
    job = job_name_for(args.image, args.job_name)
    out = Path(args.output or DEFAULT_OUTPUT / job).resolve()
    _check_output(out)
    if not container.image_present(args.image):  # the first call to the engine
        raise TrainUsageError(f"image {args.image} is not on the local engine, which never pulls: build it "
                              "(rosetta build …, docker build -t …) or docker pull/tag it")
    _clear(out)
    request = training_request(job=job, image=args.image, channels=channels, hyperparameters=hps, metrics=metrics,
                               env=env, content_type=args.content_type or None, max_runtime=args.max_runtime,
                               instance_count=args.instance_count, instance_type=args.instance_type)

    def log(line: str) -> None:
        undeclared = _UNDECLARED.match(line)
        if undeclared:  # the executor's hint names the pipeline API; here the option is the fix
            line = (f"[rosetta] metric {undeclared.group(1)!r} was printed but no --metric declares it, so "
                    f"SageMaker would not report it: add --metric {undeclared.group(1)}")
        console.print(f"[cyan]\\[train][/] {escape(line)}", highlight=False, soft_wrap=True)

    ctx = JobContext(step="train", job_name=job, workdir=out / ".job", store=JobFiles(channels, out), log=log,
                     models=Models())
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold cyan]rosetta[/] training job {job}: {escape(args.image)} train, "
                  f"{len(channels)} channel(s), {len(hps)} hyperparameter(s) → {out}", highlight=False)
    t0 = time.monotonic()
    try:
        extra = {"instance_count": args.instance_count} if support == "parameter" else {}
        described = training.run_training(ctx, request, **extra)
    except KeyboardInterrupt:
        container.remove_all()
        container.wait_removals()
        _finish(out, ctx.workdir)
        console.print("[yellow]interrupted; the job's container was removed[/]")
        return 130
    except StepFailed as exc:
        container.wait_removals()
        seconds = time.monotonic() - t0
        failure = _finish(out, ctx.workdir)
        _write_job(out, request, "Failed", seconds, reason=exc.reason, exit_code=exc.exit_code)
        console.print(f"[red]error:[/] {escape(exc.reason)}", highlight=False, soft_wrap=True)
        where = f"failure file {failure}" if failure else f"job folder {out}"
        code = f"exit code {exc.exit_code}; " if exc.exit_code is not None else ""
        console.print(f"[dim]training job {job} failed after {seconds:.1f} s ({code}{where})[/]", highlight=False,
                      soft_wrap=True)
        return 1
    container.wait_removals()
    seconds = time.monotonic() - t0
    _finish(out, ctx.workdir)
    _write_job(out, request, "Completed", seconds, described=described)
    _print_result(console, job, args.image, out, described, seconds)
    return 0


def _check_output(out: Path) -> None:
    """The output folder is new, empty, or an earlier job's (it holds ``job.json``): nothing of the user's
    is ever removed."""
    if out.exists() and not out.is_dir():
        raise TrainUsageError(f"--output {out}: a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "job.json").is_file():
        raise TrainUsageError(f"--output {out}: the folder is not empty and holds no job.json of an earlier "
                              "rosetta train: give a new or empty folder")


def _clear(out: Path) -> None:
    """Reusing an earlier job's folder: remove what that job left there, and only that."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ARTIFACTS:
        (out / name).unlink(missing_ok=True)
    for name in ("ml", "hosts", ".job"):
        shutil.rmtree(out / name, ignore_errors=True)


def _finish(out: Path, work: Path) -> Path | None:
    """Keep the job's ``/opt/ml`` as ``<out>/ml`` (or one per host, ``<out>/hosts/<host>``: config, model,
    output, failure file) without the copies of the channel data; the failure file (of the first host
    that wrote one) is copied next to the job's outputs."""
    for name in ("ml", "hosts"):
        shutil.rmtree(out / name, ignore_errors=True)
        if (work / name).is_dir():
            (work / name).rename(out / name)
    roots = [out / "ml"] if (out / "ml").is_dir() else sorted(p for p in (out / "hosts").glob("*") if p.is_dir())
    for root in roots:
        shutil.rmtree(root / "input" / "data", ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    failure = next((r / "output" / "failure" for r in roots if (r / "output" / "failure").is_file()), None)
    if failure is None:
        return None
    shutil.copy2(failure, out / "failure")
    return out / "failure"


def _write_job(out: Path, request: dict[str, Any], status: str, seconds: float, *,
               described: dict[str, Any] | None = None, reason: str = "", exit_code: int | None = None) -> None:
    """``job.json``: DescribeTrainingJob's shape (what ``rosetta endpoint up`` and doctor read back)."""
    doc: dict[str, Any] = {**request, **(described or {}), "TrainingJobStatus": status,
                           "TrainingTimeInSeconds": round(seconds, 3)}
    if status == "Completed":
        doc["ModelArtifacts"] = {**doc.get("ModelArtifacts", {}), "LocalPath": str(out / "model.tar.gz")}
    else:
        doc["FailureReason"] = reason
        doc["ExitCode"] = exit_code
    (out / "job.json").write_text(json.dumps(doc, indent=2) + "\n")


def _print_result(console: Console, job: str, image: str, out: Path, described: dict[str, Any],
                  seconds: float) -> None:
    from rosetta_orchestrator.ui import is_plain, table

    metrics = described.get("FinalMetricDataList") or []
    if metrics:
        table(console, f"metrics of {job} (FinalMetricDataList)", ("metric", "value"),
              [(str(m["MetricName"]), f"{m['Value']:g}") for m in metrics], plain=is_plain(console),
              right=("value",))
    model = out / "model.tar.gz"
    extra = ", output.tar.gz" if (out / "output.tar.gz").exists() else ""
    console.print(f"[green]✔ training job {job}[/] completed in {seconds:.1f} s: {model}{extra}", highlight=False,
                  soft_wrap=True)
    console.print(f"next: rosetta endpoint up {job} --image {image} --model {model}", highlight=False, soft_wrap=True)
    print(model)  # stdout: the artifact alone, for scripts (MODEL=$(rosetta train …))


def add_parser(subparsers: Any, console: Console, guard: Callable[[Callable[[argparse.Namespace], int]],
                                                                   Callable[[argparse.Namespace], int]]) -> None:
    q: argparse.ArgumentParser = subparsers.add_parser(
        "train", help="run one training job here with Docker (IMAGE train on a SageMaker /opt/ml)",
        description=(__doc__ or "").split("\n\n")[0])
    q.add_argument("image", help="the training image (on the local engine; never pulled)")
    q.add_argument("--channel", action="append", default=[], metavar="NAME=PATH",
                   help="a channel from a local file or folder (repeatable): /opt/ml/input/data/NAME")
    q.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE",
                   help="a hyperparameter (repeatable), sent as the string typed")
    q.add_argument("--hp-encoding", choices=("str", "json"), default="str",
                   help="str: values as typed (Estimator, ModelTrainer); json: json.dumps of each value read as a "
                        "JSON literal, as SDK v2 framework estimators send them (default: str)")
    q.add_argument("--metric", action="append", default=[], metavar="NAME=REGEX",
                   help="a MetricDefinition (first group = the value), or NAME alone for the runtimes' "
                        "'#metric NAME=value' line (repeatable)")
    q.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="container environment")
    q.add_argument("--output", metavar="DIR",
                   help=f"folder for model.tar.gz, output.tar.gz, job.json and the job's /opt/ml "
                        f"(default: ./{DEFAULT_OUTPUT}/<job name>)")
    q.add_argument("--job-name", help="TrainingJobName (default: <image name>-<UTC time>)")
    q.add_argument("--content-type", default="text/csv",
                   help="each channel's ContentType in inputdataconfig.json (default text/csv; '' for none)")
    q.add_argument("--max-runtime", type=int, default=86400, metavar="SECONDS",
                   help="MaxRuntimeInSeconds: SIGTERM after it, then 120 s to stop (default 86400)")
    q.add_argument("--instance-count", type=int, default=1, metavar="N", help="instances (default 1)")
    q.add_argument("--instance-type", default="ml.m5.large", help="ResourceConfig.InstanceType (recorded only)")
    q.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    q.set_defaults(func=guard(lambda args: cmd_train(args, console)))
