"""`--version 008` beside `8`: both are version 8 (docs/registry.md: "`03` counts as 3"), and the bare
name then served whichever sorts last by text, not the one published last. Refused, naming
the twin. The real CLI on a real ONNX model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from functions.runtime import publishing
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_cli_publish_race import publish_at_once


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
    # Releases before the refusal let `03` and `3` both in, claiming no number; a retried job
    # of either twin is still "already published", and the registry's own publish takes
    # them as they are where the number is unclaimed (pull's: it claims none).
    store, argv = store_and_publish(tmp_path, "--version", "3")
    assert main(argv) == 0
    registry = Registry(store)
    card = tmp_path / "card.md"
    card.write_bytes(store.get_bytes("models/m/versions/3/card/card.md"))
    model = tmp_path / "m.onnx"  # the file store_and_publish wrote
    store.delete("models/m/versions/.number-3")  # releases before then claimed no number either
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


def test_a_twin_spelling_published_meanwhile_loses_the_number(
    store: ObjectStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The twin check reads before the work: `8` published while `008` sent its files, and
    # both were published. The number is claimed before any file is visible: 008 loses.
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "m", "--version"]
    free = publishing.check_version_free

    def meanwhile(store_: ObjectStore, name: str, version: str) -> None:
        free(store_, name, version)
        if version == "008":  # past the CLI's twin check: `8` runs through, start to end
            assert main([*argv, "8"]) == 0

    monkeypatch.setattr(publishing, "check_version_free", meanwhile)
    assert main([*argv, "008"]) == 1
    assert capsys.readouterr().err.endswith(
        "aiaas publish: error: m:008 is version 8, as m:8 already is; "
        "pick another number, or none to be given the next one\n"
    )
    assert Registry(store).versions("m") == ["8"]
    assert not list(store.list_keys("models/m/versions/008"))  # the loser left no file
    assert main([*argv, "9"]) == 0


def test_a_number_claimed_by_a_publish_in_flight_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, argv = store_and_publish(tmp_path, "--version")
    claim = publishing.claim_number

    def meanwhile(store_: ObjectStore, name: str, version: str, committed: list[str]) -> None:
        claim(store_, name, version, committed)
        if version == "008":  # claimed, its manifest not written yet
            assert main([*argv, "8"]) == 1

    monkeypatch.setattr(publishing, "claim_number", meanwhile)
    assert main([*argv, "008"]) == 0
    assert capsys.readouterr().err == (
        "aiaas publish: error: m:8 is version 8, which a publish of m:008 claimed (still "
        "running, or cut off: publish m:008 again to finish it); pick another number, or none "
        "to be given the next one\n"
    )
    assert Registry(store).versions("m") == ["008"]


def test_8_and_008_from_two_processes_at_once_publish_one(
    store: ObjectStore, tmp_path: Path
) -> None:
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    for name in ("a", "b", "c"):  # both published in 2 of 3 tries
        each = [("--version", "8"), ("--version", "008")]
        results = publish_at_once(store.uri, [model, model], name, "--no-progress", each=each)
        assert sorted(code for code, _, _ in results) == [0, 1], results
        assert len(Registry(store).versions(name)) == 1


def test_an_unnamed_publish_steps_over_a_number_a_cut_off_publish_claimed(
    store: ObjectStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A `--version 002` publish killed between its claim and its first file left the claim and
    # no version: every publish without --version then picked 2 and was refused ("pick another
    # number, or none"), and so was `train --publish`, whose role may not delete the claim.
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "m"]
    assert main(argv) == 0  # m:1
    store.put_bytes("models/m/versions/.number-2", b"002")  # what the kill leaves
    assert Registry(store).next_version("m") == "3"
    assert main(argv) == 0, capsys.readouterr().err
    assert "published m:3 " in capsys.readouterr().out
    assert Registry(store).versions("m") == ["1", "3"]


def test_a_pull_beside_another_spelling_of_its_number_is_refused_unless_the_source_has_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `pull t:8` into a store holding `t:008` (another model) made the twins a publish refuses.
    source, argv = store_and_publish(tmp_path / "a", "--version", "8")
    assert main(argv) == 0
    edge, argv = store_and_publish(tmp_path / "b", "--version", "008")
    assert main(argv) == 0
    capsys.readouterr()
    pull = ["--store", edge.uri, "pull", "m:8", "--from", source.uri, "--no-progress"]
    assert main(pull) == 1
    err = capsys.readouterr().err
    assert f"m:8 is version 8, as m:008 already is in {edge.uri}, another version" in err, err
    assert "nothing was copied" in err and sorted(edge.list_dirs("models/m/versions")) == ["008"]
    # A source of both spellings (written before twins were refused) is copied as it is.
    source.delete("models/m/versions/.number-8")
    registry = Registry(source)
    card = tmp_path / "card.md"
    card.write_bytes(source.get_bytes("models/m/versions/8/card/card.md"))
    model = tmp_path / "a" / "m.onnx"
    registry.publish(replace(registry.resolve("m:8"), version="008"), model, {"card/card.md": card})
    edge.delete_many(list(edge.list_keys("models/m")))
    assert main(["--store", edge.uri, "pull", "m:008", "--from", source.uri]) == 0
    assert main(pull) == 0, capsys.readouterr().err
    assert sorted(edge.list_dirs("models/m/versions")) == ["008", "8"]
