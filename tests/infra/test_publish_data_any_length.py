"""`aiaas publish --data FILE.csv` for a torch GRU over windows of any length ([N, -1, 3], the
steps dynamic): CSV columns give rows of one fixed shape, and the `x_0`, `x_1`, ... columns a
user wrote were read as records of unknown inputs ("line 2 has unknown input 'x_9'"). Publish now
says a CSV cannot give such a model's rows and names the forms that can (JSONL, NPZ); both are
scored. Real torch export, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infra.cli.main import main


def export(path: Path) -> Path:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)

    class Gru(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.gru = torch.nn.GRU(3, 5, batch_first=True)
            self.head = torch.nn.Linear(5, 2)

        def forward(self, x: Any) -> Any:
            steps, _ = self.gru(x)
            return self.head(steps[:, -1])

    torch.onnx.export(
        Gru().eval(),
        (torch.zeros(2, 6, 3),),
        path,
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "n", 1: "steps"}, "logits": {0: "n"}},
        dynamo=False,
    )
    return path


def test_a_csv_for_windows_of_any_length_says_which_file_to_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = export(tmp_path / "gru.onnx")
    rng = np.random.default_rng(0)
    csv = tmp_path / "held.csv"
    lines = [",".join(f"x_{i}" for i in range(12)) + ",label"]
    lines += [",".join(f"{v:.3f}" for v in rng.normal(size=12)) + f",{r % 2}" for r in range(10)]
    csv.write_text("\n".join(lines) + "\n")
    store = ["--store", str(tmp_path / "store")]
    publish = [*store, "publish", str(model), "--name", "gru", "--labels", "a,b"]
    capsys.readouterr()
    assert main([*publish, "--data", str(csv)]) != 0
    error = capsys.readouterr().err
    assert "unknown input" not in error
    assert (
        f"--data {csv}: input 'x' has shape [-1, -1, 3]: CSV columns give rows of one fixed "
        "shape, and dimension 1 (the window's steps) is dynamic, so a CSV cannot give this "
        "model's rows; give --data as JSONL" in error
    ), error
    assert "or NPZ (an array a input, 'x' [N, ..., 3] of one size, and 'y')" in error

    jsonl = tmp_path / "held.jsonl"  # what it says to give: each window its own length
    records = [{"x": rng.normal(size=(4 + r % 3, 3)).tolist(), "label": r % 2} for r in range(10)]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main([*publish, "--data", str(jsonl)]) == 0
    assert "on 10 rows of held.jsonl" in capsys.readouterr().out
    npz = tmp_path / "held.npz"
    np.savez(npz, x=rng.normal(size=(10, 4, 3)).astype(np.float32), y=np.arange(10) % 2)
    assert main([*publish, "--data", str(npz)]) == 0
    assert "on 10 rows of held.npz" in capsys.readouterr().out
