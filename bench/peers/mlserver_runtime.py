"""A small custom MLServer runtime over onnxruntime, as MLServer's custom-runtime docs show.

MLServer loads it from a generated `model-settings.json`:
`{"name": M, "implementation": "bench.peers.mlserver_runtime.OnnxRuntime",
  "parameters": {"uri": "F.onnx"}}` and serves Open Inference Protocol v2:
`POST /v2/models/M/infer`.
"""

from __future__ import annotations

import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxRuntime(MLModel):  # type: ignore[misc]
    """One ONNX model; the request's first input feeds the graph's first input."""

    async def load(self) -> bool:
        uri = self.settings.parameters.uri if self.settings.parameters else None
        self.session = ort.InferenceSession(uri, providers=["CPUExecutionProvider"])
        # MLModel already has `inputs`/`outputs` (the settings' metadata): other names here.
        self.graph_input = self.session.get_inputs()[0].name
        self.graph_outputs = [o.name for o in self.session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        results = self.session.run(None, {self.graph_input: x})
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output(name, value)
                for name, value in zip(self.graph_outputs, results, strict=True)
            ],
        )
