"""The bench scripts' working folders (a store, models, servers' logs): made under the system's
temp folder and removed when the script ends, however it ends short of a kill. They were left
behind: a quiet host here held 190 from one bench, a model and a store in each.

`AIAAS_BENCH_KEEP=1` keeps them, and says where on stderr, to read a server's log after a run.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path


def scratch_dir(prefix: str) -> Path:
    """A new folder named `prefix...`, removed at exit unless AIAAS_BENCH_KEEP is set."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.environ.get("AIAAS_BENCH_KEEP"):
        print(f"bench: keeping {path} (AIAAS_BENCH_KEEP)", file=sys.stderr)
    else:
        atexit.register(shutil.rmtree, path, True)
    return path
