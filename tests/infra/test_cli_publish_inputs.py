"""What `aiaas publish` refuses before it writes anything (bad names, options and files), and
the class labels it takes with a warning (labels batch writes into CSV a spreadsheet may open)."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore, ObjectStore
from tests import onnx_factory
from tests.infra.test_cli_registry import fails, run


def test_publish_refuses_bad_names(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    for bad in ["../x", "a/b", "%2e%2e", "x" * 65, "Iris", ""]:
        err = fails(capsys, store, "publish", str(path), "--name", bad)
        assert f"invalid model name {bad[:70]!r}"[:60] in err and "1-64 characters of a-z" in err
    assert list(store.list_keys("models")) == []


BAD_OPTIONS = [
    (["--alias", "Prod!"], "invalid alias 'Prod!'"),
    (
        ["--labels", "a,b"],
        "--labels lists 2 labels but the model has 3 classes (output 'logits' has 3 scores per row)",
    ),
    (["--labels", "a,,c"], "--labels has an empty label; use a,b,c"),
    # Taken, and two classes answered `a` (refused as `--features a,a,b` is).
    (
        ["--labels", "a, b,a"],
        "--labels: class labels must be unique; 'a' appears twice (two classes would answer "
        "the same label)",
    ),
    (["--labels", "a,b,c", "--scores-output", "probs"], "--scores-output 'probs' is not an output"),
    (["--version", "../1"], "invalid version '../1'"),
]


def test_publish_refuses_bad_options_before_writing(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    for extra, message in BAD_OPTIONS:
        assert message in fails(capsys, store, "publish", str(path), "--name", "m", *extra)
    assert list(store.list_keys("models")) == []


def test_labels_given_twice_are_refused_when_written_and_still_read(
    store: ObjectStore, tmp_path: Path
) -> None:
    """Not the CLI's check alone: `train` and library callers publish through the same code.
    A version published with them before is still read (and served) as it was."""
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    manifest = onnx_factory.manifest_for(path, "m", "1", labels=("x", "y", "x"))
    with pytest.raises(BadRequest, match=r"^m:1: class labels must be unique; 'x' appears twice"):
        Registry(store).publish(manifest, path)
    assert list(store.list_keys("models")) == []
    assert ModelManifest.from_json(manifest.to_json()).labels == ("x", "y", "x")


def test_labels_that_are_plain_numbers_are_no_formula(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    code, out, err = run(capsys, store, "publish", str(path), "--name", "m", "--labels=-1,0,+1")
    assert (code, err) == (0, ""), out
    assert "warning" not in out
    assert Registry(store).manifest("m", "1").labels == ("-1", "0", "+1")


def test_labels_a_spreadsheet_would_run_are_published_with_a_warning(
    capsys: pytest.CaptureFixture[str], local_store: LocalStore, tmp_path: Path
) -> None:
    # Batch writes labels into its CSV output (pred_label). They are the publisher's own text,
    # and labels such as "-ve" are common: published as given, with a warning that names them.
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    labels = 'ok,=HYPERLINK("http://x.invalid"),-ve'
    code, out, err = run(
        capsys, local_store, "publish", str(path), "--name", "m", "--labels", labels
    )
    assert (code, err) == (0, ""), out
    assert (
        "warning: class label '=HYPERLINK(\"http://x.invalid\")' starts with =, +, -, @, tab, CR "
        "or NUL: a spreadsheet opening batch output (its pred_label column) would run it as a "
        "formula (CWE-1236); if that output is opened in one, rename the class (a plain number "
        "such as -1 is fine); 2 labels are so: '=HYPERLINK(\"http://x.invalid\")', '-ve'"
    ) in out
    assert Registry(local_store).manifest("m", "1").labels == tuple(labels.split(","))


def test_publish_refuses_files_that_are_not_onnx(
    capsys: pytest.CaptureFixture[str], local_store: LocalStore, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.onnx"
    assert fails(capsys, local_store, "publish", str(missing), "--name", "m").endswith(
        f"no such file: {missing}"
    )
    junk = tmp_path / "junk.onnx"
    junk.write_text("not onnx")
    said = fails(capsys, local_store, "publish", str(junk), "--name", "m")
    assert f"{junk} is not an ONNX model" in said and "publish the .onnx file" in said


def test_a_bfloat16_export_is_refused_saying_what_to_export_instead(
    capsys: pytest.CaptureFixture[str], local_store: LocalStore, tmp_path: Path
) -> None:
    # What torch.onnx.export writes after model.bfloat16(): onnxruntime's CPU kernels have no
    # bfloat16 Gemm, and its error says only that a node has no implementation.
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("W", TensorProto.BFLOAT16, [4, 3], [0.5] * 12)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W"], ["y"])],
        "bf16",
        [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, ["N", 3])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "bf16.onnx")
    said = fails(capsys, local_store, "publish", str(tmp_path / "bf16.onnx"), "--name", "m")
    assert "NOT_IMPLEMENTED" in said and said.endswith(
        "; the graph computes in bfloat16, which onnxruntime does not run on a CPU: export the "
        "model in float32 (model.float()) or float16 (model.half())"
    )
