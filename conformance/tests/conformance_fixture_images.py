"""Fixture images for the suite's own tests: one stdlib program, a thin layer per breakage.

The base (debian:bookworm-slim + apt python3 + fixture.py) is built once; every variant is a
metadata-only layer on top (ENV/LABEL/ENTRYPOINT), so building all of them takes seconds. The
foreign-architecture variant is the good image with a config that claims another platform
(``local_images.relabel_platform``: same layers, nothing pulled, works offline).

A variant whose breakage acts only in multi-model mode is checked with that profile only; the
others with every profile (``all``), so each proves that its breakage trips exactly its clauses.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sagemaker_rosetta import engine, images, local_images

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BASE_TAG = "rosetta-conformance/fixture-base:latest"
BIND_LABEL = "LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true"
MME_LABEL = "LABEL com.amazonaws.sagemaker.capabilities.multi-models=true"
SHELL_ENTRY = ('ENTRYPOINT ["/bin/sh", "-c", '
               '"python3 /opt/fixture/fixture.py \\"$@\\"; rc=$?; echo finished; exit $rc", "sh"]')


@dataclass(frozen=True)
class Variant:
    name: str
    lines: tuple[str, ...]
    fails: frozenset[str]
    #: the profiles it is checked with
    profiles: tuple[str, ...] = ("all",)
    #: build: the good image relabelled for the host's other architecture (C-08)
    foreign: bool = False

    @property
    def tag(self) -> str:
        return f"rosetta-conformance/fixture:{self.name}"


def _v(name: str, fails: set[str], *lines: str, labels: tuple[str, ...] = (BIND_LABEL, MME_LABEL),
       profiles: tuple[str, ...] = ("all",), foreign: bool = False) -> Variant:
    return Variant(name, labels + lines, frozenset(fails), profiles, foreign)


def _mm(name: str, fails: set[str], *lines: str, **kw: tuple[str, ...]) -> Variant:
    """A breakage of multi-model mode only: checked with the multi-model profile."""
    return _v(name, fails, *lines, profiles=("multi-model",), **kw)


#: each deliberately broken image and exactly the clauses it must fail
VARIANTS = [
    _v("good", set()),
    _v("loopback", {"S-05"}, "ENV FIXTURE_BREAK=loopback"),
    # two copies in one namespace both want 8080 (and 9999): the second cannot start (M-01)
    _v("ignore-port", {"S-04", "M-03", "M-01"}, "ENV FIXTURE_BREAK=ignore_port"),
    _v("extra-port", {"M-03", "M-01"}, "ENV FIXTURE_BREAK=extra_port"),
    _v("ping-early", {"S-09"}, "ENV FIXTURE_BREAK=ping_early FIXTURE_LOAD_SECONDS=3"),
    _v("csv-header", {"B-08", "B-09", "B-13"}, "ENV FIXTURE_BREAK=csv_header"),
    _v("header-every-request", {"B-13"}, "ENV FIXTURE_BREAK=header_every_request"),
    _v("no-failure-file", {"T-17"}, "ENV FIXTURE_BREAK=no_failure_file"),
    # a multi-model invoke has the /invocations semantics, its 500 included (MM-09)
    _v("status-500", {"S-16", "MM-09"}, "ENV FIXTURE_BREAK=status_500"),
    _v("body-limit-5mb", {"S-12"}, "ENV FIXTURE_BREAK=body_limit_5mb"),
    _v("hardcoded-host", {"T-05"}, "ENV FIXTURE_BREAK=hardcoded_host"),
    _v("str-only-hps", {"T-02", "E-04"}, "ENV FIXTURE_BREAK=str_only_hps"),
    _v("write-channel", {"T-08"}, "ENV FIXTURE_BREAK=write_channel"),
    _v("write-model-dir", {"S-02"}, "ENV FIXTURE_BREAK=write_model_dir"),
    _v("shell-entrypoint", {"C-02", "T-21", "S-13"}, SHELL_ENTRY),
    _v("no-label", {"M-02"}, labels=(MME_LABEL,)),
    _v("bad-sm-env", {"E-02", "E-09"}, "ENV FIXTURE_BREAK=bad_sm_env"),
    _v("baked-opt-ml", {"C-04"}, "RUN mkdir -p /opt/ml/model && echo baked > /opt/ml/model/model.json"),
    _v("plain-output", {"M-01"}, "ENV FIXTURE_BREAK=plain_output"),
    _v("ignore-checkpoints", {"T-13"}, "ENV FIXTURE_BREAK=ignore_checkpoints"),
    _v("foreign-arch", {"C-08"}, foreign=True),
    _mm("no-mme-label", {"MM-01"}, labels=(BIND_LABEL,)),
    _mm("mme-ping-needs-model", {"MM-02"}, "ENV FIXTURE_BREAK=mme_ping_needs_model"),
    _mm("mme-no-409", {"MM-04"}, "ENV FIXTURE_BREAK=mme_no_409"),
    _mm("mme-bad-body-500", {"MM-05"}, "ENV FIXTURE_BREAK=mme_bad_body_500"),
    _mm("mme-get-unknown-200", {"MM-06"}, "ENV FIXTURE_BREAK=mme_get_unknown_200"),
    _mm("mme-bad-paging", {"MM-07"}, "ENV FIXTURE_BREAK=mme_bad_paging"),
    # the deleted model keeps its memory too, so after the 507 nothing frees any (MM-12)
    _mm("mme-delete-keeps", {"MM-08", "MM-12"}, "ENV FIXTURE_BREAK=mme_delete_keeps"),
    _mm("mme-invoke-no-415", {"MM-09"}, "ENV FIXTURE_BREAK=mme_invoke_no_415"),
    _mm("mme-load-blocks", {"MM-10"}, "ENV FIXTURE_BREAK=mme_load_blocks FIXTURE_MME_LOAD_SECONDS=3"),
    _mm("mme-no-507", {"MM-11"}, "ENV FIXTURE_BREAK=mme_no_507"),
    _mm("mme-unload-leaks", {"MM-12"}, "ENV FIXTURE_BREAK=mme_unload_leaks"),
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
        if v.foreign:
            _, arch = local_images.engine_platform()
            local_images.relabel_platform(v.tag, v.tag, architecture="arm64" if arch != "arm64" else "amd64")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, variants))
