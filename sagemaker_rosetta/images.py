"""Rosetta's image names, in one table, and their builds (``rosetta build python|r|r-rpy2|julia``).

:data:`IMAGES` (runtime images), :data:`EXAMPLES` (user-style example images) and
:data:`TEST_IMAGES` (images only the tests and benchmarks build) are the only place a tag is
spelled; code asks :func:`tag` (or the tables) instead of repeating it.

Every image builds from the repository root (one ``.dockerignore``) with BuildKit, so a
CA bundle for intercepted egress TLS reaches ``pip`` as a build secret only and never
lands in a layer. Base images come from :mod:`sagemaker_rosetta.engine`.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sagemaker_rosetta import engine

Say = Callable[[str], None]


def project_root() -> Path:
    """The Rosetta checkout (holds ``runtimes/``)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "runtimes").is_dir() and (parent / "pyproject.toml").is_file():
            return parent
    raise FileNotFoundError("cannot find the Rosetta checkout (a folder with runtimes/ and pyproject.toml)")


class BuildError(RuntimeError):
    """``docker build`` failed; the message's first line says which image, the rest is the build log's tail."""


@dataclass(frozen=True)
class ImageSpec:
    tag: str
    dockerfile: str
    base: str
    after: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)


IMAGES: dict[str, ImageSpec] = {
    "python": ImageSpec("rosetta/python:latest", "runtimes/python/Dockerfile", "debian:bookworm-slim"),
    "r": ImageSpec("rosetta/r:latest", "runtimes/r/Dockerfile", "debian:bookworm-slim"),
    "r-rpy2": ImageSpec("rosetta/r:rpy2", "runtimes/r/Dockerfile.rpy2", "debian:bookworm-slim", after=("r",)),
    "julia": ImageSpec("rosetta/julia:latest", "runtimes/julia/Dockerfile", "debian:bullseye-slim",
                       build_args={"BASE": "debian:bullseye-slim"}),
}


@dataclass(frozen=True)
class ExampleSpec:
    """A user-style image: ``FROM`` a runtime image plus the example's code, built from its folder."""

    tag: str
    folder: str
    runtime: str
    dockerfile: str = "Dockerfile"


EXAMPLES: dict[str, ExampleSpec] = {
    "iris-python": ExampleSpec("rosetta-example/iris-python:latest", "examples/iris/python", "python"),
    "iris-r": ExampleSpec("rosetta-example/iris-r:latest", "examples/iris/r", "r"),
    "iris-r-rpy2": ExampleSpec("rosetta-example/iris-r:rpy2", "examples/iris/r", "r-rpy2", "Dockerfile.rpy2"),
    "iris-julia": ExampleSpec("rosetta-example/iris-julia:latest", "examples/iris/julia", "julia"),
    "xgboost": ExampleSpec("rosetta-example/xgboost:latest", "examples/xgboost", "python"),
    # examples/chain: one serial inference pipeline, a step per language (each a COPY on its runtime)
    "chain-r": ExampleSpec("rosetta-example/chain-r:latest", "examples/chain/r", "r"),
    "chain-python": ExampleSpec("rosetta-example/chain-python:latest", "examples/chain/python", "python"),
    "chain-julia": ExampleSpec("rosetta-example/chain-julia:latest", "examples/chain/julia", "julia"),
}


#: images the test suites and benchmarks build for themselves (never shipped); a ``:{variant}``
#: placeholder is filled by :func:`tag` (``tag("conformance-fixture", variant="loopback")``)
TEST_IMAGES: dict[str, str] = {
    "echo": "rosetta-test/echo:latest",
    "conformance-fixture-base": "rosetta-conformance/fixture-base:latest",
    "conformance-fixture": "rosetta-conformance/fixture:{variant}",
    "bench-baselines": "rosetta-bench/baselines:latest",
}


def tag(name: str, **fill: str) -> str:
    """The tag of a runtime (``python``), example (``iris-r``) or test image (``echo``) by its table name."""
    if name in IMAGES:
        return IMAGES[name].tag
    if name in EXAMPLES:
        return EXAMPLES[name].tag
    if name in TEST_IMAGES:
        return TEST_IMAGES[name].format(**fill)
    known = ", ".join([*IMAGES, *EXAMPLES, *TEST_IMAGES])
    raise KeyError(f"unknown image {name!r}; known: {known}")


def ca_bundle() -> Path | None:
    """The host's CA bundle for intercepted TLS, if the environment names one."""
    for var in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return None


def docker_build(tag: str, dockerfile: Path, context: Path, *, build_args: Mapping[str, str] | None = None,
                 say: Say = print, quiet: bool = False) -> float:
    """``docker build`` with BuildKit and the CA as secret ``ca``; returns seconds taken.

    The docker CLI, not the SDK: build secrets (the CA must reach ``pip`` without landing in a
    layer) need BuildKit's session protocol, which the CLI speaks and the SDK does not.
    """
    cli, env = engine.build_cli()
    cmd = [cli, "build", "-f", str(dockerfile), "-t", tag, "--progress", "plain"]
    bundle = ca_bundle()
    if bundle:
        cmd += ["--secret", f"id=ca,src={bundle}"]
    for k, v in (build_args or {}).items():
        cmd += ["--build-arg", f"{k}={v}"]
    cmd.append(str(context))
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"building {tag} failed (see the build log below):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return time.monotonic() - t0


def build(names: list[str], say: Say = print, *, with_bases: bool = True) -> dict[str, float]:
    """Build the named runtime images (and what they depend on) in dependency order."""
    root = project_root()
    order: list[str] = []

    def visit(n: str) -> None:
        if n not in IMAGES:
            raise KeyError(f"unknown runtime image {n!r}; choose from {', '.join(IMAGES)}")
        for dep in IMAGES[n].after:
            visit(dep)
        if n not in order:
            order.append(n)

    for n in names:
        visit(n)
    engine.ensure_engine(say)
    if with_bases:
        engine.ensure_base_images(sorted({IMAGES[n].base for n in order}), say)
    took: dict[str, float] = {}
    for n in order:
        spec = IMAGES[n]
        say(f"building {spec.tag} ({spec.dockerfile})…")
        took[n] = docker_build(spec.tag, root / spec.dockerfile, root, build_args=spec.build_args, say=say)
        say(f"built {spec.tag} in {took[n]:.0f} s")
    return took


def build_examples(names: list[str], say: Say = print) -> dict[str, float]:
    """Build example images (their runtime images must exist: see :func:`build`)."""
    root = project_root()
    took: dict[str, float] = {}
    for n in names:
        spec = EXAMPLES[n]
        folder = root / spec.folder
        say(f"building {spec.tag} ({spec.folder}/{spec.dockerfile})…")
        took[n] = docker_build(spec.tag, folder / spec.dockerfile, folder, say=say)
    return took
