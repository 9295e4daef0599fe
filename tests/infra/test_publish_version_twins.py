"""`--version 008` beside `8`: both are version 8 (README: "`03` counts as 3"), and the bare
name then served whichever sorts last by text, not the one published last. Refused, naming
the twin. The real CLI on a real ONNX model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory


def store_and_publish(tmp_path: Path, *flags: str) -> tuple[LocalStore, list[str]]:
    """A directory store, and the argv of `aiaas publish` of a real linear classifier as `m`
    into it, with `flags`: each test adds what it publishes with."""
    store = LocalStore(tmp_path / "store")
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    return store, ["--store", store.uri, "publish", str(model), "--name", "m", *flags]


@pytest.mark.parametrize(("first", "second"), [("8", "008"), ("03", "3")])
def test_a_version_of_an_existing_ones_number_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], first: str, second: str
) -> None:
    store, argv = store_and_publish(tmp_path, "--version")
    assert main([*argv, first]) == 0
    capsys.readouterr()
    assert main([*argv, second]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"aiaas publish: error: m:{second} is version {int(second)}, as m:{first} already is; "
        "pick another number, or none to be given the next one\n"
    )
    assert sorted(store.list_dirs("models/m/versions")) == [first]
    assert main([*argv, "10"]) == 0  # another number is fine


def test_twins_an_older_store_holds_still_publish_again_and_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Releases before the refusal let `03` and `3` both in; the refusal is the CLI's, so a
    # retried job of either twin is still "already published", and the registry's own
    # publish (pull's, paging's) takes them as they are.
    store, argv = store_and_publish(tmp_path, "--version", "3")
    assert main(argv) == 0
    registry = Registry(store)
    card = tmp_path / "card.md"
    card.write_bytes(store.get_bytes("models/m/versions/3/card/card.md"))
    model = tmp_path / "m.onnx"  # the file store_and_publish wrote
    registry.publish(replace(registry.resolve("m:3"), version="03"), model, {"card/card.md": card})
    capsys.readouterr()
    assert main(argv) == 0
    assert "already published from the same files" in capsys.readouterr().out
    assert sorted(store.list_dirs("models/m/versions")) == ["03", "3"]


def test_a_pruned_number_is_not_reused_spelled_otherwise_and_a_bare_folder_is_no_twin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, argv = store_and_publish(tmp_path, "--version")
    for version in ("7", "8", "9"):
        assert main([*argv, version]) == 0
    assert main(["--store", store.uri, "prune", "m", "--keep", "1", "--yes"]) == 0
    capsys.readouterr()
    assert main([*argv, "008"]) == 1  # 8 was pruned: its number is never reused
    assert capsys.readouterr().err == (
        "aiaas publish: error: m:008 is version 8, as m:8 was, which was published and pruned; "
        "a number is never reused: pick another, or none\n"
    )
    (store.root / "models/m/versions/012/card").mkdir(parents=True)  # a cut-off publish's
    assert main([*argv, "12"]) == 0, capsys.readouterr().err
