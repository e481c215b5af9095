"""A model whose native thread pool (XGBoost's OpenMP) started before the fork still serves in every worker.

GNU OpenMP keeps its pool per thread; fork copies only the forking thread, so a pool started on the
supervisor's main thread (by load or the warm-up prediction) is inherited by each worker's main thread
without its threads, and the worker's first parallel region there (the pre-accept prediction of a fast
model) waited forever: ``/ping`` never answered. The server now loads and warms up on a short-lived thread.

Real parts: the ``rosetta-example/xgboost`` image (xgboost-cpu) with this working tree's
``rosetta_runtime`` mounted over the image's, the example's own ``model.py``, a booster trained on
a tiny dataset in the same image, two workers and two OpenMP threads (a pool exists even on one core).
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from sagemaker_rosetta.containers import DockerError, Server, container_name, run

IMAGE = "rosetta-example/xgboost:latest"
SOURCE = Path(__file__).resolve().parents[1] / "rosetta_runtime"

#: a tiny booster, its rows and its predictions (0/1, as the example's predict answers)
TRAIN = """
import json, numpy as np, xgboost as xgb
rng = np.random.default_rng(7)
X = rng.normal(size=(60, 4))
y = (X[:, 0] + X[:, 1] > 0).astype(float)
booster = xgb.train({"tree_method": "hist", "objective": "binary:logistic", "max_depth": 2, "nthread": 2},
                    xgb.DMatrix(X, label=y), 5)
booster.save_model("/opt/ml/model/xgboost-model.json")
rows = X[:8]
expected = (booster.predict(xgb.DMatrix(rows)) > 0.5).astype(int).tolist()
json.dump({"rows": rows.tolist(), "expected": expected}, open("/opt/ml/model/expected.json", "w"))
"""

pytestmark = pytest.mark.docker


def test_openmp_model_serves_in_forked_workers(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    model.chmod(0o777)
    done = run(IMAGE, ["-c", TRAIN], entrypoint="python3", volumes={model: "/opt/ml/model"},
               name=container_name("pyrt-omp-train"), timeout=300)
    assert done.returncode == 0, f"cannot train the test booster (is {IMAGE} built? `rosetta setup --examples`):\n" \
                           f"{done.stderr[-2000:]}"
    case = json.loads((model / "expected.json").read_text())
    srv = Server(IMAGE, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "OMP_NUM_THREADS": "2"},
                 volumes={SOURCE: "/opt/rosetta/lib/rosetta_runtime:ro", model: "/opt/ml/model:ro"},
                 name=container_name("pyrt-omp"))
    try:
        try:
            srv.start()
        except (DockerError, RuntimeError) as exc:
            pytest.fail(f"server did not start (is {IMAGE} built? `rosetta setup --examples`): {exc}")
        srv.wait_ready(90)  # TimeoutError with the log tail when a worker hangs before accepting
        body = "\n".join(",".join(repr(v) for v in row) for row in case["rows"]).encode()
        for _ in range(12):  # fresh connections, spread over both workers (listener.py)
            conn = http.client.HTTPConnection("127.0.0.1", srv.host_port, timeout=30)
            try:
                conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv",
                                                                         "Accept": "application/json"})
                resp = conn.getresponse()
                answer = resp.read()
            finally:
                conn.close()
            assert resp.status == 200, answer
            got = json.loads(answer)
            assert [int(v) for v in (got["predictions"] if isinstance(got, dict) else got)] == case["expected"]
    finally:
        srv.remove()
