"""A directory store follows no symbolic link planted in it (security hunt 2).

- `aiaas pull` from a store someone handed over (a tarball, a shared folder) copied a card
  file that was a link to the puller's own `~/.aws/credentials`, listed it in the version's
  manifest, and the card route served it to any caller;
- every write of a store whose `.tmp-generation` was a link overwrote the first 8 bytes of the
  file it named (`/etc/passwd`), or created it;
- an alias move through a lock file that was a link created the file it named."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.errors import NotFound, StoreError
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_cli_registry import run

SECRET = b"aws_secret_access_key = TOPSECRET-of-the-puller\n"


def published(tmp_path: Path, name: str = "src") -> LocalStore:
    store = LocalStore(tmp_path / name)
    path = onnx_factory.linear_classifier(tmp_path / f"{name}.onnx")
    registry = Registry(store)
    registry.publish(onnx_factory.manifest_for(path, "m", "1"), path)
    registry.set_alias("m", "production", "1")
    return store


def test_a_linked_object_is_no_object(tmp_path: Path) -> None:
    store = published(tmp_path)
    secret = tmp_path / "credentials"
    secret.write_bytes(SECRET)
    key = "models/m/versions/1/card/notes.txt"
    (store.root / key).parent.mkdir(parents=True, exist_ok=True)
    (store.root / key).symlink_to(secret)
    assert key not in list(store.list_keys("models/m"))
    assert not store.exists(key)
    with pytest.raises(NotFound):
        store.head(key)
    for read in (
        lambda: store.get_bytes(key),
        lambda: store.open_read(key).__enter__(),
        lambda: store.download_file(key, tmp_path / "copy"),
    ):
        with pytest.raises(StoreError, match="is a symbolic link"):
            read()


def test_pull_carries_no_linked_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = published(tmp_path)
    secret = tmp_path / "credentials"
    secret.write_bytes(SECRET)
    link = source.root / "models/m/versions/1/card/notes.txt"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    target = LocalStore(tmp_path / "dst")
    code, _, err = run(capsys, target, "pull", "m@production", "--from", source.uri)
    assert code == 0, err
    copied = Registry(target).resolve("m@production")
    assert "card/notes.txt" not in [f.path for f in copied.files]
    assert not target.exists("models/m/versions/1/card/notes.txt")
    assert all(SECRET not in p.read_bytes() for p in target.root.rglob("*") if p.is_file())


def test_writes_go_through_no_planted_generation_or_lock_link(tmp_path: Path) -> None:
    store = published(tmp_path)
    victim, created = tmp_path / "passwd", tmp_path / "new-file"
    victim.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    generation = store.root / ".tmp-generation"
    generation.unlink(missing_ok=True)
    generation.symlink_to(victim)
    lock = store.root / "models/m/aliases/.tmp-lock-production.json"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.unlink(missing_ok=True)
    lock.symlink_to(created)
    fresh = LocalStore(store.root)  # a new process: maps the generation file at its first write
    fresh.put_bytes("models/m/notes.txt", b"x")
    registry = Registry(fresh)
    registry.set_alias("m", "staging", "1")
    with pytest.raises(StoreError, match="is a symbolic link"):
        fresh.put_bytes("models/m/aliases/production.json", b"{}", if_match="any")
    assert victim.read_bytes() == b"root:x:0:0:root:/root:/bin/bash\n"
    assert not created.exists()
    assert registry.resolve("m@staging").version == "1"


def test_a_folder_link_out_of_the_store_takes_no_write_and_gives_no_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """O_NOFOLLOW guards a path's last part alone: `batch -> /elsewhere` in a store someone
    handed over made `aiaas batch` write its input copy, output and summary there (security
    hunt 3). Every use of a key under such a folder is now refused, naming the link."""
    store = published(tmp_path)
    outside = tmp_path / "outside"
    (outside / "m/input").mkdir(parents=True)
    (outside / "m/input/old.csv").write_bytes(b"x_0,x_1,x_2,x_3\n1,2,3,4\n")
    (store.root / "batch").symlink_to(outside, target_is_directory=True)
    rows = tmp_path / "rows.csv"
    rows.write_bytes(b"x_0,x_1,x_2,x_3\n1,2,3,4\n")
    code, _, err = run(capsys, store, "batch", "m", str(rows))
    assert code != 0
    assert f"{store.root}/batch is a symbolic link to {outside}, outside the store" in err, err
    key = "batch/m/input/old.csv"
    for use in (
        lambda: store.put_bytes("batch/m/input/new.csv", b"x"),
        lambda: store.open_write("batch/m/input/new.csv").__enter__(),
        lambda: store.get_bytes(key),
        lambda: store.head(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: list(store.list_keys("batch/m")),
        lambda: store.list_files("batch/m/input"),
        lambda: store.list_dirs("batch"),
        lambda: store.remove_abandoned("batch/m"),
    ):
        with pytest.raises(StoreError, match="outside the store"):
            use()
    assert sorted(p.relative_to(outside).as_posix() for p in outside.rglob("*")) == [
        "m",
        "m/input",
        "m/input/old.csv",
    ]
    assert list(store.list_keys("models/m/aliases")) == ["models/m/aliases/production.json"]


def test_a_folder_link_to_a_folder_of_the_same_store_is_followed(tmp_path: Path) -> None:
    store = published(tmp_path)
    (store.root / "spare").mkdir()
    (store.root / "batch").symlink_to(store.root / "spare", target_is_directory=True)
    store.put_bytes("batch/m/input/a.csv", b"x_0\n1\n")
    assert store.get_bytes("batch/m/input/a.csv") == b"x_0\n1\n"
    assert (store.root / "spare/m/input/a.csv").read_bytes() == b"x_0\n1\n"
    store.delete("batch/m/input/a.csv")
    assert not store.exists("batch/m/input/a.csv")


def test_a_link_out_of_the_store_behind_a_link_inside_it_takes_no_write(tmp_path: Path) -> None:
    """`batch -> spare` (inside) then `spare/m -> /elsewhere`: the walk went no further than
    the first link that stayed inside, so the second one took the write (review of 00a2aaab)."""
    store = published(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (store.root / "spare").mkdir()
    (store.root / "batch").symlink_to(store.root / "spare", target_is_directory=True)
    (store.root / "spare/m").symlink_to(elsewhere, target_is_directory=True)
    for key in ("batch/m/y.txt", "spare/m/y.txt"):
        with pytest.raises(StoreError, match=r"symbolic link to .*outside the store"):
            store.put_bytes(key, b"x")
    assert not list(elsewhere.iterdir())
