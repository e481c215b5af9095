"""Run a pipeline definition locally with the Docker engine (``rosetta pipeline run --local``)."""

from rosetta_orchestrator.local.context import StepFailed
from rosetta_orchestrator.local.runner import LocalRunner, RunResult, StepResult

__all__ = ["LocalRunner", "RunResult", "StepFailed", "StepResult"]
