"""Echo model for the orchestrator tests (stdlib only).

train: hyperparameters ``prefix`` (string) and ``repeat`` (integer, else HyperparameterError in
/opt/ml/output/failure, exit 1); counts the rows of channel ``train`` (a row ``FAIL`` fails the job
with DataError); prints ``#metric rows=N``; writes model.json.
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
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, NoReturn

ML = Path(os.environ.get("ECHO_ML_ROOT", "/opt/ml"))


def fail(reason: str) -> NoReturn:
    (ML / "output").mkdir(parents=True, exist_ok=True)
    (ML / "output" / "failure").write_text(reason + "\n\ndetails: echo test image\n")
    print(reason, file=sys.stderr, flush=True)
    sys.exit(1)


def train() -> None:
    hps = json.loads((ML / "input" / "config" / "hyperparameters.json").read_text())
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
    print(f"training echo model prefix={prefix} repeat={repeat} rows={rows}", flush=True)
    print(f"#metric rows={rows}", flush=True)
    (ML / "model" / "model.json").write_text(json.dumps({"prefix": prefix, "repeat": repeat, "rows": rows}))
    (ML / "model" / "sub").mkdir(exist_ok=True)
    (ML / "model" / "sub" / "note.txt").write_text("nested file\n")


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
