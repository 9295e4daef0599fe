"""`aiaas publish --version V --quantize` on a taken V: another model's version is refused
before any quantizing or scoring (it said "already published" only after both: 37 s for a
2.3 GB model), while a retried job of the same files is still done already, exit 0, and told
plainly that the stored version, published without --data, keeps its card without metrics
(the card line told that retry, run with --data, to pass --data).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from bench.models import mlp_onnx
from functions.runtime.store import LocalStore
from infra.cli import publish_evaluation, publish_quantize
from tests.infra.test_publish_quantize import publish

LABELS = ",".join(str(i) for i in range(10))


def _rows(model: Path, path: Path) -> Path:
    rows = np.random.default_rng(0).normal(size=(50, 64)).astype(np.float32)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    truth = session.run(None, {"x": rows})[0].argmax(axis=1)
    lines = [
        json.dumps({"x": r.tolist(), "label": int(t)}) for r, t in zip(rows, truth, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_taken_version_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "store")
    model = mlp_onnx(tmp_path / "mlp.onnx")
    other = mlp_onnx(tmp_path / "other.onnx", seed=1)
    data = _rows(model, tmp_path / "rows.jsonl")
    first = ("--labels", LABELS, "--version", "5", "--quantize", "int8")
    code, _, err = publish(store, model, "m", *first)
    assert code == 0, err
    written = {key: store.version(key) for key in store.list_keys("models/m")}

    calls: list[str] = []

    def spied(real: Any, what: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(what)
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(publish_quantize, "quantize", spied(publish_quantize.quantize, "q"))
    monkeypatch.setattr(publish_evaluation, "evaluate", spied(publish_evaluation.evaluate, "e"))
    scored = ("--data", str(data), "--max-drop", "100")
    refusals = [
        (other, first),  # another file, same method
        (model, (*first[:-1], "fp16")),  # the same file, another method
        (model, first[:-2]),  # the same file, not quantized: the stored version is a variant
        (other, (*first, *scored)),
    ]
    for path, argv in refusals:
        code, out, err = publish(store, path, "m", *argv)
        assert (code, out) == (1, ""), argv
        assert err == "aiaas publish: error: m:5 is already published; versions are immutable\n"
        assert calls == [], f"{argv} quantized or scored before it was refused"

    # A retried job of the same files, now with --data: done already, nothing written.
    code, out, err = publish(store, model, "m", *first, *scored)
    assert code == 0, err
    assert calls == ["q", "e"]  # the finished variant is what is compared
    assert "already published from the same files; nothing written; it was published " in out
    assert "without --data, and its card stays without metrics" in out
    assert "--data FILE --target COLUMN adds them" not in out
    assert "(no metrics: the version was published without --data)" in out
    assert {k: store.version(k) for k in store.list_keys("models/m")} == written
