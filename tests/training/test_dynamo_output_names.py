"""A torch model exported by the dynamo exporter (torch.onnx.export's default) with an output
named after an op inside it (`output_names=[..., "embedding"]` beside an nn.Embedding) is a file
where two nodes write `embedding`. onnxruntime refuses it with "Duplicate definition of name
(embedding)"; publish says which export setting causes it and what to change."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs torch: pip install 'aiaas[training]'")

import torch

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main


class Tower(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = torch.nn.Embedding(10, 4)
        self.mix = torch.nn.Linear(4, 4)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = torch.relu(self.mix(self.table(ids)))
        return embedded.sum(dim=1, keepdim=True), embedded


def export(path: Path, outputs: list[str]) -> Path:
    ids = torch.tensor([1, 2])
    batch = {"ids": {0: torch.export.Dim("N")}}
    torch.onnx.export(
        Tower().eval(), (ids,), str(path), input_names=["ids"], output_names=outputs,
        dynamic_shapes=batch,
    )  # fmt: skip
    return path


def test_an_output_named_after_an_op_is_told_how_to_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    clashing = export(tmp_path / "clash.onnx", ["score", "embedding"])
    code = main(["--store", store.uri, "publish", str(clashing), "--name", "tower"])
    err = capsys.readouterr().err
    assert code == 1  # torch 2.13 (pinned); a torch that names its values otherwise fails here
    assert "two of its nodes write a value named 'embedding'" in err
    assert "name that output otherwise ('embedding_out'), or export with dynamo=False" in err
    renamed = export(tmp_path / "renamed.onnx", ["score", "embedding_out"])
    assert main(["--store", store.uri, "publish", str(renamed), "--name", "tower"]) == 0
    assert [o.name for o in Registry(store).manifest("tower", "1").outputs] == [
        "score",
        "embedding_out",
    ]
