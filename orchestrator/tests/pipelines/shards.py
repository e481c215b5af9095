"""Multi-instance processing test: each host lists the files it got and its resourceconfig."""

import json
from pathlib import Path

config = json.loads(Path("/opt/ml/config/resourceconfig.json").read_text())
host = config["current_host"]
data = Path("/opt/ml/processing/input/data")
files = sorted(f.relative_to(data).as_posix() for f in data.rglob("*") if f.is_file())
out = Path("/opt/ml/processing/output/listing")
out.mkdir(parents=True, exist_ok=True)
(out / f"{host}.json").write_text(json.dumps({"host": host, "hosts": config["hosts"], "files": files}))
print(f"{host}: {len(files)} file(s)")
