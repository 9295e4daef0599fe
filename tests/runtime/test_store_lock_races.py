"""A directory store's writers against its deletes (hunt_lock): a delete prunes the folders it
leaves empty and removes the key's lock file, so a writer may find its folders gone at any
step, and a key's lock may have been made by another user of a shared store."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from functions.runtime.store import LocalStore, ObjectChanged

KEY = "models/m/versions/1/card/card.md"


@pytest.mark.parametrize("if_absent", [False, True])
def test_a_write_whose_new_parent_a_prune_takes_mid_mkdir_makes_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, if_absent: bool
) -> None:
    # mkdir(parents=True) makes the parent, then the folder: a prune of the parent between the
    # two (it is empty) made the second mkdir raise FileNotFoundError, and the write failed as
    # "no object 'models/m/versions/1/card/card.md'" (a NotFound), in every stress run.
    store = LocalStore(tmp_path / "store")
    store.put_bytes(KEY, b"old")
    store.delete(KEY)
    assert not (store.root / "models").exists()  # the delete pruned every folder it emptied
    real = os.mkdir
    taken: list[str] = []

    def mkdir(path: str | os.PathLike[str], mode: int = 0o777) -> None:
        real(path, mode)
        if Path(path).name == "1" and len(taken) < 3:  # the card folder's parent, just made
            taken.append(str(path))
            os.rmdir(path)  # as a concurrent delete's _prune does

    monkeypatch.setattr(os, "mkdir", mkdir)
    store.put_bytes(KEY, b"new", if_absent=if_absent)
    monkeypatch.setattr(os, "mkdir", real)
    assert len(taken) == 3 and store.get_bytes(KEY) == b"new"


NOBODY = 65534
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(),
    reason="acting as another user needs root and setpriv",
)
def test_a_lock_file_another_user_made_does_not_stop_a_delete() -> None:
    # A team store: one user published (umask 022: the card's lock file 0644, theirs), another
    # who may write the folders prunes. Opening the lock for writing was Permission denied, so
    # the prune stopped halfway, and again on every retry. (Not under pytest's tmp_path, which
    # only root may enter.)
    with tempfile.TemporaryDirectory(prefix="aiaas-shared-") as shared:
        _deleted_by_another_user(Path(shared))


def _deleted_by_another_user(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    old = os.umask(0o022)
    try:
        store.put_bytes(KEY, b"a")
        store.put_bytes(KEY, b"b", if_match=store.read_versioned(KEY)[1])  # makes the lock
    finally:
        os.umask(old)
    lock = store.root / "models/m/versions/1/card/.tmp-lock-card.md"
    assert lock.exists() and lock.stat().st_mode & 0o777 == 0o644
    for folder in [tmp_path, *(p for p in tmp_path.rglob("*") if p.is_dir())]:
        folder.chmod(0o777)
    (store.root / ".tmp-generation").chmod(0o666)
    code = (
        "import sys; from functions.runtime.store import LocalStore; "
        f"LocalStore(sys.argv[1]).delete({KEY!r})"
    )
    done = subprocess.run(
        ["/usr/bin/setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         sys.executable, "-c", code, str(store.root)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not store.exists(KEY) and not (store.root / "models").exists()


def test_a_refused_compare_and_swap_of_a_missing_key_leaves_no_lock_or_folders(
    tmp_path: Path,
) -> None:
    # A writer that waited on the lock while a prune deleted the key made the lock file and
    # its folders, then was refused: `card/.tmp-lock-card.md` stayed, hidden, for good.
    store = LocalStore(tmp_path / "store")
    store.put_bytes("models/m/kept.json", b"{}")
    with pytest.raises(ObjectChanged):
        store.put_bytes(KEY, b"x", if_match="0" * 32)
    with pytest.raises(ObjectChanged):
        store.delete(KEY, if_version="gone")
    with pytest.raises(ObjectChanged), store.open_staged(KEY) as staged:
        staged.file.write(b"x")
        staged.publish("an-etag-it-no-longer-has")
    assert sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*")) == [
        ".tmp-generation", "models", "models/m", "models/m/kept.json"
    ]  # fmt: skip
