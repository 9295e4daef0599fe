"""Explain latency of a user's transformer published with its tokenizer.json, by text length.

    python -m bench.explain_hf_latency [--rounds 5]

Publishes the BERT-style test model (tests/hf_transformer.py at d 64: WordPiece tokenizer.json,
input_ids + attention_mask + token_type_ids, one attention layer, 64 positions) with
`aiaas publish --tokenizer`, then explains one text at a time through the explain data plane
(what `/models/{name}/explain` runs): 8 tokens (every one of its 254 coalitions, exact) and 32
tokens (the default budget, 2,112 coalitions, sampled), each between [CLS] and [SEP]. For scale,
in the same rounds: the floor, one bare `session.run` of as many rows of the 32-token text's
length, and a predict of that text.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench.args import count
from bench.explain_text_latency import explain_timers
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main as aiaas
from tests import hf_transformer

NAME = "user-bert"
SHORT = "where is my parcel please help the app"  # 8 tokens
LONG = " ".join(hf_transformer.WORDS[:32])  # 32 tokens


def publish(root: Path) -> Registry:
    model = hf_transformer.transformer(root / "model.onnx", d=64, positions=64)
    tokenizer = hf_transformer.tokenizer_json(root / "tokenizer.json")
    store = LocalStore(root / "store")
    argv = ["--store", store.uri, "publish", str(model), "--name", NAME, "--tokenizer"]
    with contextlib.redirect_stdout(io.StringIO()):
        code = aiaas([*argv, str(tokenizer), "--labels", ",".join(hf_transformer.LABELS)])
    if code:
        raise SystemExit("publish failed")
    return Registry(store)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=count, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry = publish(root)
        timers = explain_timers(registry, root / "cache", NAME)
        session = ort.InferenceSession(str(root / "model.onnx"), providers=["CPUExecutionProvider"])
        rows = 2 * 32 + 2048 + 2
        floor_feeds = {n: np.ones((rows, 34), dtype=np.int64) for n in hf_transformer.INPUTS}
        floor_feeds["token_type_ids"][:] = 0

        def explain(text: str) -> float:
            took, doc = timers.explain(text)
            assert len(doc["explanations"][0]["tokens"]) in (8, 32), doc["parameters"]
            return took

        def floor() -> float:
            began = time.perf_counter()
            session.run(None, floor_feeds)
            return time.perf_counter() - began

        def predict() -> float:
            return timers.predict("input_ids", LONG)

        explain(SHORT), explain(LONG), floor(), predict()  # warm: loaded, sessions built
        times = np.array(
            [[explain(SHORT), explain(LONG), floor(), predict()] for _ in range(args.rounds)]
        )
    short, long, bare, one = np.median(times, axis=0) * 1e3
    print(f"{NAME} (d 64, 1 layer, tokenizer.json WordPiece), {args.rounds} rounds, medians")
    print(f"  explain  8 tokens, 254 coalitions (exact)        {short:8.1f} ms")
    print(f"  explain 32 tokens, 2,112 coalitions (sampled)    {long:8.1f} ms")
    print(f"  floor: one session.run of {rows:,} x 34-token rows  {bare:8.1f} ms")
    print(f"  predict the 32-token text                        {one:8.1f} ms")


if __name__ == "__main__":
    main()
