"""The definition cache: a cached build skips the SDK, and whatever the build read invalidates it.

The whole-command checks run ``rosetta`` in fresh interpreters with ``-X importtime`` (a hit must not
import the SDK at all); the invalidation matrix runs in this process, where the SDK is already imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from orch_helpers import HERE, ROOT

from rosetta_orchestrator.defcache import DefinitionCache, recording, stale
from rosetta_orchestrator.loader import load_source

PIPELINE = '''"""A one-step pipeline for the definition cache tests."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
{import_helper}
from rosetta_orchestrator import Pipeline  # noqa: E402


def pipeline() -> Pipeline:
    p = Pipeline("defcache-test", bucket="rosetta-test")
    data = p.upload(HERE / "data")
    p.training("Train", image="rosetta-test/echo:latest", inputs={{"train": data}}, metrics=["rows"], cache=True,
               hyperparameters={{"prefix": helper.PREFIX, "repeat": os.environ.get("DEFCACHE_TEST_REPEAT", "1")}})
    return p


def report(result: Any, console: Any) -> None:
    console.print(f"REPORT rows={{result.steps['Train'].properties['FinalMetricDataList'][0]['Value']:g}}")
'''


#: a local module on a path the pipeline file adds (a fresh interpreter per load: the tests that use it
#: run the CLI, since this process keeps both the module and the longer sys.path)
IMPORT_HELPER = """sys.path.insert(0, str(HERE))
import defcache_helper as helper  # noqa: E402  (a local module: its content is part of the key)
"""
NO_HELPER = "helper = type(sys)('helper')\nhelper.PREFIX = 'a'\n"


def write_pipeline(folder: Path, *, local_module: bool = True) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "rows.csv").write_text("1\n2\n3\n")
    (folder / "defcache_helper.py").write_text('PREFIX = "a"\n')
    (folder / "pipeline.py").write_text(PIPELINE.format(import_helper=IMPORT_HELPER if local_module else NO_HELPER))
    return folder / "pipeline.py"


def rosetta(*args: str, cache: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A whole ``rosetta`` command in a fresh interpreter, with its imports listed (``-X importtime``)."""
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "sagemaker_rosetta.cli", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
                          env={**os.environ, "ROSETTA_DEFINITION_CACHE": str(cache), **(env or {})})


def sdk_imported(stderr: str) -> bool:
    """Whether ``-X importtime`` lists a module of the SageMaker SDK, boto3 or botocore."""
    names = [line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")]
    return any(n.split(".")[0] in ("sagemaker", "boto3", "botocore") for n in names)


def messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("import time:")]


@pytest.mark.docker
def test_cached_rerun_skips_the_sdk_and_edits_invalidate(echo_image: str, tmp_path: Path) -> None:
    file = write_pipeline(tmp_path / "p")
    cache = tmp_path / "cache"
    run = ("pipeline", "run", str(file), "--store", str(tmp_path / "s3"), "--workdir", str(tmp_path / "runs"))

    first = rosetta(*run, cache=cache)
    assert first.returncode == 0, "\n".join(messages(first.stderr))[-3000:]
    assert sdk_imported(first.stderr)
    assert "REPORT rows=3" in first.stderr

    again = rosetta(*run, cache=cache)
    assert again.returncode == 0, "\n".join(messages(again.stderr))[-3000:]
    assert not sdk_imported(again.stderr), "a cache hit must not import the SDK"
    assert any("definition: the build of" in line for line in messages(again.stderr))
    assert "REPORT rows=3" in again.stderr  # report() from the file, imported again without building
    results = sorted((tmp_path / "runs").glob("*/result.json"), key=lambda p: p.stat().st_mtime)
    assert len(results) == 2
    assert json.loads(results[-1].read_text())["steps"]["Train"]["cached_from"]  # the step cache, as before

    hit = rosetta("pipeline", "definition", str(file), cache=cache)
    assert hit.returncode == 0 and not sdk_imported(hit.stderr)
    assert prefix_of(hit.stdout) == "a"

    # a local module the build imported
    (file.parent / "defcache_helper.py").write_text('PREFIX = "b"\n')
    edited = rosetta("pipeline", "definition", str(file), cache=cache)
    assert edited.returncode == 0 and sdk_imported(edited.stderr)
    assert any(f"built again ({file.parent / 'defcache_helper.py'} changed)" in line
               for line in messages(edited.stderr))
    assert prefix_of(edited.stdout) == "b"
    # an environment variable the pipeline file read
    env = rosetta("pipeline", "definition", str(file), cache=cache, env={"DEFCACHE_TEST_REPEAT": "2"})
    assert env.returncode == 0 and sdk_imported(env.stderr)
    assert any("built again (environment variable DEFCACHE_TEST_REPEAT changed)" in line
               for line in messages(env.stderr))
    assert hyperparameters(env.stdout)["repeat"] == "2"
    # the pipeline file itself
    file.write_text(file.read_text().replace('"defcache-test"', '"defcache-renamed"'))
    renamed = rosetta("pipeline", "definition", str(file), cache=cache)
    assert renamed.returncode == 0 and sdk_imported(renamed.stderr)
    assert '"defcache-renamed' in renamed.stdout
    # --no-cache builds even when the entry is good
    forced = rosetta("pipeline", "graph", str(file), "--no-cache", cache=cache)
    assert forced.returncode == 0 and sdk_imported(forced.stderr)
    assert any("built again (--no-cache)" in line for line in messages(forced.stderr))
    cached_graph = rosetta("pipeline", "graph", str(file), cache=cache)
    assert cached_graph.returncode == 0 and not sdk_imported(cached_graph.stderr)
    assert cached_graph.stdout == forced.stdout


def training_step(definition: str) -> dict[str, object]:
    steps = json.loads(definition)["Steps"]
    return next(s for s in steps if s["Name"] == "Train")["Arguments"]  # type: ignore[no-any-return]


def hyperparameters(definition: str) -> dict[str, str]:
    return training_step(definition)["HyperParameters"]  # type: ignore[return-value]


def prefix_of(definition: str) -> str:
    return hyperparameters(definition)["prefix"]


# -- in this process: what invalidates an entry ---------------------------------------------------------
def _load(file: Path, cache: DefinitionCache, **kw: object) -> object:
    return load_source(file, cache=cache, **kw)  # type: ignore[arg-type]


def test_inputs_of_the_build_invalidate_in_process(tmp_path: Path) -> None:
    file = write_pipeline(tmp_path / "p", local_module=False)
    cache = DefinitionCache(tmp_path / "cache")
    first = load_source(file, cache=cache)
    assert first.cached_build == "" and first.pipeline is not None
    second = load_source(file, cache=cache)
    assert second.cached_build and second.pipeline is None
    assert second.definition == first.definition and second.assets == first.assets
    assert second.runtimes == first.runtimes and second.name == first.name

    # a new file in a folder given to p.upload: the folder's listing is part of the key
    (file.parent / "data" / "more.csv").write_text("4\n")
    third = load_source(file, cache=cache)
    assert third.cached_build == "" and third.cache_miss == f"the files in {file.parent / 'data'} changed"
    assert load_source(file, cache=cache).cached_build
    # the content of a file the build read (p.upload digests it)
    (file.parent / "data" / "rows.csv").write_text("1\n2\n3\n4\n")
    assert load_source(file, cache=cache).cache_miss == f"{file.parent / 'data' / 'rows.csv'} changed"
    # a variable nobody read does not matter; credentials never do
    os.environ["DEFCACHE_UNRELATED"] = "x"
    os.environ["AWS_SESSION_TOKEN"] = "rotated"
    try:
        assert load_source(file, cache=cache).cached_build
    finally:
        del os.environ["DEFCACHE_UNRELATED"], os.environ["AWS_SESSION_TOKEN"]
    # refresh (--no-cache) builds and stores the new build
    refreshed = load_source(file, cache=cache, refresh=True)
    assert refreshed.cached_build == "" and refreshed.cache_miss == "--no-cache"
    # an unreadable entry is a miss, then rewritten
    for entry in cache.root.glob("*.json"):
        entry.write_text("{not json")
    assert load_source(file, cache=cache).cache_miss.startswith("unreadable entry")
    assert load_source(file, cache=cache).cached_build


def test_sdk_uploads_are_kept_with_the_entry(tmp_path: Path) -> None:
    """An SDK-native file: the code the SDK uploads while it builds is staged from the cache on a hit."""
    file = HERE / "pipelines" / "sdk_native.py"
    cache = DefinitionCache(tmp_path / "cache")
    built = load_source(file, cache=cache)
    captured = {uri: p.read_bytes() for uri, p in built.assets.items() if p.is_file()}
    assert any(v == (HERE / "pipelines" / "prepare.py").read_bytes() for v in captured.values())
    hit = load_source(file, cache=cache)
    assert hit.cached_build and hit.kind == "sdk" and hit.definition == built.definition
    assert {uri: p.read_bytes() for uri, p in hit.assets.items() if p.is_file()} == captured
    assert all(p.is_relative_to(cache.root) for p in hit.assets.values())


def test_recording_sees_files_folders_and_environment(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "d").mkdir()
    os.environ.pop("DEFCACHE_READ", None)
    with recording() as rec:
        (tmp_path / "a.txt").read_text()
        os.listdir(tmp_path / "d")
        os.environ.get("DEFCACHE_READ")
        (tmp_path / "w.txt").write_text("written by the build")
        os.environ.get("HOME")  # read here, by local code: recorded too
    rec.watched.add(str(tmp_path / "config.yaml"))  # like the SDK's config files: absent matters
    deps = rec.deps()
    assert deps["absent"] == [str(tmp_path / "config.yaml")]
    assert str(tmp_path / "a.txt") in deps["files"] and str(tmp_path / "w.txt") not in deps["files"]
    assert str(tmp_path / "d") in deps["dirs"]
    assert deps["env"]["DEFCACHE_READ"] is None
    assert len(deps["env"]["HOME"]) == 64 and os.environ["HOME"] not in json.dumps(deps["env"]), "hashes, not values"
    assert stale(deps) is None
    os.environ["DEFCACHE_READ"] = "1"
    try:
        assert stale(deps) == "environment variable DEFCACHE_READ changed"
    finally:
        del os.environ["DEFCACHE_READ"]
    (tmp_path / "d" / "new").write_text("")
    assert stale(deps) == f"the files in {tmp_path / 'd'} changed"
    (tmp_path / "config.yaml").write_text("SchemaVersion: '1.0'\n")
    assert stale(deps) == f"{tmp_path / 'config.yaml'} appeared"
