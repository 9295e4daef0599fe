"""`aiaas publish|models|versions|show|promote|rollback|pull` against both stores, through
`main([...])` (`pull` copying between stores: test_cli_pull.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from functions.runtime.cache import ArtifactCache, sha256_file
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests import onnx_factory

REPO = Path(__file__).resolve().parents[2]


def foreign_onnx(path: Path) -> Path:
    """A model built by hand, not by this project: two inputs, two outputs, symbolic batch."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["left", "right"], ["total"]),
            helper.make_node("Softmax", ["total"], ["probabilities"], axis=-1),
        ],
        "foreign",
        [
            helper.make_tensor_value_info("left", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("right", TensorProto.FLOAT, ["batch", 3]),
        ],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("total", TensorProto.FLOAT, ["batch", 3]),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="hand-built"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def run(capsys: pytest.CaptureFixture[str], store: ObjectStore, *argv: str) -> tuple[int, str, str]:
    code = main(["--store", store.uri, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def fails(capsys: pytest.CaptureFixture[str], store: ObjectStore, *argv: str) -> str:
    code, out, err = run(capsys, store, *argv)
    assert (code, out) == (1, "")
    assert err.startswith(f"aiaas {argv[0]}: error: ")
    return err.strip()


def test_publish_a_foreign_model_and_show_it(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    path = foreign_onnx(tmp_path / "foreign.onnx")
    code, out, _ = run(
        capsys, store, "publish", str(path), "--name", "foreign", "--labels", "cat,dog,fish",
        "--scores-output", "probabilities", "--activation", "none",
    )  # fmt: skip
    sha = sha256_file(path)
    assert code == 0
    assert out.splitlines() == [
        f"published foreign:1 to {store.uri} (sha256 {sha[:12]})",
        "  classes cat, dog, fish (from --labels)",
        "  class scores from output 'probabilities' (activation none)",
        "  card: card/card.md (no metrics: --data FILE --target COLUMN adds them); "
        "`aiaas show foreign:1` prints its path",
    ]

    code, out, _ = run(capsys, store, "show", "foreign")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "foreign:1"
    assert "  task:      classification" in lines
    assert f"  file:      {path.stat().st_size} bytes, sha256 {sha}" in lines
    assert "  producer:  hand-built, opset 18" in lines
    inputs, outputs = lines.index("  inputs:"), lines.index("  outputs:")
    assert [line.split() for line in lines[inputs + 1 : outputs]] == [
        ["left", "float32", "[-1,", "3]", "finite"],
        ["right", "float32", "[-1,", "3]", "finite"],
    ]
    assert [line.split() for line in lines[outputs + 1 : outputs + 3]] == [
        ["probabilities", "float32", "[-1,", "3]"],
        ["total", "float32", "[-1,", "3]"],
    ]
    assert "  labels:    cat, dog, fish" in lines

    code, out, _ = run(capsys, store, "show", "foreign:1", "--json")
    manifest = ModelManifest.from_json(out)
    assert manifest.inputs[0] == TensorSpec("left", "float32", (-1, 3), finite=True)
    assert manifest.postprocessing is not None
    assert manifest.postprocessing.activation == "none"
    assert manifest.file.sha256 == sha and manifest.labels == ("cat", "dog", "fish")

    # What was published is served: the runtime loads it and predicts.
    served = ServedModel(
        ModelPool(Registry(store), ArtifactCache(store, tmp_path / "c")), "foreign"
    )
    ones = np.ones((2, 3), np.float32)
    result = served.current().predict({"left": ones, "right": ones})
    np.testing.assert_allclose(result["probabilities"], np.full((2, 3), 1 / 3), rtol=1e-6)


def test_show_says_the_opset_was_not_read_without_onnx(
    capsys: pytest.CaptureFixture[str],
    store: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A base install (no onnx) reads the graph through onnxruntime, which gives no opset:
    # `aiaas show` printed "opset 0", an opset that does not exist.
    path = foreign_onnx(tmp_path / "foreign.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert run(capsys, store, "publish", str(path), "--name", "foreign")[0] == 0
    code, out, _ = run(capsys, store, "show", "foreign")
    assert code == 0
    line = "  producer:  hand-built, opset not read (published without the onnx package, or "
    assert f"{line}ai.onnx.ml operators only)" in out.splitlines()


def test_show_lists_every_file_of_a_version_with_external_data(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    # `show` of a 2 GB model kept in external data printed only its model.onnx of a few KB.
    single = onnx_factory.linear_classifier(tmp_path / "single.onnx", features=64, classes=10)
    path = tmp_path / "export" / "model.onnx"
    path.parent.mkdir()
    onnx.save_model(
        onnx.load(str(single)), str(path), save_as_external_data=True, location="weights.bin",
        size_threshold=0,
    )  # fmt: skip
    data = path.with_name("weights.bin")
    assert run(capsys, store, "publish", str(path), "--name", "ext")[0] == 0
    code, out, _ = run(capsys, store, "show", "ext")
    assert code == 0
    lines = out.splitlines()
    at = lines.index(f"  file:      {path.stat().st_size} bytes, sha256 {sha256_file(path)}")
    assert lines[at + 1] == (
        f"             weights.bin: {data.stat().st_size} bytes, sha256 {sha256_file(data)} "
        "(weights)"
    )
    assert lines[at + 2].startswith("             card/card.md: ")  # every version's card
    assert lines[at + 3].startswith("  producer:  ")


def test_versions_aliases_promote_and_models(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    for seed in (1, 2):
        path = onnx_factory.linear_classifier(tmp_path / f"m{seed}.onnx", seed=seed)
        alias = ["--alias", "production"] if seed == 1 else []
        assert run(capsys, store, "publish", str(path), "--name", "iris", *alias)[0] == 0
    code, out, _ = run(capsys, store, "versions", "iris")
    table, history = out.split("\n@production history", 1)  # the alias's moves follow
    rows = [line.split() for line in table.splitlines()]
    assert code == 0 and [row[0] for row in rows] == ["1", "2"]
    assert history.splitlines()[1].split()[-1] == "1"
    assert rows[0][-1] == "@production" and "@production" not in rows[1]

    code, out, _ = run(capsys, store, "promote", "iris", "2", "--alias", "production")
    assert (code, out) == (0, "iris@production -> 2 (was 1)\n")
    assert run(capsys, store, "promote", "iris", "1", "--alias", "staging")[1] == (
        "iris@staging -> 1\n"
    )
    assert run(capsys, store, "show", "iris")[1].splitlines()[0] == "iris:2 @production"
    assert run(capsys, store, "show", "iris@staging")[1].splitlines()[0] == "iris:1 @staging"

    code, out, _ = run(capsys, store, "models")
    assert code == 0
    assert out.split() == ["iris", "2", "version(s),", "latest", "2", "@production=2", "@staging=1"]


def test_rollback_goes_back_along_the_alias_history(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    for seed in (1, 2, 3):
        path = onnx_factory.linear_classifier(tmp_path / f"m{seed}.onnx", seed=seed)
        assert (
            run(capsys, store, "publish", str(path), "--name", "iris", "--alias", "staging")[0] == 0
        )
    assert run(capsys, store, "rollback", "iris", "--alias", "staging") == (
        0,
        "iris@staging -> 2 (rolled back from 3)\n",
        "",
    )
    assert run(capsys, store, "rollback", "iris", "--alias", "staging", "--to", "1")[1] == (
        "iris@staging -> 1 (rolled back from 2)\n"
    )
    assert Registry(store).alias("iris", "staging") == "1"


def test_models_on_an_empty_store(capsys: pytest.CaptureFixture[str], store: ObjectStore) -> None:
    if isinstance(store, LocalStore):  # there, and empty (one not there is said as such, below)
        store.root.mkdir(parents=True, exist_ok=True)
    code, out, err = run(capsys, store, "models")
    assert (code, out) == (0, "")  # the note is not a model line: `aiaas models | wc -l` is 0
    assert err == f"no models in {store.uri}; publish one with `aiaas publish` or `aiaas train`\n"


def test_publish_with_explicit_version_and_twice(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    other = onnx_factory.linear_classifier(tmp_path / "other.onnx", seed=2)
    publish = ("publish", str(path), "--name", "m", "--version", "2024.1")
    assert run(capsys, store, *publish)[0] == 0
    written = {key: store.version(key) for key in store.list_keys("models/m")}
    # A retried job: the same file again is done already, exit 0 (it was 1, like a conflict),
    # nothing rewritten, and its --alias set (the first run may have died before it).
    code, out, err = run(capsys, store, *publish, "--alias", "prod", "--no-progress")
    assert (code, err) == (0, "")
    assert out.startswith("already published m:2024.1 to ")
    assert "already published from the same files; nothing written" in out
    assert Registry(store).alias("m", "prod") == "2024.1"
    assert {k: store.version(k) for k in store.list_keys("models/m") if k in written} == written
    code, out, _ = run(capsys, store, *publish, "--json")
    assert code == 0 and json.loads(out)["already_published"] is True
    # Another model, or the same file served otherwise, under that version is the conflict.
    err = fails(capsys, store, "publish", str(other), "--name", "m", "--version", "2024.1")
    assert err.endswith("m:2024.1 is already published; versions are immutable")
    err = fails(capsys, store, *publish, "--labels", "a,b,c")
    assert err.endswith("m:2024.1 is already published; versions are immutable")
    assert run(capsys, store, "publish", str(path), "--name", "m")[1].startswith("published m:1 ")


def test_publishing_the_same_file_again_says_so(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    # A new version is what was asked for, so it is made; but the same bytes under a new
    # number look like a retrained model to whoever reads `versions`, so the output says so.
    path = onnx_factory.linear_classifier(tmp_path / "svc.onnx", seed=1)
    other = onnx_factory.linear_classifier(tmp_path / "other.onnx", seed=2)
    code, first, _ = run(capsys, store, "publish", str(path), "--name", "svc")
    assert code == 0 and "same model file" not in first
    code, again, _ = run(capsys, store, "publish", str(path), "--name", "svc")
    assert code == 0 and again.startswith("published svc:2 ")
    assert "  note: the same model file as svc:1, published again\n" in again
    code, out, _ = run(capsys, store, "publish", str(other), "--name", "svc")
    assert code == 0 and "same model file" not in out  # another file: no note
    code, out, _ = run(capsys, store, "publish", str(path), "--name", "svc", "--json")
    doc = json.loads(out)
    assert (code, doc["version"], doc["same_file_as"]) == (0, "4", ["1", "2"])
    assert doc["sha256"] == sha256_file(path) and doc["alias"] is None
    assert doc["notes"][-1] == "note: the same model file as svc:2, published again"
    code, out, _ = run(capsys, store, "publish", str(path), "--name", "fresh", "--json")
    assert json.loads(out)["same_file_as"] == []  # another model's versions do not count


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "ghost"], "model 'ghost' not found"),
        (["show", "m:9"], "version '9' of model 'm' not found"),
        (["show", "m@canary"], "alias 'canary' of model 'm' not found"),
        (["show", "../m"], "invalid model name '../m'"),
        (["versions", "ghost"], "model 'ghost' not found"),
        (["versions", "a/b"], "invalid model name 'a/b'"),
        (["promote", "m", "9"], "version '9' of model 'm' not found"),
        (["promote", "m", "1", "--alias", "../p"], "invalid alias '../p'"),
        (["rollback", "m"], "alias 'production' of model 'm' not found"),
        (["rollback", "ghost"], "model 'ghost' not found"),
        (["rollback", "m", "--alias", "../p"], "invalid alias '../p'"),
        (["pull", "ghost", "--from", "PLACEHOLDER"], "model 'ghost' not found"),
        (["pull", "m", "--from", "gs://x"], "unsupported store URI 'gs://x'"),
    ],
)
def test_lookup_errors_exit_1_with_a_message(
    capsys: pytest.CaptureFixture[str],
    local_store: LocalStore,
    tmp_path: Path,
    argv: list[str],
    message: str,
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    assert run(capsys, local_store, "publish", str(path), "--name", "m")[0] == 0
    argv = [str(tmp_path / "elsewhere") if a == "PLACEHOLDER" else a for a in argv]
    assert message in fails(capsys, local_store, *argv)


COMMANDS = ["publish", "models", "versions", "show", "promote", "rollback", "pull"]


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: aiaas {command}")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for argv in (
        ["publish", str(tmp_path / "m.onnx")],
        [],
        ["promote", "m"],
        ["rollback"],
        ["frobnicate"],
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        assert "usage: aiaas" in capsys.readouterr().err


def test_the_installed_entry_point(tmp_path: Path) -> None:
    """The real `aiaas` script: exit codes and output as a shell sees them."""
    aiaas = Path(sys.executable).parent / "aiaas"
    store = str(tmp_path / "store")
    env = os.environ | {"AIAAS_STORE": store, "PYTHONPATH": str(REPO)}
    path = foreign_onnx(tmp_path / "foreign.onnx")

    def shell(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(aiaas), *argv], capture_output=True, text=True, env=env, timeout=60, check=False
        )

    published = shell("publish", str(path), "--name", "foreign", "--alias", "production")
    assert published.returncode == 0, published.stderr
    assert published.stdout.splitlines()[-1] == "foreign@production -> 1"
    shown = shell("show", "foreign@production", "--json")
    assert shown.returncode == 0
    assert [s["name"] for s in json.loads(shown.stdout)["outputs"]] == ["probabilities", "total"]
    missing = shell("show", "ghost")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "aiaas show: error: model 'ghost' not found\n"
    usage = shell("publish")
    assert usage.returncode == 2 and "the following arguments are required" in usage.stderr


def test_corrupt_records_are_named_and_do_not_hide_the_rest(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    registry = Registry(store)
    for version in ("1", "2"):
        registry.publish(onnx_factory.manifest_for(path, "m", version), path)
    store.put_bytes("models/m/aliases/production.json", b"[1,2")
    store.put_bytes("models/m/versions/2/manifest.json", b"{broken")
    code, out, _ = run(capsys, store, "versions", "m")
    assert code == 0
    assert out.splitlines()[0].startswith("1 ")
    assert "2          ! version '2' of model 'm' has a corrupt manifest" in out
    assert "! alias 'production' of model 'm' has a corrupt record" in out
    # --json: the version's entry keeps every key (null), and its error is among `problems`
    # (a script checking them after moving a store saw the alias's alone)
    code, out, _ = run(capsys, store, "versions", "m", "--json")
    doc = json.loads(out)
    broken = doc["versions"][1]
    assert (code, broken["version"], broken["created_at"], broken["sha256"]) == (0, "2", None, None)
    assert broken["error"] in doc["problems"] and len(doc["problems"]) == 2
    code, out, _ = run(capsys, store, "models")
    assert code == 0 and out.startswith("m ") and "corrupt record" in out
    code, out, _ = run(capsys, store, "promote", "m", "1", "--alias", "production")
    assert (code, out.strip()) == (0, "m@production -> 1 (was a corrupt record, now replaced)")
    assert registry.alias("m", "production") == "1"


def test_models_on_a_store_directory_that_is_not_there_says_so_with_json_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A mistyped --store (or an unmounted volume) read as an empty store: with --json,
    `"models": []`, exit 0 and nothing on stderr, so a CI step carried on."""
    typo = tmp_path / "stroe"
    assert main(["--store", str(typo), "models", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["models"] == []  # still the document a script reads
    assert err == (
        f"no models: the store directory {typo} does not exist (mistyped --store or AIAAS_STORE?)\n"
    )
    assert not typo.exists()  # not made by a read
