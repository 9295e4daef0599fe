"""An output a torch model reduces over the batch axis (a mean over the rows beside the per-row
output), exported with torch.onnx.export(dynamo=False) and `dynamic_axes` naming the input and
the per-row output only: the export declares the reduction [1, C] and onnxruntime answers it
[1, C] for any batch. Publish relabelled it [-1, C] (as the legacy exporter's per-row outputs,
which keep the example's batch of 1 in their declaration), so OIP metadata and `aiaas show`
said [-1, C] while the server answered [1, C]. Publish now runs the graph on 2 rows and on 3
(functions/runtime/batch_reduced.py) and keeps [1, C] for an output that answers one row both
times; checked through the real publish command and the predict function's real handler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event


def export(path: Path) -> Path:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)

    class Pooled(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x: Any) -> Any:
            y = self.linear(x)
            return y, y.mean(0, keepdim=True), x.sum(0, keepdim=True)

    torch.onnx.export(
        Pooled().eval(),
        (torch.zeros(1, 4),),
        path,
        input_names=["x"],
        output_names=["y", "mean", "total"],
        dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
        dynamo=False,
    )
    return path


def test_an_output_reduced_over_the_batch_is_listed_as_it_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    path = export(tmp_path / "pooled.onnx")
    assert main(["--store", store.uri, "publish", str(path), "--name", "pooled"]) == 0
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "pooled"}, pool)

    metadata = body_of(service.handle(http_event("GET", "/v2/models/pooled")))
    shapes = {t["name"]: t["shape"] for t in metadata["outputs"]}
    assert shapes == {"y": [-1, 3], "mean": [1, 3], "total": [1, 4]}

    rows = np.arange(20, dtype=np.float32).reshape(5, 4)
    body = {
        "inputs": [
            {"name": "x", "shape": [5, 4], "datatype": "FP32", "data": rows.ravel().tolist()}
        ]
    }
    response = service.handle(http_event("POST", "/v2/models/pooled/infer", orjson.dumps(body)))
    assert response["statusCode"] == 200, response["body"]
    answered = {t["name"]: t["shape"] for t in body_of(response)["outputs"]}
    assert answered == {"y": [5, 3], "mean": [1, 3], "total": [1, 4]}  # as metadata says

    capsys.readouterr()
    assert main(["--store", store.uri, "show", "pooled"]) == 0
    shown = {
        line.split()[0]: line.split(maxsplit=2)[2]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("    ")
    }
    assert (shown["y"], shown["mean"], shown["total"]) == ("[-1, 3]", "[1, 3]", "[1, 4]")
