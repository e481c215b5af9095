"""Declare a mixed-language pipeline in Python; compile it to the SageMaker SDK's own objects.

Every method returns a small handle around the SDK step it built (``handle.step``), so users can
pass SDK properties around, add their own SDK steps with :meth:`Pipeline.add`, or take the SDK
``Pipeline`` itself from :meth:`Pipeline.sdk_pipeline`. Nothing here touches the network.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

from rosetta_orchestrator.sdk import DEFAULT_ROLE, sdk, session

#: the folder of the pipeline file being loaded (set by the loader): relative paths given to
#: ``upload()`` and ``code=`` resolve against it, so a pipeline runs from any working directory
BASE_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar("rosetta_base_dir", default=None)
#: the execution role a Pipeline takes when none is given (``upsert --role`` sets it while loading)
ROLE: contextvars.ContextVar[str] = contextvars.ContextVar("rosetta_role", default=DEFAULT_ROLE)

#: how a processing script is started, by file extension (the Rosetta images ship these)
INTERPRETERS: dict[str, list[str]] = {".py": ["python3"], ".r": ["Rscript"], ".jl": ["julia"]}
PROCESSING = "/opt/ml/processing"
DEFAULT_INSTANCE = "ml.m5.large"

H = TypeVar("H", bound="StepHandle")
Value = Any  # a plain value or an SDK PipelineVariable (parameter, property, Join, …)


def runtime_of(image: str) -> str:
    """Best guess of a Rosetta runtime from an image name (for graphs and tables)."""
    name = image.rsplit("/", 1)[-1].split(":")[0].lower()
    for runtime in ("python", "julia"):
        if runtime in name:
            return runtime
    if name == "r" or name.endswith("-r") or name.startswith("r-") or "-r-" in name:
        return "r"
    return "other"


@dataclass
class StepHandle:
    """A built SDK step plus what Rosetta knows about it."""

    name: str
    step: Any
    image: Value
    runtime: str

    @property
    def properties(self) -> Any:
        return self.step.properties


@dataclass
class ProcessingHandle(StepHandle):
    property_files: dict[str, Any] = field(default_factory=dict)

    def output(self, name: str) -> Any:
        """The S3 URI of a named output (a step property: creates the dependency)."""
        return self.step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    def json(self, property_file: str, path: str) -> Any:
        """``JsonGet``: the value at ``path`` (``a.b[0].c``) in one of the step's property files."""
        if property_file not in self.property_files:
            raise ValueError(f"step {self.name} declares no property file {property_file!r} "
                             f"(declared: {', '.join(self.property_files) or 'none'}; see property_files=)")
        return sdk().JsonGet(step_name=self.name, property_file=self.property_files[property_file], json_path=path)


@dataclass
class TrainingHandle(StepHandle):
    @property
    def model_data(self) -> Any:
        """``s3://…/model.tar.gz`` of the trained model (T-14)."""
        return self.step.properties.ModelArtifacts.S3ModelArtifacts

    def metric(self, name: str) -> Any:
        """The final value of a declared metric (``FinalMetricDataList['name'].Value``)."""
        return self.step.properties.FinalMetricDataList[name].Value


@dataclass
class TuningHandle(StepHandle):
    """A Tuning step; its training jobs write to ``s3://<bucket>/<output_prefix>/<job>/output/``."""

    bucket: str = ""
    output_prefix: str = ""

    @property
    def best_job_name(self) -> Any:
        """``BestTrainingJob.TrainingJobName``."""
        return self.step.properties.BestTrainingJob.TrainingJobName

    @property
    def best_objective(self) -> Any:
        """The best job's final objective metric value."""
        return self.step.properties.BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric.Value

    @property
    def best_model_data(self) -> Any:
        """``model.tar.gz`` of the best training job (the SDK's ``get_top_model_s3_uri(0, …)``)."""
        return self.top_model_data(0)

    def top_model_data(self, k: int) -> Any:
        """``model.tar.gz`` of the k-th best training job (0 = the best; at most 49)."""
        return self.step.get_top_model_s3_uri(top_k=k, s3_bucket=self.bucket, prefix=self.output_prefix)


@dataclass
class ModelHandle(StepHandle):
    @property
    def model_name(self) -> Any:
        return self.step.properties.ModelName


@dataclass
class RegisterHandle(StepHandle):
    @property
    def package_arn(self) -> Any:
        """The registered version's ARN (``ModelPackageArn``)."""
        return self.step.properties.ModelPackageArn


@dataclass
class ConditionHandle(StepHandle):
    @property
    def outcome(self) -> Any:
        return self.step.properties.Outcome


@dataclass
class TransformHandle(StepHandle):
    @property
    def output(self) -> Any:
        """The S3 prefix holding ``<input file>.out`` for every input file (B-10)."""
        return self.step.properties.TransformOutput.S3OutputPath


@dataclass
class Pipeline:
    """A SageMaker Pipeline whose steps may run images of different Rosetta runtimes.

    ``bucket`` is the S3 bucket for code, data and artifacts (locally: a folder); it is also the
    SDK's default bucket, so the SDK never asks STS for the account.
    """

    name: str
    bucket: str = "rosetta-artifacts"
    role: str = field(default_factory=ROLE.get)
    instance_type: str = DEFAULT_INSTANCE
    description: str = ""
    steps: list[StepHandle] = field(default_factory=list)
    parameters: list[Any] = field(default_factory=list)
    #: local files to put at these S3 URIs before a run (code and seed data)
    assets: dict[str, Path] = field(default_factory=dict)
    #: relative paths resolve against this folder (the pipeline file's, when the CLI loads it)
    base_dir: Path = field(default_factory=lambda: BASE_DIR.get() or Path.cwd())
    #: steps placed inside a condition's branches (not top-level steps of the definition)
    nested: list[StepHandle] = field(default_factory=list)
    _session: Any = field(default=None, repr=False)

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = session(self.bucket)
        return self._session

    def use_session(self, sess: Any) -> None:
        """Build steps against another SDK session (e.g. one talking to moto or AWS)."""
        self._session = sess

    def s3(self, *parts: Value) -> Any:
        """``s3://bucket/<pipeline>/<parts…>``; a ``Join`` when a part is a pipeline variable."""
        values = [f"s3://{self.bucket}", self.name, *parts]
        if all(isinstance(v, str) for v in values):
            return "/".join(values)
        return sdk().Join(on="/", values=values)

    def run_prefix(self, step: str, *parts: str) -> Any:
        """A per-execution output prefix, so runs never overwrite each other."""
        return self.s3("runs", sdk().ExecutionVariables.PIPELINE_EXECUTION_ID, step, *parts)

    def path(self, local: str | Path) -> Path:
        """``local`` resolved against the pipeline file's folder (absolute paths stay)."""
        return (self.base_dir / Path(local).expanduser()).resolve()

    def upload(self, local: str | Path, key: str | None = None) -> str:
        """Declare a local file or folder that the pipeline reads from S3; returns its S3 URI.

        A relative path is taken from the pipeline file's folder. Uploaded by ``rosetta pipeline
        upsert`` and staged by the local runner. The key holds a content hash, so an edited file
        never reuses a stale object.
        """
        path = self.path(local)
        if not path.exists():
            raise FileNotFoundError(f"p.upload({str(local)!r}): {path} does not exist (relative paths are "
                                    f"taken from the pipeline file's folder {self.base_dir})")
        digest = _digest(path)
        uri = self.s3("assets", key or f"{path.stem}-{digest}", *([path.name] if path.is_file() else []))
        self.assets[uri] = path
        return str(uri)

    def join(self, *values: Value, on: str = "") -> Any:
        """``Std:Join`` of strings and pipeline variables (a plain string when all are strings)."""
        if all(isinstance(v, str) for v in values):
            return on.join(values)
        return sdk().Join(on=on, values=list(values))

    def parameter(self, name: str, default: str | int | float | bool) -> Any:
        """A pipeline parameter; its type follows the default's type."""
        s = sdk()
        cls = (s.ParameterBoolean if isinstance(default, bool) else s.ParameterInteger
               if isinstance(default, int) else s.ParameterFloat if isinstance(default, float)
               else s.ParameterString)
        param = cls(name=name, default_value=default)
        self.parameters.append(param)
        return param

    def add(self, step: Any, *, image: Value = "", runtime: str | None = None) -> StepHandle:
        """Add any SDK step (a user's own ``TrainingStep``, ``ConditionStep``…)."""
        handle = StepHandle(step.name, step, image, runtime or (runtime_of(image) if isinstance(image, str)
                                                                  else "other"))
        return self._keep(handle)

    def _keep(self, handle: H) -> H:
        if any(h.name == handle.name for h in [*self.steps, *self.nested]):
            raise ValueError(f"duplicate step name {handle.name!r}")
        self.steps.append(handle)
        return handle

    def _branch(self, items: Sequence[Any], condition: str) -> list[Any]:
        """SDK steps for a branch; handles made by this pipeline move out of the top level."""
        out = []
        for item in items:
            handle = item if isinstance(item, StepHandle) else None
            if handle is None:
                out.append(item)
                continue
            if handle in self.steps:
                self.steps.remove(handle)
                self.nested.append(handle)
            elif handle not in self.nested:
                raise ValueError(f"{condition}: step {handle.name} belongs to another pipeline")
            out.append(handle.step)
        return out

    def _runtime(self, image: Value, runtime: str | None) -> str:
        if runtime:
            return runtime
        if isinstance(image, str):
            return runtime_of(image)
        default = getattr(image, "default_value", None)
        return runtime_of(default) if isinstance(default, str) else "other"

    # -- step types -------------------------------------------------------------------------
    def processing(self, name: str, *, image: Value, code: str | Path | None = None,
                   entrypoint: Sequence[Value] | None = None, inputs: Mapping[str, Value] | None = None,
                   outputs: Sequence[str] = (), arguments: Sequence[Value] = (),
                   env: Mapping[str, Value] | None = None, runtime: str | None = None,
                   property_files: Mapping[str, tuple[str, str]] | Sequence[Any] = (),
                   depends_on: Sequence[Any] = (), cache: str | bool | None = None,
                   retry: Sequence[Any] = (), instance_count: Value = 1,
                   distribution: str | Mapping[str, str] = "FullyReplicated") -> ProcessingHandle:
        """A processing job: ``inputs`` land in ``/opt/ml/processing/input/<name>``, ``outputs`` are
        collected from ``/opt/ml/processing/output/<name>``; ``code`` (a .py, .R or .jl file)
        is shipped as input ``code`` and started with the matching interpreter.

        ``instance_count`` hosts run the script; ``distribution`` (one value, or per input name)
        is ``FullyReplicated`` (every host gets every file) or ``ShardedByS3Key`` (each host one
        share of the objects); every host's outputs are merged.

        ``property_files={"evaluation": ("evaluation", "evaluation.json")}`` declares a property
        file (name: (output, path in it)) for :meth:`ProcessingHandle.json`; SDK ``PropertyFile``
        objects are accepted too."""
        s = sdk()
        proc_inputs = [_proc_input(ch, uri, f"{PROCESSING}/input/{ch}", _distribution(distribution, ch))
                       for ch, uri in (inputs or {}).items()]
        if code is not None:
            script = self.path(code)
            if not script.is_file():
                raise FileNotFoundError(f"step {name}: code file {script} does not exist (relative paths are "
                                        f"taken from the pipeline file's folder {self.base_dir})")
            proc_inputs.append(_proc_input("code", self.upload(script), f"{PROCESSING}/input/code"))
            interpreter = INTERPRETERS.get(script.suffix.lower())
            if entrypoint is None:
                if interpreter is None:
                    raise ValueError(f"{name}: no interpreter known for {script.name}; pass entrypoint=")
                entrypoint = [*interpreter, f"{PROCESSING}/input/code/{script.name}"]
        if not entrypoint:
            raise ValueError(f"{name}: give code= or entrypoint=")
        proc_outputs = [s.ProcessingOutput(output_name=o, s3_output=s.ProcessingS3Output(
            s3_uri=self.run_prefix(name, o), local_path=f"{PROCESSING}/output/{o}", s3_upload_mode="EndOfJob"))
            for o in outputs]
        processor = s.Processor(role=self.role, image_uri=image, instance_count=instance_count,
                                instance_type=self.instance_type, entrypoint=list(entrypoint),
                                env=dict(env or {}) or None, sagemaker_session=self.session,
                                base_job_name=_job_base(name))
        args = processor.run(inputs=proc_inputs, outputs=proc_outputs,
                             arguments=[_as_str(a) for a in arguments] or None)
        files = _property_files(name, property_files, outputs)
        step = s.ProcessingStep(name=name, step_args=args, property_files=list(files.values()) or None,
                                depends_on=list(depends_on) or None, cache_config=_cache(cache),
                                retry_policies=list(retry) or None)
        return self._keep(ProcessingHandle(name, step, image, self._runtime(image, runtime), files))

    def training(self, name: str, *, image: Value, inputs: Mapping[str, Value],
                 hyperparameters: Mapping[str, Value] | None = None, env: Mapping[str, Value] | None = None,
                 content_type: str = "text/csv", max_runtime: int = 3600, runtime: str | None = None,
                 depends_on: Sequence[Any] = (), metrics: Sequence[str] | Mapping[str, str] = (),
                 cache: str | bool | None = None, retry: Sequence[Any] = (), instance_count: Value = 1,
                 distribution: str | Mapping[str, str] = "FullyReplicated", checkpoint: bool | Value = None,
                 checkpoint_local: str | None = None) -> TrainingHandle:
        """A training job (``IMAGE train``); every hyperparameter is sent as a string (T-02).

        ``instance_count`` hosts (``algo-1`` …) train together; ``distribution`` (one value, or per
        channel) is ``FullyReplicated`` or ``ShardedByS3Key``. ``checkpoint=True`` keeps the
        checkpoint folder (``checkpoint_local``, default ``/opt/ml/checkpoints``) in
        ``s3://…/runs/<execution>/<step>/checkpoints`` (an S3 URI of your own otherwise): a retried
        or resumed job starts from it (``load_checkpoint()``).

        ``metrics``: the names the training code logs with ``log_metric`` (each becomes a
        MetricDefinition matching the runtimes' line ``#metric <name>=<value>``), or
        ``{name: regex}`` for your own regular expressions (first group = the value). SageMaker
        fills ``FinalMetricDataList`` only through these definitions, and so does the local runner.
        """
        s = sdk()
        ckpt = None
        if checkpoint is not None and checkpoint is not False:
            uri = self.run_prefix(name, "checkpoints") if checkpoint is True else checkpoint
            ckpt = s.CheckpointConfig(s3_uri=uri, local_path=checkpoint_local or "/opt/ml/checkpoints")
        trainer = self._trainer(name, image, self.run_prefix(name), hyperparameters, env, max_runtime,
                                instance_count, metrics, ckpt)
        channels = _channels(inputs, content_type, distribution)
        step = s.TrainingStep(name=name, step_args=trainer.train(input_data_config=channels),
                              depends_on=list(depends_on) or None, cache_config=_cache(cache),
                              retry_policies=list(retry) or None)
        return self._keep(TrainingHandle(name, step, image, self._runtime(image, runtime)))

    def _trainer(self, name: str, image: Value, output: Value, hyperparameters: Mapping[str, Value] | None,
                 env: Mapping[str, Value] | None, max_runtime: int, instance_count: Value,
                 metrics: Sequence[str] | Mapping[str, str], checkpoint: Any = None) -> Any:
        s = sdk()
        trainer = s.ModelTrainer(
            training_image=image, role=self.role, sagemaker_session=self.session, base_job_name=_job_base(name),
            compute=s.Compute(instance_type=self.instance_type, instance_count=instance_count),
            output_data_config=s.OutputDataConfig(s3_output_path=output),
            stopping_condition=s.StoppingCondition(max_runtime_in_seconds=max_runtime),
            hyperparameters={k: _as_str(v) for k, v in (hyperparameters or {}).items()},
            environment=dict(env or {}) or None, checkpoint_config=checkpoint)
        definitions = metric_definitions(metrics)
        if definitions:
            trainer = trainer.with_metric_definitions(
                [s.MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in definitions])
        return trainer

    def tuning(self, name: str, *, image: Value, inputs: Mapping[str, Value], ranges: Mapping[str, Any],
               objective: str, objective_type: str = "Maximize", metrics: Sequence[str] | Mapping[str, str] = (),
               strategy: str = "Random", max_jobs: int | None = None, max_parallel: int = 1,
               hyperparameters: Mapping[str, Value] | None = None, env: Mapping[str, Value] | None = None,
               content_type: str = "text/csv", max_runtime: int = 3600, instance_count: Value = 1,
               distribution: str | Mapping[str, str] = "FullyReplicated", seed: int | None = None,
               runtime: str | None = None, depends_on: Sequence[Any] = (), cache: str | bool | None = None,
               retry: Sequence[Any] = ()) -> TuningHandle:
        """A hyperparameter tuning job (the SDK's ``HyperparameterTuner`` in a ``TuningStep``).

        ``ranges``: ``{"ntree": (50, 500)}`` (integers: an Integer range), ``(0.01, 0.3, "Logarithmic")``
        (Continuous, with a scaling type), ``["gini", "entropy"]`` (Categorical), or SDK
        ``IntegerParameter``/``ContinuousParameter``/``CategoricalParameter``. ``objective``: a
        metric the training code logs (declared like ``metrics``; added when missing),
        ``objective_type`` ``Maximize`` or ``Minimize``. ``strategy``: ``Random``, ``Grid``
        (categorical ranges only; ``max_jobs`` left out), ``Bayesian`` (locally Optuna's TPE sampler)
        or ``Hyperband`` (run as Random locally). ``hyperparameters`` are the static ones. Training jobs write to
        ``s3://<bucket>/<pipeline>/tuning/<name>/<job>/output/``, so ``handle.best_model_data`` is
        the SDK's ``get_top_model_s3_uri(0, …)``; ``handle.best_job_name`` the best job's name.
        """
        s = sdk()
        prefix = f"{self.name}/tuning/{_job_base(name)}"
        if isinstance(metrics, Mapping):
            definitions = metric_definitions(metrics)
        else:
            definitions = metric_definitions([*metrics, *([] if objective in metrics else [objective])])
        if objective not in [d["Name"] for d in definitions]:
            raise ValueError(f"{name}: objective {objective!r} is not among the metrics {list(metrics)}")
        trainer = self._trainer(name, image, f"s3://{self.bucket}/{prefix}", hyperparameters, env, max_runtime,
                                instance_count, ())
        tuner = s.HyperparameterTuner(
            trainer, objective, {k: _range(k, v) for k, v in ranges.items()}, metric_definitions=definitions,
            strategy=strategy, objective_type=objective_type, max_jobs=max_jobs, max_parallel_jobs=max_parallel,
            random_seed=seed, base_tuning_job_name=_job_base(name)[:20])
        step = s.TuningStep(name=name, step_args=tuner.tune(inputs=_channels(inputs, content_type, distribution)),
                            depends_on=list(depends_on) or None, cache_config=_cache(cache),
                            retry_policies=list(retry) or None)
        return self._keep(TuningHandle(name, step, image, self._runtime(image, runtime), self.bucket, prefix))

    def model(self, name: str, *, model_data: Value = None, image: Value | None = None,
              trained_by: TrainingHandle | TuningHandle | None = None, env: Mapping[str, str] | None = None,
              runtime: str | None = None, package: Value = None,
              containers: Sequence[TrainingHandle | TuningHandle | Mapping[str, Any]] | None = None,
              mode: str = "Serial") -> ModelHandle:
        """A SageMaker Model (``IMAGE serve`` + ``model.tar.gz``); image defaults to the trainer's.

        ``package=ARN`` makes the model from a registered model package version instead (its
        image and model data come from the registry; ``env`` is added to the package's).

        ``containers=[...]`` makes a multi-container model (an inference pipeline, 2 to 15
        containers, CreateModel ``Containers``) run as ``mode`` ``Serial`` (container k's answer is
        container k+1's request) or ``Direct``; each entry is a training or tuning handle (its
        image and model) or a mapping with ``image``, ``model_data`` or ``trained_by``, and
        optionally ``env`` and ``hostname`` (ContainerHostname). ``env`` is added to every container's."""
        s = sdk()
        if containers is not None:
            return self._multi_model(name, containers, mode, env, runtime)
        if package is not None:
            from sagemaker.core.workflow.pipeline_context import _ModelStepArguments

            args = _ModelStepArguments(SimpleNamespace(sagemaker_session=self.session))
            container: dict[str, Any] = {"ModelPackageName": package}
            if env:
                container["Environment"] = dict(env)
            args.create_model_request = {"PrimaryContainer": container, "ExecutionRoleArn": self.role}
            args.caller_name = "create_model"
            step = s.ModelStep(name=name, step_args=args)
            return self._keep(ModelHandle(name, step, image or "", runtime or "other"))
        if model_data is None:
            raise ValueError(f"{name}: give model_data= (or package=)")
        image = image if image is not None else (trained_by.image if trained_by else None)
        if image is None:
            raise ValueError(f"{name}: give image= or trained_by=")
        builder = s.ModelBuilder(image_uri=image, s3_model_data_url=model_data, sagemaker_session=self.session,
                                 role_arn=self.role, env_vars=dict(env or {}))
        step = s.ModelStep(name=name, step_args=builder.build())
        return self._keep(ModelHandle(name, step, image, self._runtime(image, runtime)))

    def _multi_model(self, name: str, containers: Sequence[TrainingHandle | TuningHandle | Mapping[str, Any]],
                     mode: str, env: Mapping[str, str] | None, runtime: str | None) -> ModelHandle:
        from sagemaker.core.workflow.pipeline_context import _ModelStepArguments

        if not 2 <= len(containers) <= 15:
            raise ValueError(f"{name}: a multi-container model has 2 to 15 containers (got {len(containers)})")
        if mode not in ("Serial", "Direct"):
            raise ValueError(f"{name}: mode must be 'Serial' or 'Direct' (InferenceExecutionConfig.Mode), got {mode!r}")
        defs: list[dict[str, Any]] = []
        images: list[Value] = []
        for k, entry in enumerate(containers, start=1):
            spec: Mapping[str, Any] = {"trained_by": entry} if isinstance(entry, StepHandle) else entry
            unknown = set(spec) - {"image", "model_data", "trained_by", "env", "hostname"}
            if unknown:
                raise ValueError(f"{name}: container {k} has unknown keys {sorted(unknown)} "
                                 "(image, model_data, trained_by, env, hostname)")
            by = spec.get("trained_by")
            image = spec.get("image") if spec.get("image") is not None else (by.image if by else None)
            data = spec.get("model_data")
            if data is None and by is not None:
                data = by.best_model_data if isinstance(by, TuningHandle) else by.model_data
            if image is None:
                raise ValueError(f"{name}: container {k} needs image= or trained_by=")
            container: dict[str, Any] = {"Image": image}
            if data is not None:
                container["ModelDataUrl"] = data
            environment = {**dict(env or {}), **dict(spec.get("env") or {})}
            if environment:
                container["Environment"] = environment
            if spec.get("hostname"):
                container["ContainerHostname"] = spec["hostname"]
            defs.append(container)
            images.append(image)
        args = _ModelStepArguments(SimpleNamespace(sagemaker_session=self.session))
        args.create_model_request = {"Containers": defs, "InferenceExecutionConfig": {"Mode": mode},
                                     "ExecutionRoleArn": self.role}
        args.caller_name = "create_model"
        step = sdk().ModelStep(name=name, step_args=args)
        return self._keep(ModelHandle(name, step, images[0], runtime or "multi-container"))

    def transform(self, name: str, *, model: ModelHandle, data: Value, content_type: str = "text/csv",
                  split_type: str | None = "Line", strategy: str | None = "MultiRecord",
                  max_payload_mb: int | None = None,
                  max_concurrent: int | None = None, assemble_with: str | None = "Line",
                  accept: str | None = None, env: Mapping[str, str] | None = None,
                  cache: str | bool | None = None, retry: Sequence[Any] = (),
                  instance_count: Value = 1) -> TransformHandle:
        """A batch transform of every file under ``data`` with ``model`` (B-01…B-10).

        ``env`` is the transform job's environment (added to the model's); ``max_payload_mb``,
        ``strategy`` and ``max_concurrent`` are sent only when given (B-02), else the container's
        ``/execution-parameters`` or SageMaker's defaults apply; ``content_type`` is the request
        Content-Type (``text/csv; header=present`` marks files with a header row, D1);
        ``instance_count`` serving containers share the input files (one file on one instance)."""
        s = sdk()
        transformer = s.Transformer(
            model_name=model.model_name, instance_count=instance_count, instance_type=self.instance_type,
            strategy=strategy, assemble_with=assemble_with, output_path=self.run_prefix(name),
            accept=accept, max_payload=max_payload_mb, max_concurrent_transforms=max_concurrent,
            env=dict(env or {}) or None, sagemaker_session=self.session, base_transform_job_name=_job_base(name))
        step = s.TransformStep(name=name, step_args=transformer.transform(
            data=data, content_type=content_type, split_type=split_type), cache_config=_cache(cache),
            retry_policies=list(retry) or None)
        return self._keep(TransformHandle(name, step, model.image, model.runtime))

    # -- control flow and the registry ------------------------------------------------------
    def register(self, name: str, *, group: Value, model_data: Value = None, image: Value | None = None,
                 trained_by: TrainingHandle | TuningHandle | None = None,
                 approval: Value = "PendingManualApproval",
                 content_types: Sequence[Value] = ("text/csv",), response_types: Sequence[Value] = ("text/csv",),
                 metrics_uri: Value = None, env: Mapping[str, str] | None = None,
                 runtime: str | None = None) -> RegisterHandle:
        """RegisterModel: a new version of model package group ``group`` (1, 2, … per group).

        ``metrics_uri``: an S3 URI of a JSON report, registered as the model quality statistics.
        Locally the registry lives in the store (``rosetta models list``)."""
        s = sdk()
        image = image if image is not None else (trained_by.image if trained_by else None)
        if image is None or model_data is None:
            raise ValueError(f"{name}: give model_data= and image= (or trained_by=)")
        builder = s.ModelBuilder(image_uri=image, s3_model_data_url=model_data, sagemaker_session=self.session,
                                 role_arn=self.role, env_vars=dict(env or {}))
        metrics = (s.ModelMetrics(model_statistics=s.MetricsSource(content_type="application/json", s3_uri=metrics_uri))
                   if metrics_uri is not None else None)
        step = s.ModelStep(name=name, step_args=builder.register(
            model_package_group_name=group, content_types=list(content_types), response_types=list(response_types),
            approval_status=approval, model_metrics=metrics))
        return self._keep(RegisterHandle(name, step, image, self._runtime(image, runtime)))

    def fail(self, name: str, message: Value = "") -> StepHandle:
        """A Fail step: reaching it ends the execution Failed with ``message`` (may be a Join)."""
        step = sdk().FailStep(name=name, error_message=message)
        return self._keep(StepHandle(name, step, "", "other"))

    def condition(self, name: str, *, conditions: Sequence[Any], if_steps: Sequence[Any] = (),
                  else_steps: Sequence[Any] = (), depends_on: Sequence[Any] = ()) -> ConditionHandle:
        """A Condition step: ``if_steps`` run when every condition holds, else ``else_steps``.

        Branches take handles from this pipeline's own methods (they leave the top level, as the
        SDK requires) or SDK steps; conditions come from :mod:`rosetta_orchestrator.conditions`
        (or the SDK's ``Condition*`` classes); nest a condition by putting its handle in a branch."""
        s = sdk()
        if not conditions:
            raise ValueError(f"{name}: give at least one condition")
        step = s.ConditionStep(name=name, conditions=list(conditions),
                               if_steps=self._branch(if_steps, name), else_steps=self._branch(else_steps, name),
                               depends_on=list(depends_on) or None)
        return self._keep(ConditionHandle(name, step, "", "other"))

    # -- output -----------------------------------------------------------------------------
    def sdk_pipeline(self) -> Any:
        """The SDK ``Pipeline`` (what ``upsert``/``start`` send to SageMaker)."""
        return sdk().Pipeline(name=self.name, parameters=list(self.parameters),
                              steps=[h.step for h in self.steps], sagemaker_session=self.session)

    def definition(self) -> str:
        """The pipeline definition JSON, exactly as the SDK produces it."""
        return str(self.sdk_pipeline().definition())

    def definition_dict(self) -> dict[str, Any]:
        return dict(json.loads(self.definition()))

    def runtimes(self) -> dict[str, str]:
        return {h.name: h.runtime for h in [*self.steps, *self.nested]}


def metric_definitions(metrics: Sequence[str] | Mapping[str, str]) -> list[dict[str, str]]:
    """MetricDefinitions for metric names (the runtimes' ``#metric <name>=<value>`` line, T-20) or
    for ``{name: regex}``."""
    if isinstance(metrics, Mapping):
        return [{"Name": str(k), "Regex": str(v)} for k, v in metrics.items()]
    out = []
    for name in metrics:
        if not name or any(c in name for c in " =\n"):
            raise ValueError(f"metric name {name!r}: a single word without '=' (as log_metric requires)")
        out.append({"Name": name, "Regex": f"#metric {re.escape(name)}=(\\S+)"})
    return out


def _cache(cache: str | bool | None) -> Any:
    """``cache=True`` (no expiry) or an ISO-8601 duration (``"P30D"``, ``"PT1H"``) → CacheConfig."""
    if cache is None or cache is False:
        return None
    return sdk().CacheConfig(enable_caching=True, expire_after=None if cache is True else str(cache))


def _property_files(step: str, given: Mapping[str, tuple[str, str]] | Sequence[Any],
                    outputs: Sequence[str]) -> dict[str, Any]:
    s = sdk()
    files: dict[str, Any] = {}
    if isinstance(given, Mapping):
        for name, (output, path) in given.items():
            if output not in outputs:
                raise ValueError(f"step {step}: property file {name!r} names output {output!r}, which the step "
                                 f"does not declare (outputs: {', '.join(outputs) or 'none'})")
            files[name] = s.PropertyFile(name=name, output_name=output, path=path)
    else:
        files = {pf.name: pf for pf in given}
    return files


def _proc_input(name: str, uri: Value, local_path: str, distribution: str = "FullyReplicated") -> Any:
    s = sdk()
    return s.ProcessingInput(input_name=name, s3_input=s.ProcessingS3Input(
        s3_uri=uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File",
        s3_data_distribution_type=distribution))


DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")


def _distribution(given: str | Mapping[str, str], channel: str) -> str:
    value = given.get(channel, "FullyReplicated") if isinstance(given, Mapping) else given
    if value not in DISTRIBUTIONS:
        raise ValueError(f"input {channel!r}: distribution {value!r} is not one of {', '.join(DISTRIBUTIONS)}")
    return value


def _channels(inputs: Mapping[str, Value], content_type: str, distribution: str | Mapping[str, str]) -> list[Any]:
    """Training channels: ``InputData`` (FullyReplicated), or a ``Channel`` for ShardedByS3Key."""
    s = sdk()
    out = []
    for ch, uri in inputs.items():
        if _distribution(distribution, ch) == "FullyReplicated":
            out.append(s.InputData(channel_name=ch, data_source=uri, content_type=content_type))
        else:
            out.append(s.Channel(channel_name=ch, content_type=content_type, input_mode="File",
                                 data_source=s.DataSource(s3_data_source=s.S3DataSource(
                                     s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type="ShardedByS3Key"))))
    return out


def _integer(value: Any) -> bool:
    """An int, or an Integer pipeline parameter (a range bound may be one)."""
    kind = getattr(getattr(value, "parameter_type", None), "name", None)
    return kind == "INTEGER" or (isinstance(value, int) and not isinstance(value, bool))


def _range(name: str, given: Any) -> Any:
    """A tuning range: an SDK ``ParameterRange``, ``(low, high[, scaling])`` (integers: Integer,
    else Continuous) or a list of values (Categorical)."""
    s = sdk()
    if isinstance(given, s.ParameterRange):
        return given
    if isinstance(given, list):
        return s.CategoricalParameter([_as_str(v) for v in given])
    if isinstance(given, tuple) and len(given) in (2, 3):
        low, high, *rest = given
        scaling = rest[0] if rest else "Auto"
        if _integer(low) and _integer(high):
            return s.IntegerParameter(low, high, scaling_type=scaling)
        return s.ContinuousParameter(low if hasattr(low, "expr") else float(low),
                                     high if hasattr(high, "expr") else float(high), scaling_type=scaling)
    raise ValueError(f"range {name!r}: give (low, high[, scaling]), a list of values, or an SDK ParameterRange")


def _as_str(value: Value) -> Any:
    """Strings stay; pipeline variables become ``Std:Join`` strings; other values ``str()``."""
    if isinstance(value, str):
        return value
    if hasattr(value, "to_string"):
        return value.to_string()
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _job_base(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)[:40].strip("-") or "step"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path.parent if path.is_file() else path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]
