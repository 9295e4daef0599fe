"""The bad-input table: malformed requests for both protocols and the control plane.

Each row is one request as bytes on the wire and the 4xx answer it must get: the status and
the start of the `{"error": ...}` message, which must say what to fix. The model is
`digits-mlp` (x: float32 [-1, 64] -> logits [-1, 10]). One row per line: it is a table.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from tests.functions.test_predict_events import MODEL

PREDICT = f"/models/{MODEL}/predict"
INFER = f"/v2/models/{MODEL}/infer"
ALIAS = f"/control/models/{MODEL}/aliases/production"
JOBS = f"/control/batch/{MODEL}/jobs"
JSON_TYPE = {"content-type": "application/json"}
ROW = [0.5] * 64


@dataclass(frozen=True)
class Bad:
    """One malformed request and the answer it must get."""

    id: str
    method: str
    path: str
    body: bytes = b""
    status: int = 400
    error: str = ""  # the start of the error message
    headers: dict[str, str] = field(default_factory=dict)


def doc(value: object) -> bytes:
    return json.dumps(value).encode()


def tensor(**fields: object) -> dict[str, object]:
    return {"name": "x", "shape": [1, 64], "datatype": "FP32", "data": ROW, **fields}


def infer(*tensors: object, **extra: object) -> bytes:
    return doc({"inputs": list(tensors), **extra})


def binary_tensor(size: object = 256, **fields: object) -> dict[str, object]:
    item = {"name": "x", "shape": [1, 64], "datatype": "FP32", **fields}
    return {"inputs": [{**item, "parameters": {"binary_data_size": size}}]}


def bin_case(
    id: str,
    head: dict[str, object],
    payload: bytes,
    error: str,
    status: int = 400,
    length: str | None = None,
) -> Bad:
    """A binary-extension request whose header length may lie."""
    header = json.dumps(head).encode()
    headers = {
        "inference-header-content-length": str(len(header)) if length is None else length,
        "content-type": "application/octet-stream",
    }
    return Bad(id, "POST", INFER, header + payload, status, error, headers)


FLOATS = struct.pack("<f", 0.5) * 64
NAN = struct.pack("<f", float("nan")) * 64
INF = struct.pack("<f", float("inf")) * 64
DEEP = b"[" * 5000 + b"]" * 5000

# fmt: off
SIMPLE = [
    Bad("simple-invalid-json", "POST", PREDICT, b"{oops", error="request body is not valid JSON"),
    Bad("simple-truncated", "POST", PREDICT, b'{"inputs": [[0.5, 0.5', error="request body is not valid JSON"),
    Bad("simple-empty-body", "POST", PREDICT, error="request body is not valid JSON"),
    Bad("simple-array-body", "POST", PREDICT, b"[1, 2]", error="request body must be a JSON object"),
    Bad("simple-both-keys", "POST", PREDICT, doc({"inputs": [ROW], "instances": [ROW]}), error='request body needs exactly one of "inputs" or "instances"'),
    Bad("simple-no-keys", "POST", PREDICT, doc({"rows": [ROW]}), error='request body needs exactly one of "inputs" or "instances"'),
    Bad("simple-inputs-string", "POST", PREDICT, doc({"inputs": "abc"}), 422, "input 'x' must be a number (float32); got 'abc'"),
    Bad("simple-inputs-object-value", "POST", PREDICT, doc({"inputs": {"x": {"a": 1}}}), 422, "input 'x' expects float32 numbers; got mixed or null values"),
    Bad("simple-wrong-shape", "POST", PREDICT, doc({"inputs": [[0.5] * 60]}), 422, "input 'x' expects shape [-1, 64]; got [1, 60]"),
    Bad("simple-rank-3", "POST", PREDICT, doc({"inputs": [[ROW]]}), 422, "input 'x' expects shape [-1, 64] (rank 2); got shape [1, 1, 64]"),
    Bad("simple-ragged", "POST", PREDICT, doc({"inputs": [ROW, [0.5] * 3]}), 422, "input 'x' is ragged"),
    Bad("simple-null-values", "POST", PREDICT, doc({"inputs": [[None] * 64]}), 422, "input 'x' at index [0, 0] is a missing value (null); this model takes finite numbers only"),
    Bad("simple-strings", "POST", PREDICT, doc({"inputs": [["1"] * 64]}), 422, "input 'x' value [0, 0] must be a number (float32); got '1'"),
    Bad("simple-booleans", "POST", PREDICT, doc({"inputs": [[True] * 64]}), 422, "input 'x' expects float32; got true/false values"),
    Bad("simple-nan-literal", "POST", PREDICT, b'{"inputs": [[NaN' + b", 0.5" * 63 + b"]]}", error="request body is not valid JSON"),
    Bad("simple-infinity-literal", "POST", PREDICT, b'{"inputs": [[Infinity' + b", 0.5" * 63 + b"]]}", error="request body is not valid JSON"),
    Bad("simple-overflow-to-infinity", "POST", PREDICT, b'{"inputs": [[1e400' + b", 0.5" * 63 + b"]]}", error="request body is not valid JSON: number is infinity"),
    Bad("simple-deeply-nested", "POST", PREDICT, b'{"inputs": ' + DEEP + b"}", error="request body is not valid JSON: depth limit exceeded"),
    Bad("simple-empty-batch", "POST", PREDICT, doc({"inputs": {"x": []}}), 422, "input 'x' has an empty batch; send at least one row"),
    Bad("simple-unknown-input", "POST", PREDICT, doc({"inputs": {"x": [ROW], "y": [1.0]}}), 422, "unknown input 'y'; this model takes x: float32 [-1, 64]"),
    Bad("simple-instances-empty", "POST", PREDICT, doc({"instances": []}), error='"instances" must be a non-empty list of rows'),
    Bad("simple-instances-object", "POST", PREDICT, doc({"instances": {"x": ROW}}), error='"instances" must be a non-empty list of rows'),
    Bad("simple-instance-unknown-key", "POST", PREDICT, doc({"instances": [{"y": ROW}]}), 422, "instances[0] has unknown input 'y'"),
    Bad("simple-top-k-negative", "POST", PREDICT + "?top_k=-1", doc({"inputs": [ROW]}), error="top_k must be an integer from 1 to 1000; got '-1'"),
    Bad("simple-top-k-huge", "POST", PREDICT + "?top_k=99999999999999999999", doc({"inputs": [ROW]}), error="top_k must be an integer from 1 to 1000"),
    Bad("simple-form-encoded", "POST", PREDICT, b"inputs=0.5", error="request body is not valid JSON", headers={"content-type": "application/x-www-form-urlencoded"}),
    Bad("simple-xml", "POST", PREDICT, b"<inputs>0.5</inputs>", error="request body is not valid JSON", headers={"content-type": "application/xml"}),
    Bad("simple-binary-garbage", "POST", PREDICT, b"\xff\xfe\x00\x01garbage", error="request body is not UTF-8 text (byte 1 is 0xff)", headers={"content-type": "application/octet-stream"}),
    Bad("simple-over-payload-limit", "POST", PREDICT, b'{"inputs": [' + b"0.5," * (1700 * 1024) + b"0.5]}", 413, "request body is over the 6291456 byte limit"),
]

OIP_JSON = [
    Bad("oip-invalid-json", "POST", INFER, b'{"inputs": [', error="request body is not valid JSON"),
    Bad("oip-no-inputs", "POST", INFER, doc({"id": "1"}), error="request needs 'inputs': a non-empty list of tensors"),
    Bad("oip-inputs-object", "POST", INFER, doc({"inputs": tensor()}), error="request needs 'inputs': a non-empty list of tensors"),
    Bad("oip-tensor-not-object", "POST", INFER, doc({"inputs": [5]}), error="inputs[0] must be a JSON object"),
    Bad("oip-empty-name", "POST", INFER, infer(tensor(name="")), error="inputs[0] needs a 'name'"),
    Bad("oip-unknown-datatype", "POST", INFER, infer(tensor(datatype="FLOAT32")), error="tensor 'x' has datatype 'FLOAT32'; expected one of"),
    Bad("oip-shape-not-list", "POST", INFER, infer(tensor(shape="1x64")), error="tensor 'x' needs a shape: a list of non-negative integers"),
    Bad("oip-negative-dim", "POST", INFER, infer(tensor(shape=[-1, 64])), error="tensor 'x' needs a shape: a list of non-negative integers"),
    Bad("oip-float-dim", "POST", INFER, infer(tensor(shape=[1, 64.0])), error="tensor 'x' needs a shape: a list of non-negative integers"),
    Bad("oip-bool-dim", "POST", INFER, infer(tensor(shape=[True, 64])), error="tensor 'x' needs a shape: a list of non-negative integers"),
    Bad("oip-huge-dims", "POST", INFER, infer(tensor(shape=[1 << 40, 1 << 40])), 422, "tensor 'x' declares shape [1099511627776, 1099511627776]: over 67108864 elements"),
    Bad("oip-65-dims", "POST", INFER, infer(tensor(shape=[1] * 65)), 422, "tensor 'x' declares 65 dimensions; at most 32 are allowed"),
    Bad("oip-count-mismatch", "POST", INFER, infer(tensor(data=[0.5] * 10)), 422, "tensor 'x' has 10 elements; shape [1, 64] needs 64"),
    Bad("oip-data-strings", "POST", INFER, infer(tensor(data=["a"] * 64)), 422, "tensor 'x' is FP32: data must be numbers"),
    Bad("oip-data-object", "POST", INFER, infer(tensor(data={"a": 1})), 422, "tensor 'x' is FP32: data must be numbers"),
    Bad("oip-data-nulls", "POST", INFER, infer(tensor(data=[None] * 64)), 422, "input 'x' at index [0, 0] is a missing value (null or NaN); this model takes finite numbers only"),
    Bad("oip-fp32-overflow", "POST", INFER, infer(tensor(data=[1e300] * 64)), 422, "tensor 'x' has values out of range for FP32"),
    Bad("oip-int64-overflow", "POST", INFER, infer(tensor(datatype="INT64", data=[2**63] * 64)), 422, "tensor 'x' has values out of range for INT64"),
    Bad("oip-wrong-datatype", "POST", INFER, infer(tensor(datatype="FP64")), 422, "input 'x' expects FP32 (float32); got FP64 (float64), which does not convert safely: send FP32 (numpy .astype('float32'))"),
    Bad("oip-bytes-for-floats", "POST", INFER, infer(tensor(datatype="BYTES", data=["a"] * 64)), 422, "input 'x' value [0, 0] must be a number, FP32 (float32); got 'a'"),
    Bad("oip-empty-batch", "POST", INFER, infer(tensor(shape=[0, 64], data=[])), 422, "input 'x' has an empty batch; send at least one row"),
    Bad("oip-parameters-not-object", "POST", INFER, infer(tensor(parameters=5)), error="input 'x' parameters must be a JSON object"),
    Bad("oip-request-parameters-list", "POST", INFER, infer(tensor(), parameters=[1]), error="request parameters must be a JSON object"),
    Bad("oip-outputs-not-list", "POST", INFER, infer(tensor(), outputs={"name": "logits"}), error="'outputs' must be a list"),
    Bad("oip-output-not-object", "POST", INFER, infer(tensor(), outputs=[5]), error="outputs[0] must be a JSON object"),
    Bad("oip-unknown-output", "POST", INFER, infer(tensor(), outputs=[{"name": "probs"}]), 422, "unknown output 'probs'; this model has outputs ['logits']"),
    Bad("oip-id-not-string", "POST", INFER, infer(tensor(), id=7), error="'id' must be a string"),
    Bad("oip-input-twice", "POST", INFER, infer(tensor(), tensor()), error="input 'x' is given twice"),
    Bad("oip-binary-size-without-header", "POST", INFER, doc(binary_tensor()), error="input 'x' has binary_data_size but the request has no Inference-Header-Content-Length header"),
]

OIP_BINARY = [
    bin_case("bin-length-not-integer", binary_tensor(), FLOATS, "Inference-Header-Content-Length must be a non-negative integer", length="abc"),
    bin_case("bin-length-negative", binary_tensor(), FLOATS, "Inference-Header-Content-Length must be a non-negative integer", length="-5"),
    bin_case("bin-length-beyond-body", binary_tensor(), FLOATS, "Inference-Header-Content-Length is 99999 but the body has only", length="99999"),
    bin_case("bin-length-zero", binary_tensor(), FLOATS, "request body is not valid JSON", length="0"),
    bin_case("bin-length-cuts-header", binary_tensor(), FLOATS, "request body is not valid JSON", length="10"),
    bin_case("bin-size-negative", binary_tensor(-4), FLOATS, "input 'x' binary_data_size must be a non-negative integer"),
    bin_case("bin-size-string", binary_tensor("256"), FLOATS, "input 'x' binary_data_size must be a non-negative integer"),
    bin_case("bin-size-beyond-data", binary_tensor(512), FLOATS, "input 'x' claims 512 bytes of binary data; only 256 remain"),
    bin_case("bin-trailing-bytes", binary_tensor(), FLOATS + b"\0" * 4, "4 bytes of binary data follow the last tensor"),
    bin_case("bin-size-shape-mismatch", binary_tensor(252), FLOATS[:252], "tensor 'x' has 252 bytes of data; shape [1, 64] of FP32 needs 256", 422),
    bin_case("bin-nan", binary_tensor(), NAN, "input 'x' at index [0, 0] is a missing value (null or NaN); this model takes finite numbers only", 422),
    bin_case("bin-infinity", binary_tensor(), INF, "input 'x' must be finite; found infinity at index [0, 0]", 422),
    bin_case("bin-bytes-length-lies", binary_tensor(8, datatype="BYTES"), b"\xff\xff\xff\x7f1234", "tensor 'x' BYTES element is longer than the data left", 422),
    bin_case("bin-bytes-truncated-prefix", binary_tensor(3, datatype="BYTES"), b"\x01\x00\x00", "tensor 'x' BYTES data is truncated (length prefix)", 422),
]

ROUTING = [
    Bad("unknown-model-simple", "POST", "/models/no-such-model/predict", doc({"inputs": [ROW]}), 404, "no route for POST /models/no-such-model/predict"),
    Bad("unknown-model-v2", "POST", "/v2/models/no-such-model/infer", infer(tensor()), 404, "no route for POST /v2/models/no-such-model/infer"),
    Bad("unknown-version", "POST", f"/v2/models/{MODEL}/versions/7/infer", infer(tensor()), 404, f"version '7' of model '{MODEL}' not found"),
    # granian decodes the path before routing: the encoded slashes separate segments, no route.
    Bad("version-traversal-encoded", "POST", f"/v2/models/{MODEL}/versions/..%2F..%2Fmodels/infer", infer(tensor()), 404, f"no route for POST /v2/models/{MODEL}/versions/../../models/infer"),
    Bad("version-dotdot-ready", "GET", f"/v2/models/{MODEL}/versions/../ready", error="invalid version '..'"),
    Bad("version-hidden", "GET", f"/v2/models/{MODEL}/versions/.hidden", error="invalid version '.hidden'"),
]

CONTROL = [
    Bad("control-invalid-json", "PUT", ALIAS, b'{"version": "1"', 400, "invalid request: body is not valid JSON at character 15", JSON_TYPE),
    Bad("control-version-not-string", "PUT", ALIAS, doc({"version": 1}), 422, "invalid request: version: Input should be a valid string", JSON_TYPE),
    Bad("control-missing-field", "PUT", ALIAS, doc({}), 422, "invalid request: body: Value error, give either version (and optionally weight) or weights", JSON_TYPE),
    Bad("control-unknown-field", "PUT", ALIAS, doc({"version": "1", "by": "me"}), 422, "invalid request: by: Extra inputs are not permitted", JSON_TYPE),
    Bad("control-array-body", "PUT", ALIAS, b"[]", 422, "invalid request: body: Input should be a valid dictionary", JSON_TYPE),
    Bad("control-text-plain", "PUT", ALIAS, doc({"version": "1"}), 415, "send the body as JSON with 'Content-Type: application/json' ('text/plain')", {"content-type": "text/plain"}),
    Bad("control-no-content-type", "PUT", ALIAS, doc({"version": "1"}), 415, "send the body as JSON with 'Content-Type: application/json' (no Content-Type)", {}),
    Bad("control-deeply-nested", "PUT", ALIAS, b'{"version": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "invalid request: body is not valid JSON: nested too deeply", JSON_TYPE),
    Bad("control-version-traversal", "PUT", ALIAS, doc({"version": "../../x"}), 400, "invalid version '../../x': use 1-64 characters", JSON_TYPE),
    Bad("control-missing-version", "PUT", ALIAS, doc({"version": "9"}), 404, f"version '9' of model '{MODEL}' not found", JSON_TYPE),
    Bad("control-bad-alias", "PUT", f"/control/models/{MODEL}/aliases/Prod!", doc({"version": "1"}), 400, "invalid alias 'Prod!'", JSON_TYPE),
    Bad("control-bad-model", "GET", "/control/models/Digits", error="invalid model name 'Digits'"),
    Bad("control-unknown-model", "GET", "/control/models/nope", status=404, error="model 'nope' not found"),
    Bad("control-version-dotdot", "GET", f"/control/models/{MODEL}/versions/%2e%2e", error="invalid version '..'"),
    Bad("control-rollback-unknown-alias", "POST", f"/control/models/{MODEL}/aliases/canary/rollback", status=404, error=f"alias 'canary' of model '{MODEL}' not found"),
    Bad("control-job-traversal", "PUT", f"{JOBS}/..%2F..%2Fmodels%2Fx.csv", b"x_0\n1\n", 400, "invalid job file name '../../models/x.csv'"),
    Bad("control-job-format", "PUT", f"{JOBS}/data.exe", b"x_0\n1\n", 400, f"batch/{MODEL}/input/data.exe: unsupported input format '.exe'"),
    Bad("control-job-empty", "PUT", f"{JOBS}/data.csv", error="the request body is empty"),
    Bad("control-job-source-outside-uploads", "POST", JOBS, doc({"source": f"models/{MODEL}/versions/1/model.onnx"}), 400, f"source 'models/{MODEL}/versions/1/model.onnx' must be a store key under 'uploads/'", JSON_TYPE),
    Bad("control-job-source-traversal", "POST", JOBS, doc({"source": "uploads/a.csv", "file": "../../x.csv"}), 400, "invalid job file name '../../x.csv'", JSON_TYPE),
    Bad("control-job-unknown", "GET", f"{JOBS}/none.csv", status=404, error=f"no batch job 'none.csv' for model '{MODEL}'"),
]
# fmt: on

CASES: list[Bad] = [*SIMPLE, *OIP_JSON, *OIP_BINARY, *ROUTING, *CONTROL]
