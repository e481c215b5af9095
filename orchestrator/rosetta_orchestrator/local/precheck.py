"""Before any container starts: every S3 input the run reads must exist, every image must be local.

An input is checked when its URI is known before the run: a literal, a parameter, or a
``Std:Join`` of those. A URI that another step of the run writes (a ``Get`` of a step property,
a value that holds the execution ID, or a prefix under a step's literal output location) is
produced by the run and not checked. Inputs of steps inside a condition's branch are checked too,
but only reported as warnings, because that branch may not be taken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rosetta_orchestrator.local import tuning
from rosetta_orchestrator.local.declarations import RESERVED, Declaration
from rosetta_orchestrator.local.plan import DefinitionError, Plan, PlannedStep
from rosetta_orchestrator.local.registry import Registry, RegistryError
from rosetta_orchestrator.local.store import Store, StoreError

_RUNTIME = object()  # a value known only once the run has started


@dataclass
class Findings:
    missing_inputs: list[str] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)
    missing_packages: list[str] = field(default_factory=list)
    #: tuning steps that would fail before their first job (bad ranges, undeclared hyperparameters)
    bad_tuning: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> list[str]:
        return self.missing_inputs + self.missing_images + self.missing_packages + self.bad_tuning


class PrecheckFailed(RuntimeError):
    def __init__(self, findings: Findings) -> None:
        self.findings = findings
        parts = []
        if findings.missing_inputs:
            parts.append(f"{len(findings.missing_inputs)} S3 input(s) missing")
        if findings.missing_images:
            parts.append(f"{len(findings.missing_images)} image(s) not on the local engine")
        if findings.missing_packages:
            parts.append(f"{len(findings.missing_packages)} model package(s) not registered")
        if findings.bad_tuning:
            parts.append(f"{len(findings.bad_tuning)} tuning problem(s)")
        super().__init__(", ".join(parts) + " (nothing was started):\n  - " + "\n  - ".join(findings.blocking))


def static_value(value: Any, parameters: dict[str, Any]) -> Any:
    """A definition value resolved with parameters only; ``_RUNTIME`` if it needs the run."""
    if isinstance(value, dict):
        if set(value) == {"Get"}:  # parameters are known; steps and execution variables are not yet
            ref = str(value["Get"])
            if ref.startswith("Parameters."):
                return parameters.get(ref.split(".", 1)[1], _RUNTIME)
            return _RUNTIME
        if set(value) == {"Std:Join"}:
            parts = [static_value(v, parameters) for v in value["Std:Join"].get("Values") or []]
            if any(p is _RUNTIME for p in parts):
                return _RUNTIME
            on = static_value(value["Std:Join"].get("On", ""), parameters)
            return _RUNTIME if on is _RUNTIME else str(on).join(_text(p) for p in parts)
        if set(value) == {"Std:JsonGet"}:
            return _RUNTIME
    return value


def static_tree(value: Any, parameters: dict[str, Any]) -> Any:
    """``value`` with every expression resolved by :func:`static_value` (``_RUNTIME`` where unknown)."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("Get", "Std:Join", "Std:JsonGet"):
            return static_value(value, parameters)
        return {k: static_tree(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [static_tree(v, parameters) for v in value]
    return value


def _known(value: Any) -> bool:
    if value is _RUNTIME:
        return False
    if isinstance(value, dict):
        return all(_known(v) for v in value.values())
    if isinstance(value, list):
        return all(_known(v) for v in value)
    return True


def _text(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def _inputs(step: PlannedStep) -> list[tuple[str, Any]]:
    a = step.definition.get("Arguments") or {}
    found: list[tuple[str, Any]] = []
    if step.type == "Processing":
        for i in a.get("ProcessingInputs") or []:
            if i.get("S3Input"):
                found.append((f"input {i.get('InputName')}", i["S3Input"].get("S3Uri")))
    elif step.type in ("Training", "Tuning"):
        for c in ((a.get("TrainingJobDefinition") or {}) if step.type == "Tuning" else a).get("InputDataConfig") or []:
            found.append((f"channel {c.get('ChannelName')}",
                          ((c.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri")))
    elif step.type == "Transform":
        found.append(("TransformInput", (((a.get("TransformInput") or {}).get("DataSource") or {})
                                         .get("S3DataSource") or {}).get("S3Uri")))
    elif step.type in ("Model", "RegisterModel"):
        for c in _containers(step):
            if c.get("ModelDataUrl") is not None:
                found.append(("ModelDataUrl", c.get("ModelDataUrl")))
    return found


def _containers(step: PlannedStep) -> list[dict[str, Any]]:
    a = step.definition.get("Arguments") or {}
    if step.type == "Model":
        return [c for c in [a.get("PrimaryContainer"), *(a.get("Containers") or [])] if isinstance(c, dict)]
    if step.type == "RegisterModel":
        return [c for c in (a.get("InferenceSpecification") or {}).get("Containers") or [] if isinstance(c, dict)]
    return []


def _outputs(step: PlannedStep, parameters: dict[str, Any]) -> list[str]:
    a = step.definition.get("Arguments") or {}
    raw: list[Any] = []
    if step.type == "Processing":
        outs = (a.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        raw = [(o.get("S3Output") or {}).get("S3Uri") for o in outs]
    elif step.type in ("Training", "Tuning"):
        d = (a.get("TrainingJobDefinition") or {}) if step.type == "Tuning" else a
        raw = [(d.get("OutputDataConfig") or {}).get("S3OutputPath")]
    elif step.type == "Transform":
        raw = [(a.get("TransformOutput") or {}).get("S3OutputPath")]
    values = [static_value(r, parameters) for r in raw]
    return [str(v).rstrip("/") for v in values if isinstance(v, str)]


def images(plan: Plan, parameters: dict[str, Any], registry: Registry | None = None) -> dict[str, list[str]]:
    """Image → the steps that run it (values known before the run)."""
    found: dict[str, list[str]] = {}
    for step in plan.steps.values():
        a = step.definition.get("Arguments") or {}
        candidates: list[Any] = []
        if step.type in ("Training", "Tuning"):
            d = (a.get("TrainingJobDefinition") or {}) if step.type == "Tuning" else a
            candidates.append((d.get("AlgorithmSpecification") or {}).get("TrainingImage"))
        elif step.type == "Processing":
            candidates.append((a.get("AppSpecification") or {}).get("ImageUri"))
        for c in _containers(step):
            candidates.append(c.get("Image"))
            package = static_value(c.get("ModelPackageName"), parameters)
            if isinstance(package, str) and package and registry is not None:
                try:
                    candidates.append(registry.container(package).get("Image"))
                except RegistryError:
                    pass
        for c in candidates:
            value = static_value(c, parameters)
            if isinstance(value, str) and value:
                found.setdefault(value, []).append(step.name)
    return found


def check(plan: Plan, parameters: dict[str, Any], store: Store, registry: Registry,
          image_present: Callable[[str], bool], declare: Callable[..., Declaration] | None = None) -> Findings:
    findings = Findings()
    produced = [o for s in plan.steps.values() for o in _outputs(s, parameters)]
    for step in plan.steps.values():
        for what, raw in _inputs(step):
            uri = static_value(raw, parameters)
            if not isinstance(uri, str) or any(uri.rstrip("/").startswith(p) for p in produced):
                continue
            try:
                present = store.exists(uri)
            except StoreError as exc:
                present, uri = False, f"{uri} ({exc})"
            if not present:
                line = f"step {step.name} {what}: {uri} does not exist in {store.describe()}"
                if step.gate:
                    findings.warnings.append(line + f" (inside branch {step.gate[0]}:"
                                                    f"{'if' if step.gate[1] else 'else'})")
                else:
                    findings.missing_inputs.append(line)
        for c in _containers(step):
            package = static_value(c.get("ModelPackageName"), parameters)
            if isinstance(package, str) and package:
                try:
                    registry.describe(package)
                except RegistryError as exc:
                    findings.missing_packages.append(f"step {step.name}: {exc}")
    for image, users in sorted(images(plan, parameters, registry).items()):
        if not image_present(image):
            findings.missing_images.append(f"image {image} (steps {', '.join(users)}) is not on the local engine, "
                                           "which never pulls: build it (rosetta build …) or docker pull/tag it")
    for step in plan.steps.values():
        if step.type == "Tuning":
            _check_tuning(step, parameters, findings, image_present, declare)
    return findings


def _check_tuning(step: PlannedStep, parameters: dict[str, Any], findings: Findings,
                  image_present: Callable[[str], bool], declare: Callable[..., Declaration] | None) -> None:
    """Ranges SageMaker would refuse, and hyperparameters the image does not declare (read from the
    image: :mod:`~rosetta_orchestrator.local.declarations`), before any container of the run starts."""
    args = static_tree(step.definition.get("Arguments") or {}, parameters)
    config = args.get("HyperParameterTuningJobConfig") or {}
    out = findings.bad_tuning if not step.gate else findings.warnings
    if _known(config):
        try:
            tuning.spec(args)
        except DefinitionError as exc:
            out.append(f"step {step.name}: {exc}")
            return
    definition = args.get("TrainingJobDefinition") or {}
    image = (definition.get("AlgorithmSpecification") or {}).get("TrainingImage")
    if declare is None or not isinstance(image, str) or not image_present(image):
        return
    ranges = config.get("ParameterRanges") or {}
    tuned = [r.get("Name") for kind in ("Integer", "Continuous", "Categorical")
             for r in ranges.get(f"{kind}ParameterRanges") or []]
    static = list((definition.get("StaticHyperParameters") or {}).keys())
    env = definition.get("Environment") or {}
    found = declare(image, env if _known(env) else {})
    bad_ranges = found.undeclared([n for n in tuned if isinstance(n, str)])
    bad_static = found.undeclared([str(n) for n in static])
    declared = ", ".join(found.names or ()) or "none"
    for name in bad_ranges:
        out.append(f"step {step.name}: the range {name!r} names a hyperparameter that {image} does not declare "
                   f"(declared: {declared}); fix the name or declare it in the model code")
    for name in bad_static:
        out.append(f"step {step.name}: the static hyperparameter {name!r} is not declared by {image} "
                   f"(declared: {declared})")
    if found.rejects_reserved:
        findings.warnings.append(
            f"step {step.name}: {image} rejects the hyperparameter {RESERVED}, which SageMaker adds to every "
            "training job of a tuning job, so each of them fails, on AWS as in this run. "
            f"The runtime must ignore {RESERVED} (as it ignores sagemaker_* keys)")
