"""Warm latency of raw text through the predict handler, as ratios to floors measured in this run.

    python -m bench.text_predict_latency [--repeat 3000] [--seconds 4] [--epochs 1]

Two text models, each in a local store, each served by the predict handler's service (what
`functions.predict.handler` builds from the environment: one per model here):
- `user-bert`: a user's own transformer published with `aiaas publish --tokenizer
  tokenizer.json --max-length 128` (tests/hf_transformer.py at d 64, 128 positions: BERT-style
  WordPiece tokenizer.json, input_ids + attention_mask + token_type_ids, one attention layer);
- `intents-transformer`: the demo's spec (training/specs/intents-transformer.yaml, our own
  tokenizer embedded; d_model 64, 2 layers, reads at most 32 tokens) trained for `--epochs`
  (latency does not depend on the weights).
For each, a text of 8 tokens and one of 128 (user-bert: [CLS] + 126 words + [SEP];
intents-transformer: 128 words, of which it reads the first 32), alone and as a batch of 32
texts (rotations of the same words, so rows differ), sent as simple JSON `{"inputs": [...]}`,
OIP JSON (a BYTES tensor) and OIP binary (the body tritonclient builds, unchanged). Floors, same
process, same rounds: a bare `session.run` on the ids; and the tokenizer's own library +
`session.run`, as a user's script would do it (`tokenizers`: encode_batch_fast with truncation
and padding, np.asarray; ours: `Vocabulary.encode`), each with onnxruntime's default session
options and with serving's. One case at a time, its calls in turn each round (up to `--repeat`
rounds or about `--seconds`); medians.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import functools
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from bench.args import count, wait
from tests import hf_transformer

BERT = "user-bert"
INTENTS = "intents-transformer"
BARE = "floor: session.run on ids"
SCRIPT = "floor: tokenizer library + session.run"
INTENT_TEXT = (
    "i was charged twice for the renewal and the app crashes when i open billing "
    "my parcel never arrived where is it now please help me reset my password"
)


def event(path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    binary = headers.get("content-type") == "application/octet-stream"
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": path}, "requestId": "bench"},
        "body": base64.b64encode(body).decode() if binary else body.decode(),
        "isBase64Encoded": binary,
    }


def events(name: str, ids_input: str, texts: list[str]) -> dict[str, dict[str, Any]]:
    """The three ways a client sends `texts`: simple JSON, OIP JSON, OIP binary (tritonclient)."""
    import tritonclient.http as triton

    js = {"content-type": "application/json"}
    simple = json.dumps({"inputs": texts}).encode()
    oip = {
        "inputs": [{"name": ids_input, "datatype": "BYTES", "shape": [len(texts)], "data": texts}]
    }
    tensor = triton.InferInput(ids_input, [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))
    body, head = triton.InferenceServerClient.generate_request_body([tensor])
    binary = {"content-type": "application/octet-stream"}
    if head is not None:
        binary["inference-header-content-length"] = str(head)
    return {
        "simple JSON": event(f"/models/{name}/predict", simple, js),
        "OIP JSON": event(f"/v2/models/{name}/infer", json.dumps(oip).encode(), js),
        "OIP binary": event(f"/v2/models/{name}/infer", body, binary),
    }


@dataclasses.dataclass
class Case:
    """One model, one text length, one batch size: what is timed, by name."""

    title: str
    calls: dict[str, Callable[[], object]]
    samples: dict[str, list[int]] = dataclasses.field(default_factory=dict)


def publish_bert(root: Path) -> None:
    from infra.cli.main import main as aiaas

    model = hf_transformer.transformer(root / "bert.onnx", d=64, positions=128)
    tokenizer = hf_transformer.tokenizer_json(root / "tokenizer.json")
    argv = ["--store", str(root / "store"), "publish", str(model), "--name", BERT]
    argv += ["--tokenizer", str(tokenizer), "--max-length", "128"]
    with contextlib.redirect_stdout(io.StringIO()):
        if aiaas([*argv, "--labels", ",".join(hf_transformer.LABELS)]):
            raise SystemExit("publish of user-bert failed")


def train_intents(root: Path, epochs: int) -> None:
    from functions.runtime.registry import Registry
    from functions.runtime.store import LocalStore
    from training.job import run_job
    from training.spec import load_spec

    spec = dataclasses.replace(load_spec(Path("training/specs/intents-transformer.yaml")))
    spec = dataclasses.replace(spec, epochs=epochs)
    registry = Registry(LocalStore(root / "store"))
    with contextlib.redirect_stdout(io.StringIO()):
        run_job(spec, registry, root / "run", publish_model=True, progress=False)


def service(root: Path, name: str) -> Any:
    from functions.predict.service import service_from_env

    env = {
        "AIAAS_STORE": str(root / "store"),
        "AIAAS_CACHE_DIR": str(root / "cache"),
        "AIAAS_MODEL": name,
        "AIAAS_DISABLE_METRICS": "1",
        "AIAAS_DRIFT_FLUSH_SECONDS": "0",
    }
    svc = service_from_env(env)
    svc.warm()
    return svc


def texts_of(words: list[str], count: int, size: int) -> list[str]:
    """`size` texts of `count` words each, rotations of `words` (so rows differ, same length)."""
    pool = words * (count // len(words) + 2)
    return [" ".join(pool[i % len(words) : i % len(words) + count]) for i in range(size)]


def bert_cases(root: Path) -> list[Case]:
    from tokenizers import Tokenizer

    svc = service(root, BERT)
    sessions = floor_sessions(root / "bert.onnx")
    tok = Tokenizer.from_file(str(root / "tokenizer.json"))
    tok.enable_truncation(128)
    tok.enable_padding(pad_id=0)

    def user_script(session: ort.InferenceSession, texts: list[str]) -> object:
        enc = tok.encode_batch_fast(texts)
        feeds = {
            "input_ids": np.asarray([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in enc], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids for e in enc], dtype=np.int64),
        }
        return session.run(None, feeds)

    cases = []
    for tokens, size in ((8, 1), (8, 32), (128, 1), (128, 32)):
        texts = texts_of(hf_transformer.WORDS, tokens - 2, size)
        enc = tok.encode_batch_fast(texts)
        assert all(len(e.ids) == tokens for e in enc), [len(e.ids) for e in enc]
        ids = {k: np.asarray([getattr(e, a) for e in enc], dtype=np.int64) for k, a in
               (("input_ids", "ids"), ("attention_mask", "attention_mask"),
                ("token_type_ids", "type_ids"))}  # fmt: skip
        calls = floors(sessions, feeding(ids), partial_run(user_script, texts))
        cases.append(case(f"{BERT}, {tokens} tokens, {size} text(s)", svc, BERT, "input_ids",
                          texts, calls))  # fmt: skip
    return cases


def intents_cases(root: Path) -> list[Case]:
    from functions.runtime.registry import Registry
    from functions.runtime.store import LocalStore
    from functions.runtime.tokenizer import METADATA_KEY, Vocabulary

    svc = service(root, INTENTS)
    registry = Registry(LocalStore(root / "store"))
    manifest = registry.manifest(INTENTS, "1")
    path = root / "intents.onnx"
    path.write_bytes(registry.store.get_bytes(f"models/{INTENTS}/versions/1/{manifest.file.path}"))
    sessions = floor_sessions(path)
    vocab = Vocabulary.from_json(sessions[0][1].get_modelmeta().custom_metadata_map[METADATA_KEY])
    field = manifest.inputs[0].name
    cases = []
    for words, size in ((8, 1), (8, 32), (128, 1), (128, 32)):
        texts = texts_of(INTENT_TEXT.split(), words, size)
        ids = {field: vocab.encode(texts)}
        encoded = partial_run(lambda s, t: s.run(None, {field: vocab.encode(t)}), texts)
        calls = floors(sessions, feeding(ids), encoded)
        cases.append(case(f"{INTENTS}, {words} words, {size} text(s)", svc, INTENTS, field,
                          texts, calls))  # fmt: skip
    return cases


Sessions = list[tuple[str, ort.InferenceSession]]
Run = Callable[[ort.InferenceSession], object]


def floor_sessions(path: Path) -> Sessions:
    """Bare sessions of the model file: onnxruntime's default options, and serving's."""
    from functions.runtime.model import session_options

    cpu = ["CPUExecutionProvider"]
    ours = session_options(path.stat().st_size)
    return [
        ("default", ort.InferenceSession(str(path), providers=cpu)),
        ("aiaas", ort.InferenceSession(str(path), ours, providers=cpu)),
    ]


def feeding(feed: dict[str, np.ndarray]) -> Run:
    """A bare `session.run` of `feed`."""
    return lambda session: session.run(None, feed)


def partial_run(
    script: Callable[[ort.InferenceSession, list[str]], object], texts: list[str]
) -> Run:
    """`script` on these texts."""
    return lambda session: script(session, texts)


def floors(sessions: Sessions, bare: Run, script: Run) -> dict[str, Callable[[], object]]:
    calls: dict[str, Callable[[], object]] = {}
    for kind, session in sessions:
        calls[f"{BARE}, {kind} options"] = functools.partial(bare, session)
    for kind, session in sessions:
        calls[f"{SCRIPT}, {kind} options"] = functools.partial(script, session)
    return calls


def case(title: str, svc: Any, name: str, field: str, texts: list[str],
         calls: dict[str, Callable[[], object]]) -> Case:  # fmt: skip
    for kind, ev in events(name, field, texts).items():
        answer = svc.handle(ev, None)
        assert answer["statusCode"] == 200, answer
        calls[f"handler, {kind}"] = functools.partial(svc.handle, ev, None)
    return Case(title, calls)


def measure(item: Case, repeat: int, seconds: float) -> int:
    """Time `item`'s calls in rounds, each round every call in turn (drift on a shared machine
    hits them alike): up to `repeat` rounds or about `seconds`; returns the rounds run."""
    began = time.perf_counter()
    for fn in item.calls.values():
        for _ in range(20):
            fn()
    warm = (time.perf_counter() - began) / 20
    rounds = max(30, min(repeat, int(seconds / max(warm, 1e-9))))
    for _ in range(rounds):
        for label, fn in item.calls.items():
            start = time.perf_counter_ns()
            fn()
            item.samples.setdefault(label, []).append(time.perf_counter_ns() - start)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=count, default=3000, help="most rounds a case")
    parser.add_argument("--seconds", type=wait, default=4.0, help="about this long a case")
    parser.add_argument("--epochs", type=count, default=1)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as template.yaml's Globals
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        publish_bert(root)
        train_intents(root, args.epochs)
        cases = bert_cases(root) + intents_cases(root)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the handler's EMF lines)
        rounds = [measure(item, args.repeat, args.seconds) for item in cases]
        sys.stdout = sys.__stdout__
    print(f"medians, each case's calls interleaved; ratios vs the best '{SCRIPT}'")
    for item, done in zip(cases, rounds, strict=True):
        print(f"\n{item.title} ({done} rounds)")
        medians = {k: statistics.median(v) / 1e3 for k, v in item.samples.items()}
        floor = min(value for label, value in medians.items() if label.startswith(SCRIPT))
        for label, value in medians.items():
            print(f"  {label:50} {value:9.1f} us   {value / floor:5.2f}x")


if __name__ == "__main__":
    main()
