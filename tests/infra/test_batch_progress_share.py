"""`aiaas batch` progress as a share of the file: the rows scored, and the percent and time left
from what the chunks read (the bytes of a text file, a text model's texts among them, the rows of
an .npy), since rows are not known before the file is read. It showed rows and rows/s alone."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli import row_progress
from infra.cli.main import main
from infra.cli.row_progress import Progress
from tests.batch_support import features_csv, store_with_classifier
from tests.infra.test_publish_tokenizer import TEXTS, published_text_model


@pytest.fixture
def shown_always(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(row_progress, "SHOW_AFTER_S", 0.0)  # as if each chunk took a minute
    monkeypatch.setattr(row_progress, "LOG_EVERY_S", 0.0)


@pytest.fixture(scope="module")
def text_store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    return published_text_model(tmp_path_factory.mktemp("text")).store


def shares(err: str) -> list[int]:
    return [int(line.split("% of the file")[0].rsplit("(", 1)[1]) for line in err.splitlines()]


def test_a_text_models_file_shows_its_percent_and_time_left(
    text_store: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    shown_always: None,
) -> None:
    data = tmp_path / "texts.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    args = ["--store", text_store.uri, "batch", "tiny-bert", str(data), "--chunk-rows", "2"]
    assert main(args) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 3  # a line per chunk of 2 texts
    assert shares(err)[-1] == 100 and shares(err) == sorted(shares(err)) and shares(err)[0] > 0
    assert lines[-1].startswith("tiny-bert batch texts.jsonl: 6 rows scored (100% of the file), ")
    assert all(line.endswith(" left") for line in lines[:-1]), lines


@pytest.mark.parametrize("name", ["rows.csv", "rows.npy", "rows.csv.gz"])
def test_csv_and_npy_read_to_100_percent_and_a_gzip_stream_has_none(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    shown_always: None,
    name: str,
) -> None:
    store = store_with_classifier(tmp_path, monkeypatch)
    rows = np.arange(40, dtype=np.float32).reshape(10, 4)
    data = tmp_path / name
    if name.endswith(".npy"):
        np.save(data, rows)
    else:
        text = features_csv(rows).encode()
        data.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    assert main(["--store", store.uri, "batch", "iris", str(data), "--chunk-rows", "4"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith(f"iris batch {name}: 10 rows scored")
    if name.endswith(".gz"):  # its bytes read are the unzipped ones: no share of the file
        assert "% of the file" not in "".join(lines)
    elif name.endswith(".npy"):
        assert shares("\n".join(lines)) == [40, 80, 100]  # rows read of its 10
    else:  # a chunk of 4 lines: the header and 3 rows, then 4 more, then the rest
        text = data.read_text()
        cuts = [len("".join(text.splitlines(keepends=True)[:n])) for n in (4, 8)]
        assert shares("\n".join(lines)) == [c * 100 // len(text) for c in cuts] + [100]


def test_the_time_left_is_the_files_share_left_at_the_rate_read() -> None:
    now = [0.0]
    out = io.StringIO()
    with Progress("m batch a.csv", verb="scored", of=4_000, stream=out, clock=lambda: now[0]) as p:
        now[0] = 10.0
        p.add(500, 1_000)
    assert (
        out.getvalue()
        == "m batch a.csv: 500 rows scored (25% of the file), 50 rows/s, 10.0 s, 30 s left\n"
    )


def test_a_line_over_the_limit_counts_its_own_bytes_read(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    shown_always: None,
) -> None:
    """It is read past, not held: its chunk told the bytes of the marker standing in for it,
    so a file of one 3 kB line among 0.2 kB of rows ended at 8% of the file."""
    store = store_with_classifier(tmp_path, monkeypatch)
    monkeypatch.setenv("AIAAS_BATCH_MAX_LINE_BYTES", "100")
    text = features_csv(np.arange(40, dtype=np.float32).reshape(10, 4))
    data = tmp_path / "rows.csv"
    data.write_text(text.replace("\n", "\n" + "9," * 1500 + "9\n", 1))
    assert main(["--store", store.uri, "batch", "iris", str(data)]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("iris batch rows.csv: 11 rows scored (100% of the file), ")
