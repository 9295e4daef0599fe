"""KServe's Python model server with an ONNX model class, as KServe's custom-model docs show.

.venv-peers/kserve/bin/python -m bench.peers.kserve_server --model_name M --model_path F.onnx \
    --http_port P --grpc_port G

Open Inference Protocol v1: `POST /v1/models/M:predict` `{"instances": [...]}` ->
`{"predictions": [...]}` (the model's first output).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import onnxruntime as ort
from kserve import Model, ModelServer, model_server

DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


class OnnxModel(Model):  # type: ignore[misc]
    """One ONNX model behind KServe's v1 predict."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        self.session = ort.InferenceSession(self.path, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.ready = True
        return self.ready

    async def predict(
        self, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        x = np.asarray(payload["instances"], dtype=DTYPES[self.input.type])
        outputs = self.session.run(None, {self.input.name: x})
        return {"predictions": outputs[0].tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    ModelServer().start([OnnxModel(args.model_name, args.model_path)])
