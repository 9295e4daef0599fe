"""The import path a helper process of ours starts with: this process's own.

The batch workers and the shadow replay process run `python -m functions...` with this
interpreter. Given only the package's root and the inherited PYTHONPATH, a worker could not
import what the parent found some other way (boto3 on a path the host added to `sys.path`: a
layer's /opt/python, a custom runtime): a batch with workers failed with "No module named
'botocore'" where the same file scored on one process.
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
