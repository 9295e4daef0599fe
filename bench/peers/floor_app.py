"""The floor of Python HTTP serving here: a framework-free app doing orjson + onnxruntime.

python -m bench.peers.floor_app MODEL.onnx PORT {asgi|rsgi}

Served by granian, the server `aiaas serve` runs on, so the ratio of the two is the cost of
aiaas's gateway and handler path alone. `POST /predict` `{"inputs": [...]}` -> `{"<output>": [...]}`;
nothing is validated, logged or routed: no real service would ship it.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson

DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
JSON_HEADERS = [("content-type", "application/json")]


class Model:
    def __init__(self, path: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def answer(self, body: bytes) -> bytes:
        x = np.asarray(orjson.loads(body)["inputs"], dtype=DTYPES[self.input.type])
        outputs = self.session.run(None, {self.input.name: x})
        return orjson.dumps(
            dict(zip(self.outputs, outputs, strict=True)), option=orjson.OPT_SERIALIZE_NUMPY
        )


def asgi(model: Model) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        answer = model.answer(body) if body else b'{"live":true}'
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer})

    return app


def rsgi(model: Model) -> Any:
    async def app(scope: Any, protocol: Any) -> None:
        body = await protocol()
        answer = model.answer(body) if body else b'{"live":true}'
        protocol.response_bytes(200, JSON_HEADERS, answer)

    return app


def main() -> None:
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.mp import MPServer

    path, port, interface = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    factory = {"asgi": asgi, "rsgi": rsgi}[interface]
    server = MPServer(
        target="floor",
        port=port,
        interface=Interfaces.ASGINL if interface == "asgi" else Interfaces.RSGI,
        websockets=False,
        log_level=LogLevels.warning,
    )
    server.serve(target_loader=lambda: factory(Model(path)), wrap_loader=False)


if __name__ == "__main__":
    main()
