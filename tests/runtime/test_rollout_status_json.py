"""`aiaas rollout status --json` and the control plane's GET carry what the text warns of: a
split with no driver (`not_watched`) and an alias moved by hand under the rollout
(`not_in_effect`). The text said NOT WATCHED / NOT IN EFFECT while `--json` said only
`"state": "running"`, and the GET had `not_in_effect` but nothing for a stopped driver."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import run
from tests.rollout_models import driver_stopped
from tests.runtime.test_rollout_status_moved import ALIAS, MODEL, store

__all__ = ["store"]  # the fixture: ro:1 on production, a rollout of 2 started


def status_json(store: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert run(["--store", str(store), "rollout", "status", MODEL, "--json"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def flags(doc: dict[str, Any]) -> dict[str, Any]:
    """The two fields, less the seconds quiet (the two reads are a moment apart)."""
    watched = doc["not_watched"] and {k: v for k, v in doc["not_watched"].items() if k != "quiet_s"}
    return {"not_watched": watched, "not_in_effect": doc["not_in_effect"]}


def test_status_json_and_the_control_plane_say_not_watched_and_not_in_effect(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = TestClient(create_app(LocalStore(store)))
    path = f"/control/models/{MODEL}/rollouts/{ALIAS}"
    driven = status_json(store, capsys)
    assert driven["state"] == "running"
    assert (driven["not_watched"], driven["not_in_effect"]) == (None, None)  # keys always there
    assert flags(client.get(path).json()) == flags(driven)

    driver_stopped(Registry(LocalStore(store)), MODEL, ALIAS, seconds=3600)  # its CLI killed
    orphaned = status_json(store, capsys)
    assert 3599 <= orphaned["not_watched"]["quiet_s"] <= 3602
    assert orphaned["not_watched"]["check_every_s"] == 6  # a tenth of the 60 s bake
    assert orphaned["not_watched"]["resume"] == f"aiaas rollout resume {MODEL} --alias {ALIAS}"
    assert orphaned["not_watched"]["abort"] == f"aiaas rollout abort {MODEL} --alias {ALIAS}"
    assert orphaned["not_in_effect"] is None
    assert flags(client.get(path).json()) == flags(orphaned)
    (listed,) = client.get(f"/control/models/{MODEL}/rollouts").json()["rollouts"]
    assert flags(listed) == flags(orphaned)
    # The text is written from the same fields.
    assert run(["--store", str(store), "rollout", "status", MODEL]) == 0
    text = capsys.readouterr().out
    assert "NOT WATCHED: no check for 36" in text and "(one is due every 6 s)" in text
    assert f"Resume it: aiaas rollout resume {MODEL} --alias {ALIAS} [--metrics URL]" in text

    assert run(["--store", str(store), "promote", MODEL, "3"]) == 0
    capsys.readouterr()
    moved = status_json(store, capsys)
    assert moved["not_in_effect"] == "the alias was moved outside the rollout (it serves 3)"
    assert moved["not_watched"] is not None  # still no driver: both hold at once
    assert flags(client.get(path).json()) == flags(moved)

    assert run(["--store", str(store), "rollout", "abort", MODEL]) == 0
    capsys.readouterr()
    ended = status_json(store, capsys)
    assert (ended["state"], ended["not_watched"], ended["not_in_effect"]) == ("aborted", None, None)
