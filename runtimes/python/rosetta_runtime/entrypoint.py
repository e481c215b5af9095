"""The image's exec-form ENTRYPOINT: ``IMAGE train`` or ``IMAGE serve`` (C-01, C-02).

Also installed as ``train`` and ``serve`` on PATH (dispatch on the program name), so images
started by tools that call those directly work too. PID 1 is this Python process, which
handles SIGTERM itself (T-21, S-13): no shell in between to swallow it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

USAGE = "usage: IMAGE train | IMAGE serve"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    name = os.path.basename(argv[0]) if argv else ""
    command = name if name in {"train", "serve"} else (argv[1] if len(argv) > 1 else "")
    if command == "train":
        from rosetta_runtime import train

        return train.run()
    if command == "serve":
        from rosetta_runtime import server

        return server.run()
    print(f"rosetta: unknown command {command!r}; {USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
