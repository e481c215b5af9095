"""Gather every customer's model into one multi-model prefix per language.

A multi-model endpoint serves ``TargetModel=<key>`` from ``<ModelDataUrl prefix>/<key>``, so each
language's models must sit side by side under one prefix with a name the caller knows. A pipeline's
training jobs write to per-job folders (``…/<step>/<job name>/output/model.tar.gz``), so this step
copies each one to ``models/<language>/<customer>.tar.gz`` and writes ``models/index.json``
(customer → the training job's ``model.tar.gz`` and its SHA-256).

    gather.py --prefix S3_PREFIX_OF_INPUT_runs --model LANG/CUSTOMER=S3_URI_OF_MODEL …

Every ``--model`` must be found under the ``runs`` input; a missing one fails the step naming it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

INPUT = Path("/opt/ml/processing/input/runs")
OUTPUT = Path("/opt/ml/processing/output/models")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", required=True, help="the S3 prefix staged as the 'runs' input")
    parser.add_argument("--model", action="append", default=[], metavar="LANG/CUSTOMER=S3_URI")
    args = parser.parse_args(argv)
    prefix = args.prefix.rstrip("/") + "/"
    index: dict[str, dict[str, dict[str, str]]] = {}
    for item in args.model:
        key, _, uri = item.partition("=")
        language, _, customer = key.partition("/")
        if not uri.startswith(prefix) or not customer:
            print(f"error: --model {item!r}: expected LANG/CUSTOMER=<a URI under {prefix}>", file=sys.stderr)
            return 2
        source = INPUT / uri[len(prefix):]
        if not source.is_file():
            print(f"error: {key}: {uri} was not staged ({source} missing)", file=sys.stderr)
            return 1
        target = OUTPUT / language / f"{customer}.tar.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        index.setdefault(language, {})[customer] = {"model": uri, "sha256": digest}
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    for language, models in sorted(index.items()):
        print(f"{language}: {len(models)} model(s) in models/{language}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
