"""The definition cache: a pipeline file's built definition, reused while nothing it was built from changed.

Building a Python pipeline file imports the SageMaker SDK and runs its step builders: seconds, every
time, even when every step of the run then comes from the step cache. A cache entry keeps what a run
needs from the build (the definition JSON, the pipeline's name, runtimes, role and description, the
assets to stage, copies of what the SDK uploaded while building, and whether the file has a
``report()`` hook), so a hit never imports the SDK.

**Key.** An entry is found by the pipeline file's path and content, Rosetta's own build code (a
digest of the ``rosetta_orchestrator`` sources that build definitions), the installed SDK (``sagemaker*``, ``boto3``,
``botocore`` distribution versions), the Python version, ``sys.path`` and the options that change
the build (the execution role). It is used only while everything the first build *read* is
unchanged, recorded while it ran:

- every file read (Python's audit events ``open``; a module's ``.pyc`` stands for its source): the
  pipeline's local modules, its ``p.upload`` and ``code=`` files, data it read, SDK configuration
  files… Python sources are compared by content; other files by size and modification time, and by
  content when those differ. Files under the interpreter's prefixes (the standard library, the SDK,
  every installed distribution) are covered by the versions above; Rosetta's by its digest;
- every folder listed by code outside the import system and the installed libraries (``p.upload``
  of a folder, a ``glob`` in the pipeline file): its entry names;
- every environment variable the build read that can change a definition: ``AWS_*`` and
  ``SAGEMAKER_*`` (less credentials, which an offline build never uses), and any variable read by the
  pipeline file or its local modules. Stored as hashes, never values;
- files whose presence matters although a build without them never opens them (the SDK's user
  and admin config files): that they are still absent;
- the working directory, when the build opened a relative path.

What a build depends on beyond these (the clock, random numbers, the network) is frozen at the first
build: ``--no-cache`` rebuilds. Entries live in ``$ROSETTA_DEFINITION_CACHE`` (``off`` disables the
cache), else ``$XDG_CACHE_HOME/rosetta/definitions`` (``~/.cache/rosetta/definitions``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.util import source_from_cache
from pathlib import Path
from typing import Any

FORMAT = 1
#: environment variables that never change a definition and rotate (temporary credentials)
CREDENTIALS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                         "AWS_CREDENTIAL_EXPIRATION"})
#: the admin config file Rosetta's offline build writes (``sdk.offline_build``) when the user set none
OWN_ADMIN_CONFIG = "rosetta-sagemaker-config-"
#: entries and upload copies not used for this long are removed when a new entry is written
EXPIRE_SECONDS = 30 * 86400
_PACKAGE = Path(__file__).resolve().parent
_THIS = __file__


def _prefixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(installed libraries, standard library and interpreter) folders, each ending in a separator."""
    paths = sysconfig.get_paths()
    libs = {paths["purelib"], paths["platlib"]}
    std = {paths["stdlib"], paths["platstdlib"], sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return _folders(libs), _folders(std)


def _folders(paths: set[str]) -> tuple[str, ...]:
    """Each folder as given and as resolved (frames and paths may name either), ending in a separator."""
    return tuple(sorted({os.path.join(f, "") for p in paths if p for f in (p, os.path.realpath(p))}))


LIBS, STD = _prefixes()
_IGNORED = (*LIBS, *STD, os.path.join(str(_PACKAGE), ""), "/proc/", "/sys/", "/dev/")


def _sha_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- recording what a build reads -------------------------------------------------------------------
@dataclass
class Recorder:
    """What one build read: files, listed folders, environment variables (collected by an audit hook
    and a recording ``os.environ`` while :func:`recording` is active, on the building thread only)."""

    thread: int
    env_before: dict[str, str]
    read: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    listed: set[str] = field(default_factory=set)
    env: set[str] = field(default_factory=set)
    #: files whose presence matters although the build may not have opened them (SDK config files)
    watched: set[str] = field(default_factory=set)
    relative: bool = False
    busy: bool = False

    def deps(self) -> dict[str, Any]:
        """The recorded dependencies with their current state (taken right after the build)."""
        files: dict[str, list[Any]] = {}
        for path in sorted((self.read - self.written) | self.watched):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if os.path.isfile(path):
                files[path] = [st.st_size, st.st_mtime_ns, _sha_file(path)]
        dirs = {d: _listing(d) for d in sorted(self.listed) if os.path.isdir(d)}
        env = {k: _env_hash(k, self.env_before.get(k)) for k in sorted(self.env)}
        absent = sorted(p for p in self.watched if not os.path.exists(p))
        out: dict[str, Any] = {"files": files, "dirs": dirs, "env": env, "absent": absent}
        if self.relative:
            out["cwd"] = os.getcwd()
        return out


_active: Recorder | None = None
_hook_lock = threading.Lock()
_hook_installed = False


def _frame_kind(filename: str) -> str:
    if filename.startswith("<frozen importlib"):
        return "import"
    if filename.startswith("<") or (filename.startswith(STD) and not filename.startswith(LIBS)):
        return "std"
    return "lib" if filename.startswith(LIBS) else "local"


def _caller_is_local() -> bool:
    """Whether the nearest caller outside the standard library is local code (not an installed library,
    not the import system)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == _THIS:  # this module's own frames (the hook, the recording environ)
            frame = frame.f_back  # type: ignore[assignment]
            continue
        kind = _frame_kind(frame.f_code.co_filename)
        if kind == "import":
            return False
        if kind != "std":
            return kind == "local"
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    rec = _active
    if rec is None or rec.busy or event not in ("open", "os.listdir", "os.scandir"):
        return
    if threading.get_ident() != rec.thread:
        return
    rec.busy = True
    try:
        if event == "open":
            _record_open(rec, args)
        elif _caller_is_local():
            target = args[0] if args and args[0] is not None else "."
            if isinstance(target, str | bytes | os.PathLike):
                path = os.fsdecode(target)
                rec.relative |= not os.path.isabs(path)
                path = os.path.abspath(path)
                if not path.startswith(_IGNORED):
                    rec.listed.add(path)
    except Exception:  # an audit hook must never break the code it watches
        pass
    finally:
        rec.busy = False


def _record_open(rec: Recorder, args: tuple[Any, ...]) -> None:
    target, mode = args[0], args[1] if len(args) > 1 else None
    if not isinstance(target, str | bytes | os.PathLike):
        return  # a file descriptor
    path = os.fsdecode(target)
    if not os.path.isabs(path):
        rec.relative = True
        path = os.path.abspath(path)
    if isinstance(mode, str):
        writing = any(c in mode for c in "wax+")
    else:
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        writing = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    if path.endswith(".pyc") and "__pycache__" in path:
        try:
            path = source_from_cache(path)
        except ValueError:
            pass
    if path.startswith(_IGNORED):
        return
    (rec.written if writing else rec.read).add(path)


def _wants_env(rec: Recorder, key: str) -> bool:
    if key in rec.env or key in CREDENTIALS or key.startswith("AWS_BEARER_TOKEN"):
        return False
    return key.startswith(("AWS_", "SAGEMAKER_")) or _caller_is_local()


class _RecordingEnviron(os._Environ[str]):
    """``os.environ`` while a build is recorded: notes the variables read (``get``, ``in``, ``[]``)."""

    def __getitem__(self, key: str) -> str:
        rec = _active
        if rec is not None and not rec.busy and threading.get_ident() == rec.thread:
            rec.busy = True
            try:
                if _wants_env(rec, key):
                    rec.env.add(key)
            finally:
                rec.busy = False
        return super().__getitem__(key)


def _env_hash(key: str, value: str | None) -> str | None:
    if key == "SAGEMAKER_ADMIN_CONFIG_OVERRIDE" and value and os.path.basename(value).startswith(OWN_ADMIN_CONFIG):
        value = None  # Rosetta's own opt-out file: what an unset variable becomes during a build
    return None if value is None else _sha_text(f"{key}={value}")


def _listing(folder: str) -> str:
    try:
        return _sha_text("\0".join(sorted(os.listdir(folder))))
    except OSError:
        return ""


@contextmanager
def recording() -> Iterator[Recorder]:
    """Record what the code in the block reads (files, folders, environment), on this thread."""
    global _active, _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)  # cannot be removed: it returns at once when nothing is recorded
            _hook_installed = True
    rec = Recorder(threading.get_ident(), dict(os.environ))
    previous_class = os.environ.__class__
    _active = rec
    os.environ.__class__ = _RecordingEnviron
    try:
        yield rec
    finally:
        os.environ.__class__ = previous_class
        _active = None


def stale(deps: Mapping[str, Any]) -> str | None:
    """Why recorded dependencies no longer hold (what changed), or None when they all do."""
    if "cwd" in deps and deps["cwd"] != os.getcwd():
        return f"the working directory is not {deps['cwd']}"
    for path, (size, mtime_ns, digest) in deps.get("files", {}).items():
        try:
            st = os.stat(path)
        except OSError:
            return f"{path} is gone"
        same_stat = st.st_size == size and st.st_mtime_ns == mtime_ns
        if (path.endswith(".py") or not same_stat) and _sha_file(path) != digest:
            return f"{path} changed"
    for path in deps.get("absent", []):
        if os.path.exists(path):
            return f"{path} appeared"
    for folder, digest in deps.get("dirs", {}).items():
        if _listing(folder) != digest:
            return f"the files in {folder} changed"
    for key, digest in deps.get("env", {}).items():
        if _env_hash(key, os.environ.get(key)) != digest:
            return f"environment variable {key} changed"
    return None


# -- the cache ----------------------------------------------------------------------------------------
#: the code a build runs besides the package's top-level modules (the API, the SDK glue, the loader):
#: the loader names each step's runtime with the plan of ``local/``
BUILD_MODULES = ("local/plan.py", "local/precheck.py", "local/expressions.py")


def rosetta_digest() -> str:
    """Rosetta's build code: the package's top-level modules and :data:`BUILD_MODULES` (the rest of
    ``local/`` runs definitions; it does not build them)."""
    h = hashlib.sha256()
    files = sorted({*_PACKAGE.glob("*.py"), *(_PACKAGE / m for m in BUILD_MODULES)})
    for f in files:
        with _quiet():
            h.update(f.relative_to(_PACKAGE).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def library_versions() -> list[str]:
    """The installed SDK's distributions (``sagemaker*``, ``boto3``, ``botocore``), without importing them."""
    found: list[str] = []
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        found += sorted(n for n in names if n.endswith(".dist-info")
                        and n.lower().replace("_", "-").startswith(("sagemaker", "boto3-", "botocore-")))
    return found


def default_root() -> Path | None:
    """``$ROSETTA_DEFINITION_CACHE`` (``off``/``0``/empty: no cache), else the user's cache folder."""
    value = os.environ.get("ROSETTA_DEFINITION_CACHE")
    if value is not None:
        return None if value.strip().lower() in ("", "0", "off", "false", "no") else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rosetta" / "definitions"


@dataclass
class Hit:
    """A usable entry: the build's fields, with captured uploads at their copies in the cache."""

    entry: dict[str, Any]
    assets: dict[str, Path]
    created: str


class DefinitionCache:
    """Built definitions under ``root``: ``<key>.json`` entries and ``uploads/<digest>/`` copies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        #: why the last :meth:`get` missed (for the CLI to say)
        self.miss_reason = ""

    @classmethod
    def default(cls) -> DefinitionCache | None:
        root = default_root()
        return cls(root) if root is not None else None

    def key(self, file: Path, options: Mapping[str, Any]) -> str:
        """The entry's name for this file content, Rosetta, SDK, interpreter and options (taken before a
        build: the build may change ``sys.path``)."""
        doc = {"format": FORMAT, "file": str(file), "content": _sha_file(str(file)), "rosetta": rosetta_digest(),
               "libraries": library_versions(), "python": sys.version, "sys.path": sys.path,
               "options": dict(options)}
        return _sha_text(json.dumps(doc, sort_keys=True, default=str))

    def get(self, key: str) -> Hit | None:
        path = self.root / f"{key}.json"
        try:
            entry = json.loads(path.read_text())
        except FileNotFoundError:
            self.miss_reason = "no earlier build of this content"
            return None
        except (OSError, ValueError) as exc:
            self.miss_reason = f"unreadable entry {path.name}: {exc}"
            return None
        why = stale(entry.get("deps", {}))
        assets = {uri: Path(p) for uri, p in entry.get("assets", {}).items()}
        for uri, rel in entry.get("captured", {}).items():
            assets[uri] = self.root / rel
        missing = [str(p) for p in assets.values() if not p.exists()]
        if why is None and missing:
            why = f"{missing[0]} is gone"
        if why is not None:
            self.miss_reason = why
            return None
        with _quiet():
            os.utime(path)  # last used: entries unused for EXPIRE_SECONDS are removed
        return Hit(entry, assets, str(entry.get("created", "")))

    def put(self, key: str, file: Path, fields: Mapping[str, Any], assets: Mapping[str, Path],
            captured: Mapping[str, Path], deps: Mapping[str, Any]) -> Path:
        """Store a build atomically; ``captured`` are the SDK's uploads (temporary copies, copied in)."""
        self.root.mkdir(parents=True, exist_ok=True)
        copies = {uri: self._keep_upload(src) for uri, src in captured.items()}
        entry = {"format": FORMAT, "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                 "file": str(file), **fields,
                 "assets": {uri: str(p) for uri, p in assets.items() if uri not in captured},
                 "captured": copies, "deps": dict(deps)}
        target = self.root / f"{key}.json"
        tmp = self.root / f".{target.name}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, target)
        self._expire()
        return target

    def _keep_upload(self, src: Path) -> str:
        """A copy of one captured upload under ``uploads/<content digest>/<name>`` (shared, never rewritten)."""
        h = hashlib.sha256()
        files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
        for f in files:
            h.update(f.relative_to(src).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
        rel = Path("uploads") / h.hexdigest()[:32] / src.name
        dest = self.root / rel
        if not dest.exists():
            staging = self.root / "uploads" / f".{uuid.uuid4().hex}.tmp"
            staging.mkdir(parents=True)
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, staging / src.name)
            try:
                os.replace(staging, dest.parent)
            except OSError:  # another process stored the same content first
                shutil.rmtree(staging, ignore_errors=True)
        return rel.as_posix()

    def _expire(self) -> None:
        """Remove entries unused for :data:`EXPIRE_SECONDS` and upload copies no entry names."""
        now = time.time()
        used: set[str] = set()
        for entry in self.root.glob("*.json"):
            with _quiet():
                if now - entry.stat().st_mtime > EXPIRE_SECONDS:
                    entry.unlink()
                    continue
                used |= {Path(rel).parts[1] for rel in json.loads(entry.read_text()).get("captured", {}).values()}
        for folder in (self.root / "uploads").glob("*"):
            if folder.name not in used and now - folder.stat().st_mtime > 3600:
                shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _quiet() -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError):
        pass


def temp_root() -> Path:
    """A throwaway cache folder (tests, benchmarks)."""
    return Path(tempfile.mkdtemp(prefix="rosetta-defcache-"))
