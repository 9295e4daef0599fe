"""The peer users would write by hand: FastAPI + uvicorn + onnxruntime, one model, no extras.

python -m bench.peers.fastapi_server MODEL.onnx PORT
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
app = FastAPI()


class PredictRequest(BaseModel):
    inputs: list[list[float]]


@app.post("/predict")
def predict(request: PredictRequest) -> dict[str, list[list[float]]]:
    x = np.asarray(request.inputs, dtype=np.float32)
    (logits,) = session.run(None, {"x": x})
    return {"logits": logits.tolist()}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
