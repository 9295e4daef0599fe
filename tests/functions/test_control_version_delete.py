"""`DELETE /control/models/{name}/versions/{version}` through the control plane's real app: a
version goes whole (a 404 after), one an alias needs is refused with why, the caller recorded."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.manifest import utc_now
from functions.runtime.prune_log import prune_record, record_prune
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from tests.publishing import publish_three


def test_delete_a_version_and_refuse_one_an_alias_needs(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    publish_three(Registry(store), tmp_path)  # m:1..3, @production at 1
    client = TestClient(create_app(store))

    answer = client.delete("/control/models/m/versions/2")
    assert (answer.status_code, answer.json()) == (200, {"deleted": "m:2"})
    assert list(store.list_keys(version_prefix("m", "2"))) == []
    answer = client.get("/control/models/m/versions/2")
    assert answer.status_code == 404  # naming the delete: a deployment pinned to it learns why
    assert answer.json()["error"].startswith("version '2' of model 'm' was deleted (pruned;")
    assert client.get("/control/models/m").json()["versions"] == ["1", "3"]
    (run,) = prune_record(store, "m")["history"]
    assert run["deleted_by"].startswith("unauthenticated@") and run["versions"] == ["2"]

    for version, why in (
        ("1", "@production"),
        ("3", "latest (what `m` alone serves once @production is removed)"),
    ):
        answer = client.delete(f"/control/models/m/versions/{version}")
        assert (answer.status_code, answer.json()) == (
            409,
            {
                "error": f"version {version!r} of model 'm' is kept: {why}; move what needs it "
                "to another version first"
            },
        )
    answer = client.delete("/control/models/m/versions/2")  # already gone: as GET says it
    assert (answer.status_code, answer.json()) == (
        404,
        {
            "error": "version '2' of model 'm' was deleted (pruned; `aiaas versions m` shows "
            "when): point the deployment at an alias (@production) or a published version"
        },
    )
    assert client.get("/control/models/m").json()["versions"] == ["1", "3"]


def test_a_delete_while_another_run_deletes_the_version_says_so(tmp_path: Path) -> None:
    """A prune (or another DELETE) recorded the version and has not finished: this DELETE
    leaves it to that run, a 409 naming it, rather than deleting it a second time."""
    store = LocalStore(tmp_path / "store")
    publish_three(Registry(store), tmp_path)
    entry = {"id": "a1b2", "deleted_at": utc_now(), "deleted_by": "ci", "versions": ["2"]}
    assert record_prune(store, "m", entry) == {}  # that run's claim, its deletes still to come

    answer = TestClient(create_app(store)).delete("/control/models/m/versions/2")
    assert answer.status_code == 409
    assert answer.json()["error"] == (
        "version '2' of model 'm' is not deleted here: another prune is deleting it (run a1b2 "
        f"by ci, started {entry['deleted_at']})"
    )
    assert len(list(store.list_keys(version_prefix("m", "2")))) == 2  # left to that run


def test_if_match_on_a_delete_holds_only_as_star(tmp_path: Path) -> None:
    """A stale If-Match deleted anyway (200). A version has no ETag (it never changes), so no
    tag matches it: a 412 and nothing deleted; `*` (it exists) holds."""
    store = LocalStore(tmp_path / "store")
    publish_three(Registry(store), tmp_path)
    client = TestClient(create_app(store))
    stale = client.delete("/control/models/m/versions/2", headers={"If-Match": '"abc"'})
    assert stale.status_code == 412
    assert stale.json()["error"].startswith('If-Match "abc" cannot hold: a version has no ETag')
    assert client.get("/control/models/m").json()["versions"] == ["1", "2", "3"]
    star = client.delete("/control/models/m/versions/2", headers={"If-Match": "*"})
    assert (star.status_code, star.json()) == (200, {"deleted": "m:2"})
