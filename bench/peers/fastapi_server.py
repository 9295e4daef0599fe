"""The peer users would write by hand: FastAPI + uvicorn + onnxruntime, one model, no extras.

python -m bench.peers.fastapi_server MODEL.onnx PORT

`POST /predict` `{"inputs": [...]}` (any shape; cast to the graph input's dtype) ->
`{"<output name>": [...]}`.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
graph_input = session.get_inputs()[0]
output_names = [o.name for o in session.get_outputs()]
app = FastAPI()


class PredictRequest(BaseModel):
    inputs: list[Any]


@app.post("/predict")
def predict(request: PredictRequest) -> dict[str, list[Any]]:
    x = np.asarray(request.inputs, dtype=DTYPES[graph_input.type])
    outputs = session.run(None, {graph_input.name: x})
    return {name: value.tolist() for name, value in zip(output_names, outputs, strict=True)}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
