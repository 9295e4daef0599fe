"""Control-plane writes on a full or read-only directory store: a 503 that says which.

Both were "the model store failed; the server's log says why", the answer to an outage, so a
caller could not tell a retry from a fault an operator must fix. The disk is a real tmpfs,
filled after the model is published (tests/full_disk.py); read-only is a real read-only mount
of it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.store import LocalStore
from tests.full_disk import full_tmpfs
from tests.functions.test_control_models import MODEL, publish_versions

ALIAS = f"/control/models/{MODEL}/aliases/production"


def test_a_full_store_and_a_read_only_one_are_said_as_such(
    tmp_path: Path, classifier_onnx: Any
) -> None:
    def publish(root: Path) -> None:
        publish_versions(LocalStore(root / "store"), classifier_onnx, "1", "2")

    with full_tmpfs(tmp_path / "fs", size="512k", before=publish) as root:
        client = TestClient(create_app(LocalStore(root / "store")))
        full = client.put(ALIAS, json={"version": "2"})
        assert (full.status_code, full.json()) == (
            503,
            {"error": "the model store has no space left: an operator must free some"},
        )
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        read_only = client.put(ALIAS, json={"version": "2"})
        assert (read_only.status_code, read_only.json()["error"]) == (
            503,
            "the model store is read-only here: changes must be made where it is written",
        )
        assert client.get(f"/control/models/{MODEL}").status_code == 200  # reads still answer
