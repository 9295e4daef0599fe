"""A version pruned by mistake, put back from a backup, then promoted: a running `aiaas serve`
serves it as a fresh one does.

A server remembers a version pruned for good (its prune over 5 minutes old) after a pinned
request's 404, and reads nothing from the store for it again: a scanner's requests cost
nothing. Before, that memory answered its alias's resolutions too: once the operator put the
version's files back (deploy.md: a versioned bucket keeps them, "restorable by removing its
delete marker") and `aiaas promote` moved production onto it (exit 0), the running server's
refresh failed ("points at version '1', which is not in the registry") and production went on
answering the version before, with a 200, until a restart. Now an alias's resolution always
reads the store, and a version found there again is forgotten as pruned."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.cli_run import run
from tests.infra.test_serve import start_serve
from tests.publishing import publish_linear

MODEL = "m"
ROWS = [[5.1, 3.5, 1.4, 0.2]]


def test_a_restored_version_an_alias_moves_onto_is_served_by_a_running_server(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    registry = Registry(store)
    for version, seed in (("1", 1), ("2", 2), ("3", 3)):
        publish_linear(registry, tmp_path, MODEL, version, seed=seed)
    registry.set_alias(MODEL, "production", "2", actor="ci")
    folder = store.root / "models" / MODEL / "versions" / "1"
    backup = tmp_path / "backup-1"
    shutil.copytree(folder, backup)  # what the versioned bucket keeps
    assert run(store, "prune", MODEL, "--keep", "1", "--yes")[0] == 0  # 1 goes by mistake
    assert not folder.exists()
    record = json.loads(store.get_bytes(f"models/{MODEL}/pruned.json"))
    for entry in record["history"]:  # the prune ran an hour ago: its versions gone for good
        entry["deleted_at"] = "2026-01-01T00:00:00Z"
    store.put_bytes(f"models/{MODEL}/pruned.json", json.dumps(record).encode())

    serving = start_serve(store.root, env={"AIAAS_ALIAS_TTL": "0.2"})
    server = next(serving)
    try:
        base = f"{server.base}/models/{MODEL}"
        pinned = httpx.post(f"{base}/versions/1/predict", json={"inputs": ROWS}, timeout=30)
        assert pinned.status_code == 404 and "was deleted (pruned" in pinned.text
        assert (
            httpx.post(f"{base}/predict", json={"inputs": ROWS}, timeout=30).json()["version"]
            == "2"
        )

        shutil.copytree(backup, folder)  # put back
        code, out, err = run(store, "promote", MODEL, "1")
        assert (code, out) == (0, f"{MODEL}@production -> 1 (was 2)\n"), err

        answer = httpx.post(f"{base}/predict", json={"inputs": ROWS}, timeout=30)
        assert answer.status_code == 200, answer.text
        # Before the fix: "2", the version production was moved off, until a restart.
        assert answer.json()["version"] == "1", server.output()
        again = httpx.post(f"{base}/versions/1/predict", json={"inputs": ROWS}, timeout=30)
        assert again.status_code == 200, again.text  # forgotten as pruned: it is back
    finally:
        serving.close()
