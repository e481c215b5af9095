"""Test pipeline whose two parallel steps sleep, to interrupt a run while containers are up."""

from __future__ import annotations

from pathlib import Path

from rosetta_orchestrator import Pipeline

HERE = Path(__file__).resolve().parent


def pipeline() -> Pipeline:
    p = Pipeline("rosetta-slow-test", bucket="rosetta-test")
    for name in ("SleepA", "SleepB"):
        p.processing(name, image="rosetta-test/echo:latest", entrypoint=["sleep", "300"])
    return p
