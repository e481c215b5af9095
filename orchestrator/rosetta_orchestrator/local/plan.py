"""Check a pipeline definition and lay it out for the local runner, before any container starts.

A definition (as the SDK emits it, or as SageMaker stores it) nests the steps of a Condition's
branches inside the condition's ``IfSteps``/``ElseSteps``. The plan flattens them: every step gets
its dependencies (``DependsOn`` plus every ``Steps.X`` reference) and, inside a branch, the gate
``(condition, True|False)`` that must hold for it to run. Everything a user can get wrong without
running anything is reported here with the step's name: unknown step types, duplicate names,
unknown steps in references, properties that the step type does not have, property files that
were not declared, and cycles.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from rosetta_orchestrator.local.expressions import ExpressionError, path_tokens

SUPPORTED = ("Training", "Processing", "Model", "Transform", "Tuning", "Condition", "Fail", "RegisterModel")
#: the SageMaker responses whose shapes a step type's properties follow (the SDK's Properties)
PROPERTY_SHAPES = {"Training": ("DescribeTrainingJob",), "Processing": ("DescribeProcessingJob",),
                   "Transform": ("DescribeTransformJob",), "Model": ("DescribeModel",),
                   "RegisterModel": ("DescribeModelPackage",),
                   "Tuning": ("DescribeHyperParameterTuningJob", "ListTrainingJobsForHyperParameterTuningJob")}


class DefinitionError(ValueError):
    """The definition cannot run as written; the message names the step and what to do."""


@dataclass
class PlannedStep:
    name: str
    type: str
    definition: dict[str, Any]
    deps: set[str] = field(default_factory=set)
    #: (condition step, branch) that must hold for this step to run; None at top level
    gate: tuple[str, bool] | None = None


@dataclass
class Plan:
    steps: dict[str, PlannedStep]
    parameters: list[dict[str, Any]]

    def order(self) -> list[str]:
        """Names in a dependency order (for reports)."""
        done: list[str] = []
        while len(done) < len(self.steps):
            for name, s in self.steps.items():
                if name not in done and (s.deps | ({s.gate[0]} if s.gate else set())) <= set(done):
                    done.append(name)
        return done


def build_plan(definition: Mapping[str, Any]) -> Plan:
    if not isinstance(definition, Mapping) or not isinstance(definition.get("Steps"), list):
        raise DefinitionError("malformed definition: expected a JSON object with a \"Steps\" list "
                              "(a pipeline definition, or describe-pipeline-definition output)")
    steps: dict[str, PlannedStep] = {}
    _collect(list(definition["Steps"]), None, steps)
    refused = [f"{s.name} ({s.type})" for s in steps.values() if s.type not in SUPPORTED]
    if refused:
        raise DefinitionError(f"step type(s) the local runner does not run: {', '.join(refused)} "
                              f"(it runs {', '.join(SUPPORTED)}); remove them or run on SageMaker")
    for s in steps.values():
        _dependencies(s, steps)
    _check_cycles(steps)
    params = definition.get("Parameters") or []
    if not isinstance(params, list) or any(not isinstance(p, dict) or "Name" not in p for p in params):
        raise DefinitionError("malformed definition: \"Parameters\" must be a list of {\"Name\": …} objects")
    return Plan(steps, list(params))


def _collect(raw: list[Any], gate: tuple[str, bool] | None, out: dict[str, PlannedStep]) -> None:
    for i, s in enumerate(raw):
        if not isinstance(s, dict) or not isinstance(s.get("Name"), str) or not isinstance(s.get("Type"), str):
            raise DefinitionError(f"malformed definition: step #{i + 1} needs a \"Name\" and a \"Type\"")
        if s["Name"] in out:
            raise DefinitionError(f"step {s['Name']}: the name is used twice (names must be unique, "
                                  "including the steps inside a condition's branches)")
        out[s["Name"]] = PlannedStep(s["Name"], s["Type"], s, gate=gate)
        if s["Type"] == "Condition":
            args = s.get("Arguments") or {}
            for branch, key in ((True, "IfSteps"), (False, "ElseSteps")):
                _collect(list(args.get(key) or []), (s["Name"], branch), out)


def _own_arguments(s: PlannedStep) -> Any:
    """The expressions a step evaluates itself (a condition's branches are separate steps)."""
    args = s.definition.get("Arguments") or {}
    if s.type == "Condition":
        return {"Conditions": args.get("Conditions") or []}
    return args


def _dependencies(s: PlannedStep, steps: dict[str, PlannedStep]) -> None:
    deps: set[str] = set()
    for d in s.definition.get("DependsOn") or []:
        name = d if isinstance(d, str) else d.get("Step") if isinstance(d, dict) else None
        if isinstance(d, dict) and d.get("Trigger", "Completed") != "Completed":
            raise DefinitionError(f"step {s.name}: DependsOn {name} with Trigger {d.get('Trigger')} is not "
                                  "supported locally (only Completed); remove the run condition")
        if not isinstance(name, str) or name not in steps:
            raise DefinitionError(f"step {s.name}: DependsOn names an unknown step {name!r}")
        deps.add(name)
    for ref in _refs(_own_arguments(s)):
        _check_ref(s.name, ref, steps)
        deps.add(str(path_tokens(ref)[1]))
    if s.gate:
        deps.discard(s.gate[0])
    s.deps = deps


def _refs(obj: Any) -> list[str]:
    found: list[str] = []
    if isinstance(obj, dict):
        get = obj.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            found.append(get)
        for v in obj.values():
            found += _refs(v)
    elif isinstance(obj, list):
        for v in obj:
            found += _refs(v)
    return found


def _check_ref(step: str, ref: str, steps: dict[str, PlannedStep]) -> None:
    try:
        tokens = path_tokens(ref)
    except ExpressionError as exc:
        raise DefinitionError(f"step {step}: {exc}") from None
    if len(tokens) < 2 or str(tokens[1]) not in steps:
        known = ", ".join(sorted(steps))
        raise DefinitionError(f"step {step}: Get {ref} names an unknown step (steps: {known})")
    target = steps[str(tokens[1])]
    rest = tokens[2:]
    if target.type == "Processing" and rest[:1] == ["PropertyFiles"]:
        declared = [p.get("PropertyFileName") for p in target.definition.get("PropertyFiles") or []]
        if len(rest) < 2 or rest[1] not in declared:
            wanted = rest[1] if len(rest) > 1 else ""
            raise DefinitionError(f"step {step}: Get {ref}: step {target.name} declares no property file "
                                  f"{wanted!r} (declared: {', '.join(map(str, declared)) or 'none'})")
        return
    if target.type == "Condition":
        if rest != ["Outcome"]:
            raise DefinitionError(f"step {step}: Get {ref}: a Condition step has only the property Outcome")
        return
    if target.type == "Fail":
        raise DefinitionError(f"step {step}: Get {ref}: a Fail step has no properties")
    operations = PROPERTY_SHAPES.get(target.type) or ()
    problems = [_shape_problem(operation, rest) for operation in operations]
    if problems and all(problems):
        raise DefinitionError(f"step {step}: Get {ref}: {problems[0]}")


@cache
def _output_shape(operation: str) -> Any:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model(operation).output_shape


def _shape_problem(operation: str, tokens: list[str | int]) -> str | None:
    """Why ``tokens`` is not a property of ``operation``'s response (botocore's service model)."""
    shape = _output_shape(operation)
    walked: list[str] = []
    for tok in tokens:
        kind = shape.type_name
        if kind == "structure":
            if not isinstance(tok, str) or tok not in shape.members:
                names = list(shape.members)
                near = difflib.get_close_matches(str(tok), names, n=1)
                where = ".".join(walked) or operation
                hint = f" (did you mean {near[0]}?)" if near else f" (it has: {', '.join(names[:12])}…)"
                return f"{where} has no property {tok!r}{hint}"
            shape = shape.members[tok]
        elif kind == "list":
            shape = shape.member
        elif kind == "map":
            shape = shape.value
        else:
            return f"{'.'.join(walked)} is a {kind}, it has no property {tok!r}"
        walked.append(str(tok))
    return None


def _check_cycles(steps: dict[str, PlannedStep]) -> None:
    needs = {n: s.deps | ({s.gate[0]} if s.gate else set()) for n, s in steps.items()}
    done: set[str] = set()
    while len(done) < len(needs):
        ready = {n for n, d in needs.items() if n not in done and d <= done}
        if not ready:
            raise DefinitionError(f"dependency cycle among steps {', '.join(sorted(set(needs) - done))}: "
                                  "remove a DependsOn or a reference between them")
        done |= ready


def parameter_names(plan: Plan) -> Mapping[str, Any]:
    return {p["Name"]: p for p in plan.parameters}
