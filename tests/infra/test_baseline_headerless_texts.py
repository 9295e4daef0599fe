"""`aiaas baseline` (and `aiaas explain --file`) of a file of texts with no header, for a
scikit-learn TF-IDF pipeline (one string input `text` [N, 1]): its first text was read as the
header and the refusal said only that the header lacks column `text`, where `aiaas batch` asks
whether the header line is missing, quoting the line read as one. They now ask too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_run import run as cli
from tests.runtime.test_batch_headerless_texts import published_tickets


@pytest.mark.parametrize("name", ["tickets.csv", "tickets.txt"])
def test_baseline_of_a_headerless_file_of_texts_asks_about_its_header(
    tmp_path: Path, name: str
) -> None:
    store = published_tickets(tmp_path)
    texts = tmp_path / name
    texts.write_text("refund please\npackage late\n")
    code, _, err = cli(store, "baseline", "tickets", str(texts))
    assert code != 0
    assert (
        f"{texts}: the header lacks column(s) text (is the header line missing? its first "
        "line, 'refund please', was read as the header)" in err
    ), err
    texts.write_text("text\nrefund please\npackage late\n")  # with its header: taken
    code, _, err = cli(store, "baseline", "tickets", str(texts))
    assert code == 0, err
