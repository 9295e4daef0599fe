"""`make demo`: train the bundled demo models, publish them, serve the API and call it.

    python -m infra.demo [--port 8080] [--keep-serving] [--skip-training]

Everything runs locally on the embedded store (`AIAAS_STORE`, default the repository's
`.aiaas/store` whatever the working directory, as `make demo` runs it), through the same CLI a
user would type.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "training" / "specs"


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def aiaas(*args: str) -> None:
    command = [sys.executable, "-m", "infra.cli.main", *args]
    print("$ aiaas " + " ".join(args), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def show(
    title: str, method: str, path: str, status: int, body: bytes, shown: str | None = None
) -> None:
    print(f"\n{title}\n  {method} {path} -> {status}")
    text = shown if shown is not None else body.decode("utf-8", "replace")
    print("  " + (text if len(text) < 600 else text[:600] + " ..."))


def wait_ready(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if call(base, "GET", "/v2/health/live")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("aiaas serve did not come up")


def sample_row(features: int) -> list[float]:
    """A real digit from the bundled data when there is one, else a fixed pattern."""
    for candidate in sorted((ROOT / "training").rglob("digits*.npz")):
        import numpy as np

        with np.load(candidate, allow_pickle=False) as data:
            key = "x" if "x" in data else data.files[0]
            return [float(v) for v in np.asarray(data[key][0]).reshape(-1)[:features]]
    return [float((i * 7) % 17) for i in range(features)]


def demo_calls(base: str, model: str, features: int) -> None:
    row = sample_row(features)
    headers = {"content-type": "application/json"}
    body = json.dumps({"inputs": [row]}).encode()
    status, _, out = call(base, "POST", f"/models/{model}/predict?top_k=3", body, headers)
    show(
        "Simple JSON form (top 3 classes)", "POST", f"/models/{model}/predict?top_k=3", status, out
    )

    status, _, out = call(base, "GET", f"/v2/models/{model}")
    show("Open Inference Protocol v2: model metadata", "GET", f"/v2/models/{model}", status, out)

    v2 = {"inputs": [{"name": "x", "shape": [1, features], "datatype": "FP32", "data": row}]}
    status, _, out = call(
        base, "POST", f"/v2/models/{model}/infer", json.dumps(v2).encode(), headers
    )
    show(
        "Open Inference Protocol v2: JSON tensors", "POST", f"/v2/models/{model}/infer", status, out
    )

    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, features],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 4 * features},
                }
            ],
            "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
        }
    ).encode()
    payload = header + struct.pack(f"<{features}f", *row)
    binary_headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }
    status, got, out = call(base, "POST", f"/v2/models/{model}/infer", payload, binary_headers)
    length = int(
        {k.lower(): v for k, v in got.items()}.get("inference-header-content-length", len(out))
    )
    values = struct.unpack(f"<{(len(out) - length) // 4}f", out[length:])
    shown = f"{out[:length].decode()} + {len(out) - length} bytes = {[round(v, 3) for v in values]}"
    show(
        "Open Inference Protocol v2: binary tensors",
        "POST",
        f"/v2/models/{model}/infer",
        status,
        out,
        shown,
    )

    bad = json.dumps({"inputs": [[1.0, 2.0, 3.0]]}).encode()
    status, _, out = call(base, "POST", f"/models/{model}/predict", bad, headers)
    show("A bad request gets a clear 4xx", "POST", f"/models/{model}/predict", status, out)


def demo_explain(base: str) -> None:
    """Why iris-logistic says what it says: attributions per feature (Kernel SHAP)."""
    record = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
    body = json.dumps({"instances": [record]}).encode()
    headers = {"content-type": "application/json"}
    status, _, out = call(base, "POST", "/models/iris-logistic/explain", body, headers)
    if status != 200:
        show("Explain", "POST", "/models/iris-logistic/explain", status, out)
        return
    doc = json.loads(out)
    row = doc["explanations"][0]
    column = doc["outputs"].index(row["label"])
    parts = ", ".join(
        f"{name} {values[column]:+.3f}"
        for name, values in zip(doc["features"], row["attributions"], strict=True)
    )
    shown = (
        f"{row['label']} at {row['prediction'][column]:.3f} (base {row['base_value'][column]:.3f})"
        f" because: {parts}"
    )
    show(
        "Why? Feature attributions (Kernel SHAP)",
        "POST",
        "/models/iris-logistic/explain",
        status,
        out,
        shown,
    )


TEXTS = ["where is my parcel", "I was charged twice this month"]


def demo_text(base: str) -> None:
    """intents-transformer answers raw text: it carries its own tokenizer."""
    body = json.dumps({"inputs": TEXTS}).encode()
    headers = {"content-type": "application/json"}
    path = "/models/intents-transformer/predict"
    status, _, out = call(base, "POST", path, body, headers)
    shown = None
    if status == 200:
        rows = json.loads(out)["predictions"]
        shown = "; ".join(
            f"{text!r} -> {row['label']} ({row['score']:.3f})"
            for text, row in zip(TEXTS, rows, strict=True)
        )
    show("Raw text in, labels out (the model tokenizes)", "POST", path, status, out, shown)


def served_models(base: str) -> list[dict[str, Any]]:
    found = []
    for name in _store_models():
        status, _, out = call(base, "GET", f"/v2/models/{name}")
        if status == 200:
            found.append(json.loads(out))
    return found


def demo_batch_event() -> None:
    """The golden S3 -> SQS event (events/local/) through the batch function, on the local store."""
    from functions.runtime.store import open_store

    store = open_store(os.environ["AIAAS_STORE"])
    key = "batch/digits-mlp/input/golden.csv"
    store.put_bytes(key, (ROOT / "events" / "local" / "golden.csv").read_bytes())
    print(f"put {key} (8 rows) into the store, as an upload to the bucket would")
    aiaas("invoke", "BatchFunction", "-e", "events/local/batch_sqs.json")
    summary = json.loads(store.get_bytes("batch/digits-mlp/output/golden.csv.summary.json"))
    scored = store.get_bytes("batch/digits-mlp/output/golden.csv").decode().splitlines()
    print(f"summary: {summary['status']}, {summary['scored_rows']} rows scored")
    for line in scored[1:4]:
        cells = line.split(",")
        print(f"  {cells[0]}: digit {cells[1]} -> predicted {cells[-2]} (score {cells[-1][:6]})")


def _store_models() -> list[str]:
    from functions.runtime.registry import Registry

    return Registry().models()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--keep-serving", action="store_true", help="leave the API running at the end"
    )
    parser.add_argument(
        "--skip-training", action="store_true", help="serve what the store already has"
    )
    args = parser.parse_args()
    os.environ.setdefault("AIAAS_STORE", str(ROOT / ".aiaas" / "store"))
    banner(f"store: {os.environ['AIAAS_STORE']}")
    if not args.skip_training:
        specs = sorted(SPECS.glob("*.yaml")) if SPECS.is_dir() else []
        for spec in specs:
            banner(f"train {spec.name}")
            aiaas("train", str(spec.relative_to(ROOT)), "--publish", "--alias", "production")
    banner("published models")
    aiaas("models")
    if "digits-mlp" in _store_models():
        aiaas("show", "digits-mlp")
        banner("batch: the golden S3 -> SQS event through BatchFunction")
        demo_batch_event()
    port = free_port(args.port)
    base = f"http://127.0.0.1:{port}"
    banner(f"aiaas serve on {base}")
    server = subprocess.Popen(
        [sys.executable, "-m", "infra.cli.main", "serve", "--port", str(port)], cwd=ROOT
    )
    try:
        wait_ready(base)
        models = served_models(base)
        numeric = [m for m in models if "text" not in m.get("parameters", {})]
        preferred = next(
            (m for m in numeric if m["name"] == "digits-mlp"), numeric[0] if numeric else None
        )
        text_model = any(m["name"] == "intents-transformer" for m in models)
        if preferred is None and not text_model:
            print("no model to call: publish one first")
            return 1
        if preferred is not None:
            features = int(preferred["inputs"][0]["shape"][-1])
            banner(f"calling {preferred['name']} over HTTP")
            demo_calls(base, preferred["name"], features)
        if any(m["name"] == "iris-logistic" for m in models):
            demo_explain(base)
        if text_model:
            demo_text(base)
        others = [m["name"] for m in models if preferred is None or m is not preferred]
        if others:
            print(
                f"\nAlso served: {', '.join(others)} (see `aiaas show NAME` for each one's inputs)"
            )
        if args.keep_serving:
            print(f"\nServing on {base}; Ctrl-C to stop.")
            server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)
    banner("done")
    print("Next: `aiaas show digits-mlp` for the model card, `make test` for the suite.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
