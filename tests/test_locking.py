"""Dependencies are locked: the runtime image installs exactly what uv.lock resolved (hash-checked)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_runtime_requirements_match_uv_lock(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is installed by ./dev"
    out = tmp_path / "requirements.lock"
    subprocess.run([uv, "export", "--frozen", "--package", "rosetta-runtime", "--extra", "image",
                    "--no-emit-workspace", "--no-dev", "--no-header", "-o", str(out), "-q"], cwd=ROOT, check=True)
    committed = (ROOT / "runtimes/python/requirements.lock").read_text()
    assert out.read_text() == committed, "run: uv export … -o runtimes/python/requirements.lock (see this test)"
    assert "--hash=sha256:" in committed


def test_dockerfiles_install_from_locks_without_baking_the_ca() -> None:
    for dockerfile in ROOT.glob("runtimes/*/Dockerfile*"):
        text = dockerfile.read_text()
        assert "# syntax=" not in text, f"{dockerfile}: a syntax line would pull a frontend image"
        for line in text.splitlines():
            words = line.split()
            if words and words[0] in {"COPY", "ADD"}:
                sources = " ".join(words[1:-1]).lower()
                assert not any(bad in sources for bad in (".crt", ".pem", "ca-bundle", "ca-cert")), (dockerfile, line)


def test_rpy2_flavour_installs_rpy2_from_its_hashed_lock() -> None:
    lock = (ROOT / "runtimes/r/rpy2/requirements.lock").read_text()
    assert "rpy2==3.5." in lock and "--hash=sha256:" in lock  # rpy2 3.6 fails on R 4.2.2
    dockerfile = (ROOT / "runtimes/r/Dockerfile.rpy2").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs and all("--require-hashes -r" in line for line in installs), installs
