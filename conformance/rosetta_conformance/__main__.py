"""``python -m rosetta_conformance IMAGE [options]``: the same as ``rosetta conform``."""

from __future__ import annotations

import argparse
import sys

from rosetta_conformance.cli import add_parser


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m rosetta_conformance")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["conform", *sys.argv[1:]])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
