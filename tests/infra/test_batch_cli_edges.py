"""`aiaas batch` at its edges: the same file again (S3: not scored twice; a new version replaces
the outputs), a file with no rows, an empty file, an option refused after the upload."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime import names
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests import onnx_factory
from tests.batch_support import (
    LABELS,
    features_csv,
    publish_classifier,
    read_csv,
    store_with_classifier,
)

SUMMARY = "batch/iris/output/rows.csv.summary.json"


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStore:
    return store_with_classifier(tmp_path, monkeypatch)


def summary(store: ObjectStore) -> dict[str, object]:
    return dict(json.loads(store.get_bytes(SUMMARY)))


def test_the_same_bytes_again_on_s3_are_not_scored_twice_and_new_ones_replace(
    s3_store: S3Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_classifier(s3_store, tmp_path)
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((3, 4))))
    args = ["--store", s3_store.uri, "batch", "iris", str(data)]
    assert main(args) == 0
    first = summary(s3_store)
    capsys.readouterr()

    assert main(args) == 0  # same bytes, same ETag, same run id
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "already scored: this version of the input has a finished run; nothing redone"
    assert summary(s3_store) == first  # not rewritten: the run was not redone

    data.write_text(features_csv(np.zeros((2, 4))))
    assert main(args) == 0  # a new version: a new run, whose outputs replace the old ones
    assert summary(s3_store)["run_id"] != first["run_id"]
    assert [row["id"] for row in read_csv(s3_store, "batch/iris/output/rows.csv")] == ["r0", "r1"]

    # Promoted since: those bytes' finished run is the old version's. It answered as scored,
    # exit 0, with iris:1's output: the user wanted the new model's scores.
    path = onnx_factory.linear_classifier(tmp_path / "v2.onnx", seed=7)
    Registry(s3_store).publish(onnx_factory.manifest_for(path, "iris", "2", labels=LABELS), path)
    Registry(s3_store).set_alias("iris", "production", "2")
    kept = summary(s3_store)
    capsys.readouterr()
    assert main(args) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "iris:1 already scored these very bytes of rows.csv, and iris is now iris:2; a run is "
            "kept per upload, so score them with 2 under another name: aiaas batch iris "
            f"{data} --name rows-v2.csv"
        )
    )
    assert summary(s3_store) == kept  # its output and summary stay as they were
    assert main([*args, "--name", "rows-v2.csv"]) == 0
    scored = json.loads(s3_store.get_bytes("batch/iris/output/rows-v2.csv.summary.json"))
    assert scored["version"] == "2"


def test_the_same_bytes_whose_run_failed_are_not_said_scored_after_a_promote(
    s3_store: S3Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """hunt_journey5 2: a run that failed (its header lacked a column the model reads) scored
    no row, yet after a promote the same bytes were told "iris:1 already scored these very
    bytes", without the reason; the control plane's 409 gives it."""
    publish_classifier(s3_store, tmp_path)
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((3, 4))).replace("x_3", "x3", 1))
    args = ["--store", s3_store.uri, "batch", "iris", str(data)]
    assert main(args) == 1
    assert summary(s3_store)["status"] == "failed"
    path = onnx_factory.linear_classifier(tmp_path / "v2.onnx", seed=7)
    Registry(s3_store).publish(onnx_factory.manifest_for(path, "iris", "2", labels=LABELS), path)
    Registry(s3_store).set_alias("iris", "production", "2")
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "already scored" not in err
    assert err.startswith(
        "aiaas batch: error: the run of these very bytes of rows.csv with iris:1 failed "
        "(batch/iris/input/rows.csv: the header lacks column(s) x_3"
    )
    assert err.endswith(
        "and iris is now iris:2; a run is kept per upload, so score them with 2 under another "
        f"name: aiaas batch iris {data} --name rows-v2.csv"
    )


def test_a_header_only_csv_succeeds_with_no_rows_and_says_where_its_output_is(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("id,x_0,x_1,x_2,x_3\n")  # a day with nothing to score is not an error
    assert main(["--store", local.uri, "batch", "iris", str(data)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("succeeded: scored 0 of 0 rows with iris:1 in ")
    assert out[2] == f"output:  {local.uri}/batch/iris/output/rows.csv"
    head = local.get_bytes("batch/iris/output/rows.csv").decode()
    assert head.startswith("id,x_0,x_1,x_2,x_3,pred_logits_0,") and head.count("\n") == 1


def test_an_empty_file_fails_with_exit_1_and_says_so(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "rows.csv"
    data.write_bytes(b"")
    assert main(["--store", local.uri, "batch", "iris", str(data)]) == 1
    shown = capsys.readouterr()
    assert shown.out.splitlines()[1:] == [  # the result on stdout; why it failed on stderr
        "failed: no output with iris:1",
        f"summary: {local.uri}/{SUMMARY}",
    ]
    assert shown.err == (
        "aiaas batch: error: batch/iris/input/rows.csv is empty; nothing to score\n"
    )
    assert summary(local)["status"] == "failed"


@pytest.mark.parametrize("given", ["iris:1", "iris@production"])
def test_a_version_or_alias_is_refused_saying_what_batch_scores(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    """`aiaas batch iris:2 rows.csv` was "invalid model name 'iris:2': use 1-64 characters of
    a-z, ...", which says neither that batch scores the production alias nor how to score
    another version (hunt_journey2 4). Nothing is uploaded."""
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((3, 4))))
    assert main(["--store", local.uri, "batch", given, str(data)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"aiaas batch: error: a model name, not '{given}': batch scores the ")
    assert "iris@production points at" in err and "--name iris-candidate" in err, err
    # `iris@production` is what `iris` scores: told to drop the alias (hunt_journey5 3)
    assert "(else the newest): give iris alone for it. To score another version" in err, err
    assert "promote" not in err  # it moves production's online callers too, to score one file
    assert "aiaas compare iris A B --data FILE" in err and len(err.splitlines()) == 1, err
    assert list(local.list_keys("batch")) == []


def test_a_version_of_a_model_not_published_is_refused_as_an_unknown_model(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aiaas batch nosuch:2` named `nosuch@production` as what batch would score."""
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((3, 4))))
    assert main(["--store", local.uri, "batch", "nosuch:2", str(data)]) == 1
    err = capsys.readouterr().err
    assert "nosuch" in err and "production" not in err, err


def test_the_file_before_the_model_is_refused_saying_which_comes_first(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said only `no such file: iris`, not that the two were swapped."""
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((3, 4))))
    assert main(["--store", local.uri, "batch", str(data), "iris"]) == 1
    assert capsys.readouterr().err == (
        f"aiaas batch: error: no such file: iris; the model comes first: aiaas batch iris {data}\n"
    )
    assert list(local.list_keys("batch")) == []


def test_deployed_with_shards_is_refused_before_anything_is_uploaded(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was refused after the upload, which the deployed stack then scored anyway."""
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((3, 4))))
    args = ["--store", local.uri, "batch", "iris", str(data), "--deployed", "--shards", "2"]
    assert main(args) == 1
    assert "--shards applies to local runs" in capsys.readouterr().err
    assert list(local.list_keys("batch")) == []


def test_a_bad_batch_setting_is_refused_before_the_upload_unless_the_flag_overrides_it(
    local: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It was read after the upload: a big file went to the store only to be removed again.
    And it failed the run although `--chunk-rows` overrode it; 0 was silently 4096."""
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((3, 4))))
    monkeypatch.setenv("AIAAS_BATCH_CHUNK_ROWS", "abc")
    argv = ["--store", local.uri, "batch", "iris", str(data)]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert (
        out == "" and "AIAAS_BATCH_CHUNK_ROWS must be a whole number, 1 or more; got 'abc'" in err
    )
    assert list(local.list_keys("batch")) == []
    argv += ["--no-progress", "--json"]
    code = main([*argv, "--chunk-rows", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["chunk_rows"] == 2
    monkeypatch.setenv("AIAAS_BATCH_CHUNK_ROWS", "0")
    assert main(argv) == 1
    assert "AIAAS_BATCH_CHUNK_ROWS must be positive, got 0" in capsys.readouterr().err


def test_a_twin_input_fails_naming_the_model_without_a_question_mark(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run refused before it pinned a version said `no rows read with iris:?` (now `no output`: a cut stream read rows)."""
    plain, packed = tmp_path / "rows.csv", tmp_path / "rows.csv.gz"
    plain.write_text(features_csv(np.ones((2, 4))))
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert main(["--store", local.uri, "batch", "iris", str(packed), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["--store", local.uri, "batch", "iris", str(plain), "--no-progress"]) == 1
    shown = capsys.readouterr()
    assert shown.out.splitlines()[1] == "failed: no output with iris"
    assert shown.err == (
        "aiaas batch: error: batch/iris/input/rows.csv and batch/iris/input/rows.csv.gz would "
        "both be scored into batch/iris/output/rows.csv; rename one of them and upload it again\n"
    )


@pytest.mark.parametrize("shards", [1, 2])
def test_an_input_replaced_while_it_scores_says_so_and_keeps_the_new_version(
    local: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    shards: int,
) -> None:
    """Another upload of the same name landed mid-run: the run rightly published nothing, but
    the CLI said `the run wrote no summary at ...` (sharded: `... changed since run <id> was
    planned`) and warned it `left` the input, as if the store had failed; the user could not
    tell their file was overtaken, nor what to do."""
    from functions.runtime.batch import run as batch_run
    from functions.runtime.batch import shard_pool

    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((3, 4))))
    newer = features_csv(np.zeros((2, 4))).encode()
    module, step = (batch_run, "score_text") if shards == 1 else (shard_pool, "plan_run")
    original = getattr(module, step)

    def overtaken(*args: object, **kwargs: object) -> object:
        done = original(*args, **kwargs)  # planned (sharded); scoring is read-only until the end
        local.put_bytes("batch/iris/input/rows.csv", newer)  # the nightly job's next drop
        return done

    monkeypatch.setattr(module, step, overtaken)
    args = ["--store", local.uri, "batch", "iris", str(data), "--no-progress"]
    assert main([*args, "--shards", str(shards), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert err.endswith(
        "aiaas batch: error: batch/iris/input/rows.csv was replaced in the store while this run "
        "scored it (another upload of that name), so it published nothing: the output is the "
        "newer version's, scored by its own run (a deployed stack's event; here `aiaas batch` "
        "of that file). To score this file too, upload it under another name: aiaas batch "
        f"iris {data} --name rows-2.csv\n"
    )
    assert "wrote no summary" not in err
    assert not [r for r in caplog.records if r.getMessage().startswith("left ")]
    assert local.get_bytes("batch/iris/input/rows.csv") == newer  # the newer upload stays
    assert not local.exists(SUMMARY)
    assert list(local.list_keys("batch/iris/work")) == []


RULE = (
    "use '/'-separated parts of 1-255 characters, none '.' or '..', no control characters, "
    "1024 characters in all, none starting with '.tmp-' (give another with --name NAME)"
)


@pytest.mark.parametrize("file", [".tmp-rows.csv", "nl\nname.csv"], ids=["temp", "newline"])
def test_a_file_name_no_input_may_have_says_to_give_another_with_name(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str
) -> None:
    """The name came from the file, so the user never chose it: `.tmp-` said only the rule, and
    a newline a whole store key's other wording (`invalid batch input key 'batch/...'`)."""
    data = tmp_path / file
    data.write_text(features_csv(np.ones((3, 4))))
    assert main(["--store", local.uri, "batch", "iris", str(data)]) == 1
    assert capsys.readouterr().err == (
        f"aiaas batch: error: invalid job file name {file!r}: {RULE}\n"
    )
    assert list(local.list_keys("batch")) == []
    assert main(["--store", local.uri, "batch", "iris", str(data), "--name", "rows.csv"]) == 0
    assert summary(local)["status"] == "succeeded"


def test_a_file_name_too_long_for_a_directory_store_says_to_give_another_with_name(
    local: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its summary, `<name>.summary.json`, is a file name the store cannot write: the run
    failed after the upload with "File name too long" (the control plane's job hung pending)."""
    assert local.name_bytes is not None
    room = local.name_bytes - len(".summary.json")
    data = tmp_path / ("r" * (room + 1 - 4) + ".csv")
    data.write_text(features_csv(np.ones((3, 4))))
    assert main(["--store", local.uri, "batch", "iris", str(data)]) == 1
    assert capsys.readouterr().err == (
        f"aiaas batch: error: job file name {names.shown(data.name)} is too long for this "
        f"store: its last part has {room + 1} bytes (UTF-8) and may have at most {room}, as the "
        "run writes '<name>.summary.json' beside it and the store holds names of at most "
        f"{local.name_bytes} bytes; use a shorter name (give another with --name NAME)\n"
    )
    assert list(local.list_keys("batch")) == []
    assert main(["--store", local.uri, "batch", "iris", str(data), "--name", "rows.csv"]) == 0
