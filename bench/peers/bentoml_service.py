"""BentoML serving the ONNX model, as BentoML's service docs show.

BENCH_MODEL_PATH=F.onnx .venv-peers/bentoml/bin/bentoml serve \
    bench.peers.bentoml_service:OnnxService --port P

`POST /predict` `{"inputs": [...]}` -> the model's first output as a JSON array.
"""

from __future__ import annotations

import os

import bentoml
import numpy as np
import onnxruntime as ort

DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


@bentoml.service
class OnnxService:
    """One ONNX model, loaded once per worker."""

    def __init__(self) -> None:
        path = os.environ["BENCH_MODEL_PATH"]
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]

    @bentoml.api  # type: ignore[untyped-decorator]
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        x = inputs.astype(DTYPES[self.input.type], copy=False)
        outputs: list[np.ndarray] = self.session.run(None, {self.input.name: x})
        return outputs[0]
