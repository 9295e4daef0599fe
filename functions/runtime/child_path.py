"""The import path a helper process of ours starts with: this process's own.

The batch workers and the shadow replay process run `python -m functions...` with this
interpreter. Given only the package's root and the inherited PYTHONPATH, a worker could not
import what the parent found some other way (boto3 on a path the host added to `sys.path`: a
layer's /opt/python, a custom runtime): a batch with workers failed with "No module named
'botocore'" where the same file scored on one process.

`python -m` also puts the working directory first on the path, ahead of PYTHONPATH: run in a
project with a `functions/` package of its own (a SAM project's usual folder, or an aiaas clone
older than the installed aiaas), the children imported that one and failed (no
`functions.runtime`: a big batch file failed, every shadow copy was dropped) or ran other code
than their parent. `-P` (3.11+) leaves it out: a child imports what its parent does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import functions


def child_pythonpath() -> str:
    """PYTHONPATH for a child: the package's root, then this process's `sys.path` in order."""
    root = str(Path(functions.__file__).resolve().parent.parent)
    return os.pathsep.join(dict.fromkeys(p for p in (root, *sys.path) if p))


def child_command(module: str, *args: str) -> list[str]:
    """The argv that runs `module` of ours on this interpreter, importing only from the path
    `child_pythonpath()` gives it (`-P`: not from the working directory)."""
    return [sys.executable, "-P", "-m", module, *args]
