"""Steps that start no container: Condition, Fail, Model (CreateModel) and RegisterModel."""

from __future__ import annotations

from typing import Any

from rosetta_orchestrator.local.conditions import evaluate, explain
from rosetta_orchestrator.local.context import JobContext, StepFailed
from rosetta_orchestrator.local.registry import Registry


class FailStepReached(StepFailed):
    """A Fail step ran: the execution ends Failed with its evaluated ErrorMessage."""


def run_condition(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
    conditions = list(args.get("Conditions") or [])
    outcome = evaluate(conditions)
    ctx.log(f"[rosetta] {explain(conditions)} → {outcome}")
    # the API's Condition metadata gives Outcome as the strings "True"/"False"; the SDK's local
    # executor (and a Get of Steps.X.Outcome in a condition) sees a boolean: keep the boolean
    return {"Outcome": outcome, "EvaluatedConditions": explain(conditions)}


def run_fail(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
    message = args.get("ErrorMessage")
    text = "" if message is None else str(message)
    raise FailStepReached(ctx.step, text or "Fail step reached (no ErrorMessage)")


def model_container(args: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """The one container a Model step runs: ``PrimaryContainer`` (or a single ``Containers``
    entry); a ``ModelPackageName`` takes image and model data from the registered package."""
    container = args.get("PrimaryContainer")
    if container is None:
        many = args.get("Containers") or []
        if len(many) != 1:
            raise ValueError(f"a Model step needs a PrimaryContainer or exactly one container (got {len(many)})")
        container = many[0]
    return _resolved(dict(container), registry)


def _resolved(container: dict[str, Any], registry: Registry) -> dict[str, Any]:
    package = container.pop("ModelPackageName", None)
    if package:
        base = registry.container(str(package))
        env = {**(base.get("Environment") or {}), **(container.get("Environment") or {})}
        container = {**base, **container, "Environment": env, "ModelPackageName": package}
    if not container.get("Image"):
        raise ValueError("the model's container has no Image")
    return container


def run_model(ctx: JobContext, args: dict[str, Any], registry: Registry) -> dict[str, Any]:
    many = args.get("Containers") or []
    if args.get("PrimaryContainer") is None and len(many) > 1:
        return _run_multi_container(ctx, args, [_resolved(dict(c), registry) for c in many])
    container = model_container(args, registry)
    ctx.models.add(ctx.job_name, container)
    return {"ModelName": ctx.job_name, "PrimaryContainer": container,
            "ExecutionRoleArn": args.get("ExecutionRoleArn")}


def _run_multi_container(ctx: JobContext, args: dict[str, Any], containers: list[dict[str, Any]]) -> dict[str, Any]:
    """An inference pipeline (2-15 ``Containers``): what a Transform step of it needs is kept as
    ``{"Image": first image, "Containers": [...], "Mode": ...}`` (the first image names the step)."""
    if len(containers) > 15:
        raise ValueError(f"a model has at most 15 containers (got {len(containers)})")
    mode = str((args.get("InferenceExecutionConfig") or {}).get("Mode") or "Serial")
    if mode not in ("Serial", "Direct"):
        raise ValueError(f"InferenceExecutionConfig.Mode must be Serial or Direct, got {mode!r}")
    hosts = [str(c.get("ContainerHostname") or f"container-{k}") for k, c in enumerate(containers, start=1)]
    if len(set(hosts)) != len(hosts):
        raise ValueError(f"ContainerHostname must differ between containers (got {hosts})")
    ctx.models.add(ctx.job_name, {"Image": containers[0]["Image"], "Containers": containers, "Mode": mode})
    ctx.log(f"[rosetta] {len(containers)} containers, {mode}: " + " → ".join(
        f"{h} ({c['Image']})" for h, c in zip(hosts, containers, strict=True)))
    return {"ModelName": ctx.job_name, "Containers": containers, "InferenceExecutionConfig": {"Mode": mode},
            "ExecutionRoleArn": args.get("ExecutionRoleArn")}


def run_register(ctx: JobContext, args: dict[str, Any], registry: Registry, source: dict[str, str]) -> dict[str, Any]:
    doc = registry.register(args, source=source)
    ctx.log(f"[rosetta] registered {doc['ModelPackageGroupName']} version {doc['ModelPackageVersion']} "
            f"({doc['ModelApprovalStatus']}): {doc['ModelPackageArn']}")
    return doc
