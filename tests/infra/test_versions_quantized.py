"""`aiaas versions` tells a source from its `publish --quantize` variants.

A user published their model, then its int8 and fp16 variants with `--data`: three lines of
the same accuracy, and nothing ("a line a version: metrics, aliases, settings that differ")
said which was which before `aiaas promote` (hunt_journey4 3). The real CLI publishes the
demo MLP and its variants to a directory store; `versions` is read as a user reads it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench.models import mlp_onnx
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.onnx_factory import manifest_for

LABELS = ",".join(str(d) for d in range(10))


def _cli(store: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--store", str(store), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _settings(
    store: Path, capsys: pytest.CaptureFixture[str], name: str
) -> tuple[dict[str, str], str]:
    """`aiaas versions NAME`: each version's line by its version, and the whole output."""
    code, out, err = _cli(store, capsys, "versions", name)
    assert code == 0, err
    return {line.split()[0]: line for line in out.splitlines() if line[:1].isdigit()}, out


def test_versions_says_which_is_int8_and_which_fp16(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, model = tmp_path / "store", mlp_onnx(tmp_path / "mlp.onnx")
    for extra in ([], ["--quantize", "int8"], ["--quantize", "fp16"]):
        code, _, err = _cli(
            store, capsys, "publish", str(model), "--name", "m", "--labels", LABELS, *extra
        )
        assert code == 0, err
    # A model whose versions are all plain says nothing of it.
    for _ in range(2):
        assert _cli(store, capsys, "publish", str(model), "--name", "plain")[0] == 0
    lines, out = _settings(store, capsys, "m")
    assert lines["1"].endswith("quantize=-"), out
    assert lines["2"].endswith("quantize=int8"), out
    assert lines["3"].endswith("quantize=fp16"), out
    code, out, err = _cli(store, capsys, "versions", "plain")
    assert code == 0 and "quantize" not in out, out


def test_a_trained_source_and_its_published_variant_are_told_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aiaas train`, then `publish --quantize int8` of its file: the trained version and the
    published one were compared apart, the variant with nothing, so neither said quantize=
    (rev11 4). The trained version here is written as `aiaas train` publishes it (its training
    record, the int8 gate's record not kept); training one takes a minute."""
    store, model = tmp_path / "store", mlp_onnx(tmp_path / "mlp.onnx")
    manifest = manifest_for(model, "m", "1", labels=tuple(LABELS.split(",")))
    trained = {"recipe": {"name": "mlp", "params": {"hidden": [32]}}, "epochs": 8}
    gate = {"quantization": {"enabled": True, "kept": False, "reason": "slower"}}
    manifest = dataclasses.replace(manifest, training=trained, extras=gate)
    Registry(LocalStore(store)).publish(manifest, model)
    argv = ("publish", str(model), "--name", "m", "--labels", LABELS, "--quantize", "int8")
    assert _cli(store, capsys, *argv)[0] == 0
    lines, out = _settings(store, capsys, "m")
    assert lines["1"].endswith("quantize=-"), out
    assert lines["2"].endswith("quantize=int8"), out


def test_a_file_quantized_by_the_user_reads_int8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user quantized their model with onnxruntime's own quantize_dynamic and
    quantize_static (QDQ, calibrated on rows) and published the files beside the source: three
    lines of the same accuracy and nothing said which was int8, where a `--quantize` variant
    is marked. onnxruntime's quantizers name themselves as the file's producer."""
    import numpy as np
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        quantize_dynamic,
        quantize_static,
    )

    class Rows(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.rows = iter([{"x": rng.normal(size=(1, 64)).astype(np.float32)}] * 8)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.rows, None)

    store, model = tmp_path / "store", mlp_onnx(tmp_path / "mlp.onnx")
    dynamic, qdq = tmp_path / "dynamic.onnx", tmp_path / "qdq.onnx"
    quantize_dynamic(str(model), str(dynamic))
    quantize_static(str(model), str(qdq), Rows(), quant_format=QuantFormat.QDQ)
    for path in (model, dynamic, qdq):
        code, _, err = _cli(store, capsys, "publish", str(path), "--name", "m", "--labels", LABELS)
        assert code == 0, err
    lines, out = _settings(store, capsys, "m")
    assert lines["1"].endswith("quantize=-"), out
    assert lines["2"].endswith("quantize=int8"), out
    assert lines["3"].endswith("quantize=int8"), out
