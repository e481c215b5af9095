"""Echo model for the orchestrator tests (stdlib only).

train: hyperparameters ``prefix`` (string) and ``repeat`` (integer, else HyperparameterError in
/opt/ml/output/failure, exit 1); counts the rows of channel ``train`` (a row ``FAIL`` fails the job
with DataError); prints ``#metric rows=N``; writes model.json (on the first host only).
Multi-host and tuning tests: ``fail_host`` (that host fails), ``sleep`` (seconds before the end),
``seen`` (or several hosts: ``model/hosts/<host>.json`` records resourceconfig, inputdataconfig, the
files per channel and every host's address), ``epochs``/``epoch_seconds`` (an epoch loop that
checkpoints after each epoch and resumes from the checkpoint folder of checkpointconfig.json;
model.json records ``resumed_from``), ``score_of``/``loss_of`` (JSON ``{hyperparameter: weight}``:
prints ``#metric score=`` / ``loss=`` the weighted sum of those hyperparameters); with
``ECHO_DECLARED=a,b`` in the environment it rejects other names as the runtimes do (contract
golden case ``hp-unknown-key``).
serve: ``/ping``; ``/execution-parameters`` from ECHO_EXECUTION_PARAMETERS (JSON) or 404;
``/invocations`` answers ``<prefix>:<record>`` per input line (repeat times), logs one
``request records=N bytes=B accept=A`` line per request, 413 above SAGEMAKER_MAX_PAYLOAD_IN_MB.
With ROSETTA_CSV_HEADER=true the first line of a request is dropped when it is not numeric (the
header rule D1), or always with ECHO_HEADER_BUG=1 (the defect of issue 13: a data row lost per
request). ``Accept: application/json`` answers ``{"predictions": [...]}``; any other Accept but
text/csv answers its own type with the CSV body (a type the runner cannot count).
"""

import json
import os
import signal
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, NoReturn

ML = Path(os.environ.get("ECHO_ML_ROOT", "/opt/ml"))


def fail(reason: str) -> NoReturn:
    (ML / "output").mkdir(parents=True, exist_ok=True)
    (ML / "output" / "failure").write_text(reason + "\n\ndetails: echo test image\n")
    print(reason, file=sys.stderr, flush=True)
    sys.exit(1)


def cluster() -> tuple[str, list[str]]:
    path = ML / "input" / "config" / "resourceconfig.json"
    doc = json.loads(path.read_text()) if path.is_file() else {}
    return doc.get("current_host", "algo-1"), sorted(doc.get("hosts", ["algo-1"]))


def checkpoint_dir() -> Path:
    path = ML / "input" / "config" / "checkpointconfig.json"
    doc = json.loads(path.read_text()) if path.is_file() else {}
    folder = Path(doc.get("LocalPath") or ML / "checkpoints")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def epochs(total: int, seconds: float) -> int | None:
    """Train ``total`` epochs of ``seconds`` each, checkpointing after each; the epoch resumed from."""
    file = checkpoint_dir() / "echo-checkpoint.json"
    start = json.loads(file.read_text())["epoch"] if file.is_file() else None
    for epoch in range((start or 0) + 1, total + 1):
        time.sleep(seconds)
        tmp = file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"epoch": epoch}))
        tmp.replace(file)
        print(f"epoch {epoch}/{total} #metric epoch={epoch}", flush=True)
    return start


def barrier(host: str, hosts: list[str], port: int = 7077, timeout: float = 120) -> None:
    """Meet every other host over TCP (by its name), so that none exits before all have met: the
    engine's DNS forgets a container once it has exited."""
    others = [h for h in hosts if h != host]
    met: set[str] = set()
    server = socket.create_server(("0.0.0.0", port))
    server.settimeout(0.2)
    end = time.monotonic() + timeout
    reached: set[str] = set()
    while (len(met) < len(others) or len(reached) < len(others)) and time.monotonic() < end:
        try:
            conn, _ = server.accept()
            met.add(conn.recv(64).decode())
            conn.close()
        except OSError:
            pass
        for other in others:
            if other not in reached:
                try:
                    with socket.create_connection((other, port), timeout=0.5) as c:
                        c.sendall(host.encode())
                    reached.add(other)
                except OSError:
                    pass
    server.close()


def train() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # PID 1 ignores SIGTERM without a handler
    hps = json.loads((ML / "input" / "config" / "hyperparameters.json").read_text())
    host, hosts = cluster()
    if os.environ.get("ECHO_DECLARED") is not None:  # behave like a runtime with typed hyperparameters
        declared = sorted(n for n in os.environ["ECHO_DECLARED"].split(",") if n)
        unknown = sorted(k for k in hps if k not in declared and not k.startswith("sagemaker_"))
        if unknown:
            fail(f"HyperparameterError: unknown hyperparameter {', '.join(repr(k) for k in unknown)}; "
                 f"declared: {', '.join(declared)}")
    if hps.get("fail_host") == host:
        fail(f"DataError: told to fail on {host}")
    prefix = hps.get("prefix", "echo")
    raw = hps.get("repeat", "1")
    try:
        repeat = int(raw)
    except ValueError:
        fail(f"HyperparameterError: repeat: expected an integer, got {raw!r}")
    rows = 0
    channel = ML / "input" / "data" / "train"
    for f in sorted(channel.rglob("*")) if channel.is_dir() else []:
        if f.is_file():
            lines = [line for line in f.read_text().splitlines() if line.strip()]
            if "FAIL" in lines:
                fail(f"DataError: {f.name} has a FAIL row")
            rows += len(lines)
    resumed = epochs(int(hps["epochs"]), float(hps.get("epoch_seconds", "0.5"))) if "epochs" in hps else None
    print(f"training echo model prefix={prefix} repeat={repeat} rows={rows}", flush=True)
    print(f"#metric rows={rows}", flush=True)
    for name in ("score", "loss"):  # tuning tests: a metric computed from the hyperparameters
        if f"{name}_of" in hps:
            value = sum(float(hps.get(k, 0)) * float(w) for k, w in json.loads(hps[f"{name}_of"]).items())
            print(f"#metric {name}={value}", flush=True)
    if "sleep" in hps:
        time.sleep(float(hps["sleep"]))
    model = ML / "model"
    if len(hosts) > 1 or "seen" in hps:  # what this host saw (multi-host tests)
        barrier(host, hosts)
        (model / "hosts").mkdir(exist_ok=True)
        channels = ML / "input" / "data"
        seen = {
            "host": host, "hosts": hosts, "hostname": socket.gethostname(),
            "resourceconfig": json.loads((ML / "input" / "config" / "resourceconfig.json").read_text()),
            "inputdataconfig": json.loads((ML / "input" / "config" / "inputdataconfig.json").read_text()),
            "addresses": {h: socket.gethostbyname(h) for h in hosts},
            "files": {c.name: sorted(f.relative_to(c).as_posix() for f in c.rglob("*") if f.is_file())
                      for c in sorted(channels.iterdir()) if c.is_dir()} if channels.is_dir() else {},
            "hyperparameters": hps,
        }
        (model / "hosts" / f"{host}.json").write_text(json.dumps(seen))
    if host == hosts[0]:
        (model / "model.json").write_text(json.dumps({"prefix": prefix, "repeat": repeat, "rows": rows,
                                                      **({"resumed_from": resumed} if "epochs" in hps else {})}))
        (model / "sub").mkdir(exist_ok=True)
        (model / "sub" / "note.txt").write_text("nested file\n")


class Handler(BaseHTTPRequestHandler):
    model: ClassVar[dict[str, Any]] = {}

    def log_message(self, *args: Any) -> None:  # quiet access log; we print our own lines
        pass

    def _send(self, code: int, body: bytes = b"", ctype: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/ping":
            return self._send(200)
        if self.path == "/execution-parameters" and os.environ.get("ECHO_EXECUTION_PARAMETERS"):
            return self._send(200, os.environ["ECHO_EXECUTION_PARAMETERS"].encode(), "application/json")
        self._send(404, b"not found\n")

    def do_POST(self) -> None:
        if self.path != "/invocations":
            return self._send(404, b"not found\n")
        n = int(self.headers.get("Content-Length") or 0)
        limit = int(os.environ.get("SAGEMAKER_MAX_PAYLOAD_IN_MB", "6")) * 1024 * 1024
        body = self.rfile.read(n)
        if n > limit:
            return self._send(413, b"payload too large\n")
        text = body.decode()
        if "POISON" in text:
            return self._send(400, b"row 1: 'POISON' is not a number\n")
        lines = [line for line in text.splitlines() if line.strip()]
        if lines and os.environ.get("ROSETTA_CSV_HEADER") == "true" and (
                os.environ.get("ECHO_HEADER_BUG") == "1" or not numeric(lines[0])):
            lines = lines[1:]
        print(f"request records={len(lines)} bytes={n} accept={self.headers.get('Accept')} "
              f"content_type={self.headers.get('Content-Type')} "
              f"env_batch={os.environ.get('SAGEMAKER_BATCH')} "
              f"strategy={os.environ.get('SAGEMAKER_BATCH_STRATEGY')}", flush=True)
        outputs = [f"{self.model['prefix']}:{line}" for line in lines for _ in range(self.model["repeat"])]
        accept = self.headers.get("Accept") or "text/csv"
        if accept == "application/json":
            return self._send(200, json.dumps({"predictions": outputs}).encode(), accept)
        self._send(200, "".join(f"{o}\n" for o in outputs).encode(), accept)


def numeric(line: str) -> bool:
    try:
        [float(f) for f in line.split(",")]
    except ValueError:
        return False
    return True


def serve() -> None:
    Handler.model = json.loads((ML / "model" / "model.json").read_text())
    assert (ML / "model" / "sub" / "note.txt").is_file(), "model.tar.gz lost a nested file"
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    print(f"serving echo model {Handler.model} on {port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    {"train": train, "serve": serve}[sys.argv[1]]()
