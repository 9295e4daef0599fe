"""`aiaas publish --tokenizer ... --max-length N` with an N no model can read: refused, nothing
written. `--max-length 0` used to be taken as not given (the model's 24 positions published
instead, silently), and a negative or 1 was told "cannot tell the longest text the model reads"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import hf_transformer
from tests.infra.test_publish_tokenizer import refused


@pytest.mark.parametrize("given", ["0", "1", "-3"])
def test_a_max_length_below_two_is_refused(tmp_path: Path, given: str) -> None:
    model = hf_transformer.transformer(tmp_path / "model.onnx", positions=24)
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    error = refused(tmp_path, model, "--tokenizer", str(tokenizer), "--max-length", given)
    assert error == (
        f"--max-length {given} is too short: a text model reads at least 2 tokens (e.g. "
        "[CLS] and [SEP])"
    )
