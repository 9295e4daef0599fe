"""An image-sized OIP binary request through the predict handler, against raw onnxruntime.

    python -m bench.binary_tensor_latency [--pixels 224] [--repeat 300]

One 1 x (3 * pixels * pixels) FP32 tensor (602 KB at 224: a 224x224 RGB image) sent with
Triton's binary extension in a real API Gateway v2.0 event, its body base64 as API Gateway
gives it, to a model that averages it (ReduceMean), so the run is short and what the handler
does with the bytes shows: base64 both ways, the tensor's read, the checks. Against, in the
same turns, a bare `session.run` of the same array; after them, alone, the standard library's
strict base64 decode of the body (what the handler paid for the bytes before pybase64).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.args import count
from bench.predict_latency import interleaved_medians
from bench.scratch import scratch_dir

MODEL = "bench-image"


def mean_onnx(path: Path, features: int) -> Path:
    """x [N, features] -> its mean per row, y [N, 1] (FP32, opset 18)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=1)],
        "mean",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=[helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


def binary_event(row: np.ndarray) -> dict[str, Any]:
    """A v2.0 event of an OIP binary infer request of `row`, the answer asked for in binary."""
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": list(row.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": row.nbytes},
                }
            ],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
        }
    ).encode()
    path = f"/v2/models/{MODEL}/infer"
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(len(header)),
        },
        "requestContext": {"http": {"method": "POST", "path": path}, "requestId": "bench"},
        "body": base64.b64encode(header + row.tobytes()).decode(),
        "isBase64Encoded": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pixels", type=count, default=224, help="the image's side")
    parser.add_argument("--repeat", type=count, default=300)
    args = parser.parse_args()
    work = scratch_dir("aiaas-bench-binary-")
    features = 3 * args.pixels * args.pixels
    onnx_path = mean_onnx(work / "mean.onnx", features)
    env = {**os.environ, "AIAAS_STORE": str(work / "store")}
    publish = [sys.executable, "-m", "infra.cli.launch", "publish", str(onnx_path)]
    subprocess.run(  # as a user publishes it
        [*publish, "--name", MODEL, "--alias", "production"], env=env, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    os.environ.update(
        AIAAS_STORE=str(work / "store"),
        AIAAS_CACHE_DIR=str(work / "cache"),
        AIAAS_MODEL=MODEL,
        AIAAS_MODEL_SELECTOR="@production",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    import onnxruntime as ort

    sys.stdout = open(os.devnull, "w")  # the handler's EMF lines  # noqa: SIM115
    from functions.predict.handler import handler

    row = np.random.default_rng(1).random((1, features), dtype=np.float32)
    event = binary_event(row)
    assert handler(event)["statusCode"] == 200
    from functions.runtime.model import session_options

    # The handler's own options (one thread, no spinning), so the two runs are the same work.
    options = session_options(onnx_path.stat().st_size)
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    body = event["body"]

    medians = interleaved_medians(
        {
            "raw session.run": lambda: session.run(["y"], {"x": row}),
            "handler, OIP v2 binary": lambda: handler(event),
        },
        args.repeat,
    )
    # Alone, after them: what the handler's decode cost before pybase64, not work it does now.
    stdlib = interleaved_medians(
        {
            "the stdlib's strict base64 decode alone": lambda: binascii.a2b_base64(
                body, strict_mode=True
            )
        },
        args.repeat,
    )
    medians.update(stdlib)
    sys.stdout = sys.__stdout__
    raw = medians["raw session.run"]
    print(
        f"OIP binary, one 1x{features} FP32 tensor ({row.nbytes / 1e3:.0f} KB), ReduceMean, "
        f"median of {args.repeat} in turns (ratio vs raw)"
    )
    for name, value in medians.items():
        print(f"  {name:40} {value:9.1f} us   {value / raw:5.2f}x")


if __name__ == "__main__":
    main()
