"""`aiaas publish --tokenizer ... --data FILE`: a text the model's tokenizer refuses is named
by its line in the file, as batch names it (hunt_journey6 3).

It was named by its 0-based row of the chunk scored (`input 'text' row 49 is empty`, for an
empty cell on line 51 of a CSV), where every other --data refusal names the line. Real parts:
the test transformer and its WordPiece tokenizer.json published by the real CLI.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from functions.runtime.store import LocalStore
from tests import hf_transformer
from tests.infra.test_publish_tokenizer import POSITIONS, publish

TEXTS = ["where is my parcel", "i was charged twice", "the app crashes when i open settings"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("data-lines")
    model = hf_transformer.transformer(root / "model.onnx", positions=POSITIONS)
    return model, hf_transformer.tokenizer_json(root / "tokenizer.json")


def _argv(tokenizer: Path, data: Path, *extra: str) -> tuple[str, ...]:
    labels = ",".join(hf_transformer.LABELS)
    return ("--labels", labels, "--tokenizer", str(tokenizer), "--data", str(data), *extra)


@pytest.mark.parametrize("extra", [(), ("--quantize", "int8")])
def test_an_empty_csv_text_is_named_by_its_line(
    files: tuple[Path, Path], tmp_path: Path, extra: tuple[str, ...]
) -> None:
    model, tokenizer = files
    data = tmp_path / "held.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(60):
            writer.writerow([TEXTS[i % 3], hf_transformer.LABELS[i % 3]])
        writer.writerow(["", "billing"])  # line 62: the 61st row
        writer.writerow([TEXTS[0], "delivery"])
    code, _, err = publish(LocalStore(tmp_path / "store"), model, *_argv(tokenizer, data, *extra))
    assert code != 0
    assert f"--data {data}: input 'text' on line 62 is empty; send some text" in err, err


def test_a_jsonl_text_of_nothing_kept_is_named_by_its_line(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, tokenizer = files
    data = tmp_path / "held.jsonl"
    records = [{"text": t, "label": hf_transformer.LABELS[i]} for i, t in enumerate(TEXTS)]
    records.insert(2, {"text": "\u0301", "label": "billing"})  # an accent alone: line 3
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    code, _, err = publish(LocalStore(tmp_path / "store"), model, *_argv(tokenizer, data))
    assert code != 0
    assert "on line 3 holds nothing the tokenizer keeps" in err, err


def test_a_jsonl_text_cut_inside_an_emoji_is_named_by_its_line(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    """A lone `\\ud83d` (JavaScript's slice through an emoji) was a traceback from the
    tokenizer (`TypeError: TextEncodeInput must be ...`)."""
    model, tokenizer = files
    data = tmp_path / "cut.jsonl"
    lines = [
        json.dumps({"text": t, "label": hf_transformer.LABELS[i]}) for i, t in enumerate(TEXTS)
    ]
    lines.insert(1, '{"text": "where is my parcel \\ud83d", "label": "delivery"}')  # line 2
    data.write_text("\n".join(lines) + "\n")
    code, _, err = publish(LocalStore(tmp_path / "store"), model, *_argv(tokenizer, data))
    assert code != 0
    assert f"--data {data} line 2: not valid JSON: the string 'where is my parcel" in err, err
    assert "holds \\ud83d alone (half of a UTF-16 surrogate pair" in err, err
    assert "Traceback" not in err
