"""A cache that cannot take a model's file for its size (EFBIG) serves it from memory.

`ulimit -f`, systemd's LimitFSIZE= or a FAT32 cache disk (4 GiB files) refuse a write past the
limit with EFBIG, not ENOSPC: the free-space check passed, the write failed, and the model was
"not available" (503) on every request until a restart, where docs/serve.md promises memory for a
cache that cannot be written. The limit is set in a child process (it is the process's, and
Python ignores the SIGXFSZ that comes with it); the model is published by this one.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import MODEL

REPO = Path(__file__).resolve().parents[2]
LIMIT = 16 * 1024  # bytes a file may grow to in the child
FEATURES = 2500  # a linear model of 2500 x 10 weights: ~100 KB
CHILD = """
import json, sys
from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.settings import TransferSettings
from functions.runtime.store import LocalStore
from tests.functions.test_predict_events import http_event

store = LocalStore(sys.argv[1])
cache = ArtifactCache(store, __import__("pathlib").Path(sys.argv[2]), TransferSettings(load="auto"))
service = service_from_env({"AIAAS_MODEL": sys.argv[3]}, ModelPool(Registry(store), cache))
row = json.dumps({"inputs": [[0.5] * FEATURES]})
answer = service.handle(http_event("POST", f"/models/{sys.argv[3]}/predict", row))
print(json.dumps({"status": answer["statusCode"], "body": json.loads(answer["body"])}))
"""


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_a_model_over_the_file_size_limit_is_served_from_memory(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    big = onnx_factory.linear_classifier(tmp_path / "big.onnx", features=FEATURES, classes=10)
    assert big.stat().st_size > LIMIT
    Registry(store).publish(onnx_factory.manifest_for(big, MODEL, "1"), big)
    cache = tmp_path / "cache"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD.replace("FEATURES", str(FEATURES)),
            *map(str, (store.root, cache)),
            MODEL,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        preexec_fn=_limited,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200, answer
    assert "held in memory" in done.stderr and "File too large" in done.stderr
    assert [p for p in cache.iterdir() if not p.name.startswith(".")] == []  # nothing partial
