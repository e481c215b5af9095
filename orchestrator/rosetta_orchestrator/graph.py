"""Draw a pipeline's DAG: Mermaid text always, SVG/PNG through Graphviz ``dot`` when installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from rosetta_orchestrator.api import runtime_of
from rosetta_orchestrator.local.runner import dependencies

COLORS = {"python": "#3572A5", "r": "#198CE7", "julia": "#9558B2", "other": "#777777"}


def nodes(definition: dict[str, Any], runtimes: dict[str, str]) -> list[dict[str, str]]:
    """Each step with its type, image (parameter defaults resolved) and runtime."""
    params = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters") or []}
    models = {s["Name"]: s for s in definition.get("Steps") or [] if s["Type"] == "Model"}
    out = []
    for s in definition.get("Steps") or []:
        out.append({"name": s["Name"], "type": s["Type"],
                    "image": _image(s, params, models),
                    "runtime": runtimes.get(s["Name"]) or runtime_of(_image(s, params, models))})
    return out


def _value(v: Any, params: dict[str, Any]) -> str:
    if isinstance(v, dict) and isinstance(v.get("Get"), str) and v["Get"].startswith("Parameters."):
        return str(params.get(v["Get"].split(".", 1)[1], v["Get"]))
    return v if isinstance(v, str) else "(expression)"


def _image(step: dict[str, Any], params: dict[str, Any], models: dict[str, Any]) -> str:
    a = step.get("Arguments") or {}
    if step["Type"] == "Training":
        return _value(a.get("AlgorithmSpecification", {}).get("TrainingImage"), params)
    if step["Type"] == "Processing":
        return _value(a.get("AppSpecification", {}).get("ImageUri"), params)
    if step["Type"] == "Model":
        return _value(a.get("PrimaryContainer", {}).get("Image"), params)
    if step["Type"] == "Transform":
        ref = a.get("ModelName")
        if isinstance(ref, dict) and str(ref.get("Get", "")).startswith("Steps."):
            model = models.get(str(ref["Get"]).split(".")[1])
            if model:
                return _image(model, params, models)
    return ""


def _id(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def mermaid(definition: dict[str, Any], runtimes: dict[str, str]) -> str:
    lines = ["flowchart LR"]
    for n in nodes(definition, runtimes):
        lines.append(f'  {_id(n["name"])}["{n["name"]}<br/>{n["type"]} · {n["runtime"]}<br/><small>'
                     f'{n["image"]}</small>"]:::{n["runtime"]}')
    for step, deps in dependencies(definition).items():
        lines.extend(f"  {_id(d)} --> {_id(step)}" for d in sorted(deps))
    lines.extend(f"  classDef {rt} stroke:{color},stroke-width:2px" for rt, color in COLORS.items())
    return "\n".join(lines) + "\n"


def dot(definition: dict[str, Any], runtimes: dict[str, str]) -> str:
    lines = ["digraph pipeline {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for n in nodes(definition, runtimes):
        color = COLORS.get(n["runtime"], COLORS["other"])
        label = f'{n["name"]}\\n{n["type"]} · {n["runtime"]}\\n{n["image"]}'
        lines.append(f'  "{n["name"]}" [label="{label}", fillcolor="{color}33", color="{color}"];')
    for step, deps in dependencies(definition).items():
        lines.extend(f'  "{d}" -> "{step}";' for d in sorted(deps))
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_text: str, out: Path) -> None:
    """Write ``out`` (.svg or .png) with Graphviz; a clear error when ``dot`` is missing."""
    exe = shutil.which("dot")
    if not exe:
        raise FileNotFoundError("Graphviz `dot` is not installed (Debian: apt-get install graphviz); "
                                "the Mermaid text above works without it")
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png"):
        raise ValueError(f"{out}: choose a .svg or .png file")
    subprocess.run([exe, f"-T{fmt}", "-o", str(out)], input=dot_text, text=True, check=True)
