"""Count the transform's output lines per .out file into report/summary.json."""

import json
from pathlib import Path

root = Path("/opt/ml/processing")
counts = {f.name: len(f.read_text().splitlines()) for f in sorted((root / "input" / "predictions").glob("*.out"))}
(root / "output" / "report").mkdir(parents=True, exist_ok=True)
(root / "output" / "report" / "summary.json").write_text(json.dumps(counts))
print("outputs", counts)
