"""`aiaas explain --file` and `aiaas baseline` of a capture export with a field denied at capture
(`aiaas capture MODEL --deny income`: an empty cell in every row): they advised publishing with
`--allow-nonfinite`, as if the requests had sent missing values (the model refused those, so
none was captured), where `aiaas batch` already said the column was denied at capture. They now
say so too. Real predict handler, real capture, the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.cli.main import main
from tests.infra.test_capture_export_cells import FEATURES, ROWS
from tests.infra.test_capture_export_denied import denied_export


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return denied_export(tmp_path)


@pytest.mark.parametrize("command", ["explain", "baseline"])
def test_a_field_denied_at_capture_is_named_so_by_explain_and_baseline(
    tmp_path: Path, export: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--store", str(tmp_path / "store")]
    capsys.readouterr()
    if command == "explain":  # a background from the training data first
        train = tmp_path / "train.csv"
        lines = [",".join(FEATURES)] + [",".join(map(str, row)) for row in ROWS * 4]
        train.write_text("\n".join(lines) + "\n")
        assert main([*argv, "baseline", "churn", str(train)]) == 0
        capsys.readouterr()
        out = tmp_path / "why.jsonl"
        code = main([*argv, "explain", "churn", "--file", str(export), "--out", str(out)])
    else:
        code = main([*argv, "baseline", "churn", str(export)])
    said = capsys.readouterr()
    text = said.out + said.err + (out.read_text() if command == "explain" and out.exists() else "")
    assert code != 0  # no row can be explained, nor summarized
    assert "--allow-nonfinite" not in text
    said_rows = [line for line in text.splitlines() if "column 'income'" in line]
    assert len(said_rows) == (3 if command == "explain" else 1), text
    for line in said_rows:
        assert "column 'income' is an empty cell: this file is a capture export" in line
        assert "denied at capture (`aiaas capture MODEL --deny`)" in line
