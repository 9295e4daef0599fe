"""The CLI's readers of users' CSV files take a field over 128 KiB (one long text), as training
and batch do: Python's csv module refuses such a field by default ("field larger than field
limit"), and its limit is the process's, so each reader is tried in a fresh interpreter, where
no other reader raised it first (`explain --file` / `baseline` texts, publish's evaluation data,
compare's truth column)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LONG = " ".join(["word"] * 40_000)  # 200 KB

READERS = {
    "read_texts": (
        "from infra.cli.csv_rows import read_texts\n"
        "texts = read_texts(Path(sys.argv[1]), 'text')\n"
        "print(len(texts), len(texts[0]))"
    ),
    "compare_truth": (
        "from functions.runtime.comparison.truth import _cell\n"
        "line = Path(sys.argv[1]).read_text().splitlines()[1]\n"
        "print(1, len(_cell(line, 0)))"
    ),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_long_text_cell_is_read_whole(tmp_path: Path, reader: str) -> None:
    data = tmp_path / "texts.csv"
    data.write_text(f'text,label\n"{LONG}",a\n')
    code = "import sys\nfrom pathlib import Path\n" + READERS[reader]
    done = subprocess.run(
        [sys.executable, "-c", code, str(data)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", str(len(LONG))]
