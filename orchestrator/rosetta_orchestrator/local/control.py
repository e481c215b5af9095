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
    container = dict(container)
    package = container.pop("ModelPackageName", None)
    if package:
        base = registry.container(str(package))
        env = {**(base.get("Environment") or {}), **(container.get("Environment") or {})}
        container = {**base, **container, "Environment": env, "ModelPackageName": package}
    if not container.get("Image"):
        raise ValueError("the model's container has no Image")
    return container


def run_model(ctx: JobContext, args: dict[str, Any], registry: Registry) -> dict[str, Any]:
    container = model_container(args, registry)
    ctx.models.add(ctx.job_name, container)
    return {"ModelName": ctx.job_name, "PrimaryContainer": container,
            "ExecutionRoleArn": args.get("ExecutionRoleArn")}


def run_register(ctx: JobContext, args: dict[str, Any], registry: Registry, source: dict[str, str]) -> dict[str, Any]:
    doc = registry.register(args, source=source)
    ctx.log(f"[rosetta] registered {doc['ModelPackageGroupName']} version {doc['ModelPackageVersion']} "
            f"({doc['ModelApprovalStatus']}): {doc['ModelPackageArn']}")
    return doc
