"""What `aiaas prune` leaves of a pruned version on a directory store: nothing. Each version's
card was written under a lock file (`card/.tmp-lock-card.md`) that a delete left behind, and
with it the version's folders, one pair per pruned version forever."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from infra.cli.main import main
from tests.infra.test_publish_version_twins import store_and_publish


def test_a_pruned_version_leaves_no_folder_or_lock_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, publish = store_and_publish(tmp_path, "--labels", "a,b,c")
    for _ in range(3):
        assert main(publish) == 0, capsys.readouterr().err
    versions = store.root / "models/m/versions"
    assert list((versions / "1/card").glob(".tmp-lock-*"))  # the lock this is about
    assert main(["--store", store.uri, "prune", "m", "--keep", "1", "--yes"]) == 0
    # the kept version and its number's claim: the pruned ones' claims went with them
    assert sorted(p.name for p in versions.iterdir()) == [".number-3", "3"]
    assert Registry(store).versions("m") == ["3"]
    assert main(["--store", store.uri, "show", "m"]) == 0, capsys.readouterr().err


def test_lock_files_older_releases_left_go_with_the_next_prune_or_publish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before 3edb3d1 a delete left the key's lock file, so versions pruned then kept a folder
    # holding only `card/.tmp-lock-card.md` (hunt_lock #4): a later prune or publish clears them.
    store, publish = store_and_publish(tmp_path, "--labels", "a,b,c")
    for _ in range(2):
        assert main(publish) == 0, capsys.readouterr().err
    versions = store.root / "models/m/versions"
    for old in ("7/card", "8/card"):  # as such a prune left them
        (versions / old).mkdir(parents=True)
        (versions / old / ".tmp-lock-card.md").touch()
    assert main(["--store", store.uri, "prune", "m", "--keep", "1", "--yes"]) == 0
    assert sorted(p.name for p in versions.iterdir()) == [".number-2", "2"]
    (versions / "9/card").mkdir(parents=True)
    (versions / "9/card/.tmp-lock-card.md").touch()
    assert main(publish) == 0, capsys.readouterr().err  # as 10: 9 counts as a number begun
    assert sorted(p.name for p in versions.iterdir()) == [".number-10", ".number-2", "10", "2"]
