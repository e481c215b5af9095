"""Fixture images for the suite's own tests: one stdlib program, a thin layer per breakage.

The base (debian:bookworm-slim + apt python3 + fixture.py) is built once; every variant is a
metadata-only layer on top (ENV/LABEL/ENTRYPOINT), so building all of them takes seconds.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sagemaker_rosetta import engine, images

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BASE_TAG = "rosetta-conformance/fixture-base:latest"
LABEL = "LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true"
SHELL_ENTRY = ('ENTRYPOINT ["/bin/sh", "-c", '
               '"python3 /opt/fixture/fixture.py \\"$@\\"; rc=$?; echo finished; exit $rc", "sh"]')


@dataclass(frozen=True)
class Variant:
    name: str
    lines: tuple[str, ...]
    fails: frozenset[str]

    @property
    def tag(self) -> str:
        return f"rosetta-conformance/fixture:{self.name}"


def _v(name: str, fails: set[str], *lines: str, label: bool = True) -> Variant:
    return Variant(name, ((LABEL,) if label else ()) + lines, frozenset(fails))


#: each deliberately broken image and exactly the clauses it must fail
VARIANTS = [
    _v("good", set()),
    _v("loopback", {"S-05"}, "ENV FIXTURE_BREAK=loopback"),
    _v("ignore-port", {"S-04", "M-03"}, "ENV FIXTURE_BREAK=ignore_port"),
    _v("extra-port", {"M-03"}, "ENV FIXTURE_BREAK=extra_port"),
    _v("ping-early", {"S-09"}, "ENV FIXTURE_BREAK=ping_early FIXTURE_LOAD_SECONDS=3"),
    _v("csv-header", {"B-08", "B-09", "B-13"}, "ENV FIXTURE_BREAK=csv_header"),
    _v("header-every-request", {"B-13"}, "ENV FIXTURE_BREAK=header_every_request"),
    _v("no-failure-file", {"T-17"}, "ENV FIXTURE_BREAK=no_failure_file"),
    _v("status-500", {"S-16"}, "ENV FIXTURE_BREAK=status_500"),
    _v("body-limit-5mb", {"S-12"}, "ENV FIXTURE_BREAK=body_limit_5mb"),
    _v("hardcoded-host", {"T-05"}, "ENV FIXTURE_BREAK=hardcoded_host"),
    _v("str-only-hps", {"T-02", "E-04"}, "ENV FIXTURE_BREAK=str_only_hps"),
    _v("write-channel", {"T-08"}, "ENV FIXTURE_BREAK=write_channel"),
    _v("write-model-dir", {"S-02"}, "ENV FIXTURE_BREAK=write_model_dir"),
    _v("shell-entrypoint", {"C-02", "T-21", "S-13"}, SHELL_ENTRY),
    _v("no-label", {"M-02"}, label=False),
    _v("bad-sm-env", {"E-02", "E-09"}, "ENV FIXTURE_BREAK=bad_sm_env"),
    _v("baked-opt-ml", {"C-04"}, "RUN mkdir -p /opt/ml/model && echo baked > /opt/ml/model/model.json"),
]

#: correct images for single-clause tests, not part of the every-clause sweep
EXTRA = [
    # a fast fit whose run ends in a 1.5 s save that ignores SIGTERM (the model is complete): T-21 must not
    # blame it; `epochs` makes fit time grow with rows, so repeating them lets the signal land in training
    _v("fast-save", set(), "ENV FIXTURE_SAVE_SECONDS=1.5"),
]

MANIFEST = FIXTURES / "fixture" / "conformance.toml"
#: the fixture trained in a blink, with no [training.sigterm] section (T-21 defaults)
FAST_MANIFEST = FIXTURES / "fixture" / "fast-training.toml"


def build_variants(variants: list[Variant]) -> None:
    engine.ensure_engine()
    images.docker_build(BASE_TAG, FIXTURES / "fixture" / "Dockerfile", FIXTURES / "fixture")

    def one(v: Variant) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "Dockerfile").write_text("\n".join([f"FROM {BASE_TAG}", *v.lines]) + "\n")
            images.docker_build(v.tag, Path(tmp) / "Dockerfile", Path(tmp))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, variants))
