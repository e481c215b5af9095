"""Write a train file and two batch files (numbered lines) for the echo pipeline."""

import argparse
from pathlib import Path

out = Path("/opt/ml/processing/output")
ap = argparse.ArgumentParser()
ap.add_argument("--lines", type=int, default=5)
n = ap.parse_args().lines
(out / "train").mkdir(parents=True, exist_ok=True)
(out / "train" / "data.csv").write_text("".join(f"{i},{i * 2}\n" for i in range(n)))
(out / "batch").mkdir(parents=True, exist_ok=True)
(out / "batch" / "a.csv").write_text("".join(f"a{i}\n" for i in range(n)))
(out / "batch" / "b.csv").write_text("".join(f"b{i}\n" for i in range(n)))
print(f"prepared {n} lines per file")
