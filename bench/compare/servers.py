"""The servers compared: how to start each on one model and port, what to send it, how to read it.

Every server runs with its documented single-process defaults (workers=1), on loopback, with
its output going to a log file in the run's work directory.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.compare.workloads import ROOT, Workload
from bench.peer_envs import PEERS

PROJECT_PYTHON = Path(sys.executable)


@dataclass(frozen=True)
class Launch:
    """A server process to start: argv, extra environment, and the request that proves it works."""

    argv: list[str]
    env: dict[str, str]
    path: str
    body: bytes


class Server:
    """One server kind; subclasses say how to launch it and how to read its answer."""

    key = ""
    title = ""
    peer: str | None = None  # the .venv-peers/<peer> it runs in; None: the project's venv

    def launch(self, w: Workload, python: Path, ports: list[int], work: Path) -> Launch:
        raise NotImplementedError

    def answer(self, doc: Any, w: Workload) -> np.ndarray:
        """The model's first output from a parsed JSON response."""
        raise NotImplementedError


def _json(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


class AiaasServe(Server):
    key, title = "aiaas", "aiaas serve"

    def launch(self, w: Workload, python: Path, ports: list[int], work: Path) -> Launch:
        argv = [str(python), "-m", "infra.cli.main", "serve", "--port", str(ports[0])]
        # A fresh download cache per start: a cold Lambda container has an empty /tmp too.
        env = {
            "AIAAS_STORE": str(work / "store"),
            "AIAAS_CACHE_DIR": str(work / f"cache-{ports[0]}"),
        }
        body = _json({"inputs": w.row.tolist()})
        return Launch([*argv, "--models", w.model], env, f"/models/{w.model}/predict", body)

    def answer(self, doc: Any, w: Workload) -> np.ndarray:
        return np.asarray(next(iter(doc["outputs"].values())))


class FastApiPeer(Server):
    key, title = "fastapi", "FastAPI + uvicorn"

    def launch(self, w: Workload, python: Path, ports: list[int], work: Path) -> Launch:
        argv = [str(python), "-m", "bench.peers.fastapi_server", str(w.onnx), str(ports[0])]
        return Launch(argv, {}, "/predict", _json({"inputs": w.row.tolist()}))

    def answer(self, doc: Any, w: Workload) -> np.ndarray:
        return np.asarray(next(iter(doc.values())))


class KServePeer(Server):
    key, title, peer = "kserve", "KServe", "kserve"

    def launch(self, w: Workload, python: Path, ports: list[int], work: Path) -> Launch:
        argv = [
            str(python),
            "-m",
            "bench.peers.kserve_server",
            "--model_name",
            w.model,
            "--model_path",
            str(w.onnx),
            "--http_port",
            str(ports[0]),
            "--grpc_port",
            str(ports[1]),
        ]
        body = _json({"instances": w.row.tolist()})
        return Launch(argv, {}, f"/v1/models/{w.model}:predict", body)

    def answer(self, doc: Any, w: Workload) -> np.ndarray:
        return np.asarray(doc["predictions"])


class MLServerPeer(Server):
    key, title, peer = "mlserver", "MLServer", "mlserver"

    def launch(self, w: Workload, python: Path, ports: list[int], work: Path) -> Launch:
        folder = work / f"mlserver-{ports[0]}"
        (folder / w.model).mkdir(parents=True, exist_ok=True)
        settings = {"http_port": ports[0], "grpc_port": ports[1], "metrics_port": ports[2]}
        (folder / "settings.json").write_text(json.dumps(settings))
        model = {
            "name": w.model,
            "implementation": "bench.peers.mlserver_runtime.OnnxRuntime",
            "parameters": {"uri": str(w.onnx)},
        }
        (folder / w.model / "model-settings.json").write_text(json.dumps(model))
        tensor = {
            "name": w.input_name,
            "shape": list(w.row.shape),
            "datatype": w.datatype,
            "data": w.row.ravel().tolist(),
        }
        argv = [str(python.parent / "mlserver"), "start", str(folder)]
        return Launch(argv, {}, f"/v2/models/{w.model}/infer", _json({"inputs": [tensor]}))

    def answer(self, doc: Any, w: Workload) -> np.ndarray:
        out = doc["outputs"][0]
        return np.asarray(out["data"]).reshape(out["shape"])


class BentoMLPeer(Server):
    key, title, peer = "bentoml", "BentoML", "bentoml"

    def launch(self, w: Workload, python: Path, ports: list[int], work: Path) -> Launch:
        argv = [
            str(python.parent / "bentoml"),
            "serve",
            "bench.peers.bentoml_service:OnnxService",
            "--host",
            "127.0.0.1",
            "--port",
            str(ports[0]),
        ]
        env = {
            "BENCH_MODEL_PATH": str(w.onnx),
            "BENTOML_HOME": str(work / "bentoml-home"),
            "BENTOML_DO_NOT_TRACK": "true",  # no usage reports from a benchmark
        }
        return Launch(argv, env, "/predict", _json({"inputs": w.row.tolist()}))

    def answer(self, doc: Any, w: Workload) -> np.ndarray:
        return np.asarray(doc)


SERVERS: dict[str, Server] = {
    s.key: s for s in (AiaasServe(), FastApiPeer(), KServePeer(), MLServerPeer(), BentoMLPeer())
}
assert {s.peer for s in SERVERS.values()} - {None} <= set(PEERS)


def base_env() -> dict[str, str]:
    """What every server process gets on top of the harness's environment."""
    return {"PYTHONPATH": str(ROOT), "POWERTOOLS_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
