"""Served predict of short texts for a tokenizer.json with a FIXED padding length.

    python -m bench.text_fixed_padding [--seconds 2] [--runs 3]

Two publishes of the same model (tests/hf_transformer.py at d 64, 128 positions, a dynamic
sequence axis, `--max-length 128`) through `aiaas publish --tokenizer`: `fixed128`, whose
tokenizer.json pads to `{"Fixed": 128}` (as many sentence-transformers / MiniLM exports save),
and `longest`, whose file says no padding (right-padded to the longest row). Texts of 8 tokens,
one and a batch of 32, as simple JSON through the predict handler's service; the two models in
turn, `--runs` times; medians in microseconds. Before `pad_to_longest` the first paid for all
128 positions; a model published now pads to the longest row where publish saw it mask padding.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.scratch import scratch_dir
from bench.text_predict_latency import event, service, texts_of
from tests import hf_transformer

FIXED, LONGEST = "fixed128", "longest"


def publish(root: Path, name: str) -> dict[str, Any]:
    from tokenizers import Tokenizer

    from infra.cli.main import main as aiaas

    model = hf_transformer.transformer(root / f"{name}.onnx", d=64, positions=128)
    path = hf_transformer.tokenizer_json(root / f"{name}.json")
    if name == FIXED:
        own = Tokenizer.from_file(str(path))
        own.enable_padding(pad_id=0, pad_token="[PAD]", length=128)  # noqa: S106 (a token, not a password)
        own.save(str(path))
    argv = ["--store", str(root / "store"), "publish", str(model), "--name", name]
    argv += ["--tokenizer", str(path), "--max-length", "128"]
    with contextlib.redirect_stdout(io.StringIO()):
        if aiaas([*argv, "--labels", ",".join(hf_transformer.LABELS)]):
            raise SystemExit(f"publish of {name} failed")
    manifest = root / "store/models" / name / "versions/1/manifest.json"
    pre: dict[str, Any] = json.loads(manifest.read_text())["preprocessing"]
    return pre


def median_us(svc: Any, ev: dict[str, Any], seconds: float) -> float:
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        began = time.perf_counter_ns()
        answer = svc.handle(ev)
        samples.append(time.perf_counter_ns() - began)
    assert answer["statusCode"] == 200, answer
    return statistics.median(samples) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="about this long a case")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = scratch_dir("aiaas-fixed-padding-")
    pre = {name: publish(root, name) for name in (FIXED, LONGEST)}
    print(f"{FIXED}: padding '{pre[FIXED]['padding']}', pad_to_longest "
          f"{pre[FIXED].get('pad_to_longest', False)}")  # fmt: skip
    services = {name: service(root, name) for name in (FIXED, LONGEST)}
    for size in (1, 32):
        body = json.dumps({"inputs": texts_of(hf_transformer.WORDS, 6, size)}).encode()
        medians: dict[str, list[float]] = {name: [] for name in services}
        for _ in range(args.runs):
            for name, svc in services.items():
                ev = event(f"/models/{name}/predict", body, {"content-type": "application/json"})
                medians[name].append(median_us(svc, ev, args.seconds))
        for name, got in medians.items():
            print(f"8 tokens, {size:2d} text(s), {name:8s}: {min(got):7.0f}-{max(got):7.0f} us")


if __name__ == "__main__":
    main()
