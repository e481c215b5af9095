"""Starting and stopping the detached front process of a state folder.

The front outlives the command that started it (its own session, no terminal, output to
``front.log``), so endpoints keep answering after ``rosetta endpoint up`` returns. One front serves
every endpoint of a state folder on one port (``--port``, ``ROSETTA_ENDPOINT_PORT``, else a free
one), as SageMaker Runtime serves every endpoint of an account at one URL.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from sagemaker_rosetta.endpoint.errors import EndpointError
from sagemaker_rosetta.endpoint.state import State


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # our own child (tests): reap it if it ended
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def running(state: State) -> dict[str, Any] | None:
    """The front's ``front.json`` if its process is alive and answers."""
    info = state.front()
    if info and _alive(int(info["pid"])) and _answers(int(info["port"])):
        return info
    return None


def ensure_front(state: State, port: int | None = None, timeout: float = 60) -> str:
    """The front's URL, starting it first if it is not running."""
    with state.lock():
        info = running(state)
        if info:
            return str(info["url"])
        state.front_file.unlink(missing_ok=True)
        wanted = port if port is not None else int(os.environ.get("ROSETTA_ENDPOINT_PORT") or 0)
        with state.front_log.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sagemaker_rosetta.endpoint.front", "--state", str(state.root),
                 "--port", str(wanted)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                close_fds=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            info = state.front()
            if info and info.get("pid") == proc.pid and _answers(int(info["port"])):
                return str(info["url"])
            if proc.poll() is not None:
                tail = state.front_log.read_text(errors="replace")[-1500:].strip()
                taken = "cannot listen" in tail
                hint = " (the port is taken: give --port or set ROSETTA_ENDPOINT_PORT)" if taken else ""
                raise EndpointError(f"the endpoint front exited at start{hint}:\n{tail}")
            time.sleep(0.05)
        proc.terminate()
        raise EndpointError(f"the endpoint front did not answer within {timeout:.0f} s (log: {state.front_log})")


def stop_front(state: State, timeout: float = 10) -> bool:
    """Stop the front (SIGTERM; SIGKILL after ``timeout`` s); False when none was running."""
    with state.lock():
        info = state.front()
        state.front_file.unlink(missing_ok=True)  # also tells the front to exit (it watches the file)
        if not info:
            return False
        pid = int(info["pid"])
        if not _alive(pid):
            return False
        os.kill(pid, signal.SIGTERM)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if not _alive(pid):
                return True
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        return True


def describe(state: State) -> str:
    info = running(state)
    return json.dumps(info) if info else "not running"
