"""`aiaas capture export` of a text model whose captured requests include token ids.

The docs keep `{"inputs": {"input_ids": [[...]], "attention_mask": [[...]]}}` working for a text
model; one such request made every later export of the model fail with "input 'input_ids' has
rows of dynamic shape [-1, -1]" (the ids were read as fixed columns). The export writes the
texts and skips and counts the ids lines. Real path: the test transformer and its WordPiece
tokenizer.json published by `aiaas publish --tokenizer`, requests captured by the real predict
handler, exported by the real CLI.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from infra.cli.main import main
from tests.infra.test_capture_export_cells import capture
from tests.infra.test_publish_tokenizer import MODEL, published_text_model

TEXTS = ["where is my parcel", "please reset my password"]
IDS = {
    "inputs": {
        "input_ids": [[2, 4, 5, 3]],
        "attention_mask": [[1, 1, 1, 1]],
        "token_type_ids": [[0, 0, 0, 0]],
    }
}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_token_ids_request_is_skipped_and_said_the_texts_exported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    built = published_text_model(tmp_path)
    registry = Registry(built.store)
    bodies = [{"inputs": [TEXTS[0]]}, IDS, {"instances": [{"text": TEXTS[1]}]}]
    answers = capture(registry, tmp_path, MODEL, bodies)
    out = tmp_path / f"export{suffix}"
    capsys.readouterr()
    code = main(["--store", built.store.uri, "capture", "export", MODEL, "--out", str(out)])
    said, err = capsys.readouterr()
    assert code == 0, err
    assert "1 captured requests sent token ids, not text: skipped" in said
    if suffix == ".csv":
        with out.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    served = [a["predictions"][0]["label"] for a in (answers[0], answers[2])]
    assert [r["served_label"] for r in rows] == served


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_lone_text_is_exported_as_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    """One text without a list is answered (simple JSON, by the ids input's name, an OIP BYTES
    tensor of shape []); its export held the served label beside a null text, which batch
    then refused as empty (hunt_journey6 2)."""
    built = published_text_model(tmp_path)
    registry = Registry(built.store)
    lone = ["where is my parcel", "please reset my password", "I was charged twice"]
    bodies = [{"inputs": lone[0]}, {"inputs": {"input_ids": lone[1]}}]
    answers = capture(registry, tmp_path, MODEL, bodies)
    oip = {"inputs": [{"name": "input_ids", "datatype": "BYTES", "shape": [], "data": lone[2]}]}
    infer = capture(registry, tmp_path, MODEL, [oip], route="/v2/models/{}/infer")[0]
    out = tmp_path / f"export{suffix}"
    capsys.readouterr()
    code = main(["--store", built.store.uri, "capture", "export", MODEL, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    if suffix == ".csv":
        with out.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["text"] for r in rows) == sorted(lone)
    by_text = {r["text"]: r for r in rows}
    for text, answer in zip(lone, answers, strict=False):
        assert by_text[text]["served_label"] == answer["predictions"][0]["label"]
    logits = infer["outputs"][0]["data"]
    assert float(by_text[lone[2]]["served_logits_0"]) == pytest.approx(logits[0], rel=1e-6)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_oip_texts_of_shape_n_1_export_as_texts_batch_scores_to_the_served_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    """An OIP BYTES tensor named by the text field, of shape [2, 1] or [1, 1] (tritonclient's
    usual form), was exported as one-string lists (CSV: "['where is my parcel']"), and batch on
    the export scored that bracketed text: labels other than the ones served (rev12 1)."""
    built = published_text_model(tmp_path)
    registry = Registry(built.store)
    sent = ["where is my parcel", "app crash on login", "I was charged twice"]
    oip = [
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2, 1], "data": sent[:2]}]},
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1, 1], "data": [[sent[2]]]}]},
    ]
    answers = capture(registry, tmp_path, MODEL, oip, route="/v2/models/{}/infer")
    assert all("outputs" in a for a in answers), answers
    out = tmp_path / f"export{suffix}"
    capsys.readouterr()
    code = main(["--store", built.store.uri, "capture", "export", MODEL, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    if suffix == ".csv":
        with out.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["text"] for r in rows) == sorted(sent)
    served = {r["text"]: r["served_label"] for r in rows}
    # The served labels, as the simple route answers the same texts.
    simple = capture(registry, tmp_path, MODEL, [{"inputs": sent}])[0]["predictions"]
    assert served == {t: p["label"] for t, p in zip(sent, simple, strict=True)}
    capsys.readouterr()
    code = main(["--store", built.store.uri, "batch", MODEL, str(out)])
    said, err = capsys.readouterr()
    assert code == 0, said + err
    key = next(x for x in said.splitlines() if x.startswith("output:")).split()[1]
    scored_file = Path(built.store.uri) / key.removeprefix(built.store.uri + "/")
    if suffix == ".csv":
        scored = list(csv.DictReader(io.StringIO(scored_file.read_text())))
    else:
        scored = [json.loads(line) for line in scored_file.read_text().splitlines()]
    assert len(scored) == len(sent), said
    assert {r["text"]: r["pred_label"] for r in scored} == served
