"""How a text model's tokenizer should run in serving: ours, Hugging Face `tokenizers`, or in-graph.

    python -m bench.tokenizers [--runs 3] [--repeat 2000]

Each mechanism, in fresh processes (`--runs` of them), on the bundled intents data:
- import: seconds to import it, on top of numpy + onnxruntime (which serving has anyway);
- load: seconds to get a ready tokenizer from what the artifact carries (ours: the vocabulary
  embedded in the ONNX file's metadata, read by the session serving needs anyway; `tokenizers`:
  an equivalent tokenizer.json; onnxruntime-extensions: registering its custom-op library in a
  session of a lower + regex split + vocabulary lookup graph);
- per request: median microseconds to turn 1 and 32 texts into ids (in-graph: without padding,
  so a lower bound of what a full in-graph tokenizer costs).
Ours and `tokenizers` are also checked to give the same ids. A package that is not installed
is reported as such (neither is a dependency of aiaas).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.args import count

MECHANISMS = ("ours", "hf-tokenizers", "ort-extensions")

CHILD = r"""
import json, sys, time, statistics
import numpy as np, onnxruntime as ort
mechanism, model, hf_json, texts_file, repeat = sys.argv[1:6]
texts = json.loads(open(texts_file).read())
t0 = time.perf_counter()
if mechanism == "ours":
    from functions.runtime.tokenizer import METADATA_KEY, Vocabulary
elif mechanism == "hf-tokenizers":
    import tokenizers
else:
    import onnxruntime_extensions
t1 = time.perf_counter()
if mechanism == "ours":
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    t1b = time.perf_counter()  # the model's own session is not the tokenizer's cost
    vocab = Vocabulary.from_json(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    encode = lambda batch: vocab.encode(batch)
    load = time.perf_counter() - t1b
elif mechanism == "hf-tokenizers":
    tok = tokenizers.Tokenizer.from_str(open(hf_json).read())
    encode = lambda batch: np.array([e.ids for e in tok.encode_batch(batch)], dtype=np.int64)
    load = time.perf_counter() - t1
else:
    options = ort.SessionOptions()
    options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
    graph = ort.InferenceSession(hf_json, options, providers=["CPUExecutionProvider"])
    encode = lambda batch: graph.run(None, {"text": np.array(batch, dtype=object)})
    load = time.perf_counter() - t1
per = {}
for size in (1, 32):
    batch = texts[:size]
    encode(batch)
    samples = []
    for _ in range(int(repeat)):
        s = time.perf_counter(); encode(batch); samples.append(time.perf_counter() - s)
    per[size] = statistics.median(samples) * 1e6
ids = encode(texts).tolist() if mechanism != "ort-extensions" else None
print(json.dumps({"import_s": t1 - t0, "load_s": load, "us_1": per[1], "us_32": per[32], "ids": ids}))
"""


def hf_tokenizer_json(vocab: dict[str, Any]) -> str:
    """A `tokenizers` tokenizer.json with our rule: lowercase, split on non-word runs, WordLevel."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    tok = Tokenizer(
        models.WordLevel({t: i for i, t in enumerate(vocab["tokens"])}, unk_token="<unk>")  # noqa: S106
    )
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[^a-z0-9']+"), behavior="removed")
    tok.enable_truncation(vocab["max_length"])
    tok.enable_padding(pad_id=0, pad_token="<pad>")  # noqa: S106 - a token, not a password
    return str(tok.to_str())


def in_graph_model(vocab: dict[str, Any], path: Path) -> None:
    """text [N] -> StringLower -> StringRegexSplitWithOffsets -> LabelEncoder ids (no padding)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    contrib = "ai.onnx.contrib"
    nodes = [
        helper.make_node("StringLower", ["text"], ["lower"], domain=contrib),
        helper.make_node(
            "StringRegexSplitWithOffsets",
            ["lower", "pattern", "keep"],
            ["words", "begins", "ends", "lengths"],
            domain=contrib,
        ),
        helper.make_node(
            "LabelEncoder",
            ["words"],
            ["ids"],
            domain="ai.onnx.ml",
            keys_strings=vocab["tokens"],
            values_int64s=list(range(len(vocab["tokens"]))),
            default_int64=1,
        ),
    ]
    consts = [
        numpy_helper.from_array(np.array("[^a-z0-9']+", dtype=object), "pattern"),
        numpy_helper.from_array(np.array("", dtype=object), "keep"),
    ]
    graph = helper.make_graph(
        nodes,
        "tokenize",
        [helper.make_tensor_value_info("text", TensorProto.STRING, [None])],
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("lengths", TensorProto.INT64, [None]),
        ],
        initializer=consts,
    )
    model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", 17),
            helper.make_opsetid("ai.onnx.ml", 3),
            helper.make_opsetid(contrib, 1),
        ],
    )
    save(model, str(path))


def prepare(folder: Path) -> tuple[Path, dict[str, Path]]:
    """A tiny text model carrying its vocabulary, the intents texts, and each rival's file."""
    import csv

    from functions.runtime.tokenizer import embed
    from tests import onnx_factory
    from training.text import build_vocabulary

    with Path("training/data/intents.csv").open() as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    vocab = build_vocabulary(texts, min_count=1, max_length=32)
    model = onnx_factory.identity(folder / "model.onnx")
    embed(str(model), vocab)
    (folder / "texts.json").write_text(json.dumps(texts[:64]))
    files: dict[str, Path] = {"ours": model}
    try:
        (folder / "tokenizer.json").write_text(hf_tokenizer_json(vocab.to_json()))
        files["hf-tokenizers"] = folder / "tokenizer.json"
    except ImportError:
        pass
    try:
        import onnxruntime_extensions  # noqa: F401

        in_graph_model(vocab.to_json(), folder / "tokenize.onnx")
        files["ort-extensions"] = folder / "tokenize.onnx"
    except ImportError:
        pass
    return model, files


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=count, default=3)
    parser.add_argument("--repeat", type=count, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, files = prepare(folder)
        results: dict[str, list[dict[str, Any]]] = {}
        for mechanism in MECHANISMS:
            if mechanism not in files:
                print(f"{mechanism:15s} not installed")
                continue
            argv = [str(model), str(files[mechanism]), str(folder / "texts.json")]
            results[mechanism] = [
                json.loads(
                    subprocess.run(
                        [sys.executable, "-c", CHILD, mechanism, *argv, str(args.repeat)],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                )
                for _ in range(args.runs)
            ]
    report(results)


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    def span(values: list[float], scale: float, unit: str) -> str:
        low, high = min(values) * scale, max(values) * scale
        return f"{statistics.median(values) * scale:8.2f} {unit} [{low:.2f}-{high:.2f}]"

    print(f"{'mechanism':15s} {'import':>24s} {'load':>24s} {'1 text':>24s} {'32 texts':>24s}")
    for name, runs in results.items():
        cells = [
            span([r["import_s"] for r in runs], 1e3, "ms"),
            span([r["load_s"] for r in runs], 1e3, "ms"),
            span([r["us_1"] for r in runs], 1, "us"),
            span([r["us_32"] for r in runs], 1, "us"),
        ]
        print(f"{name:15s} " + " ".join(f"{c:>24s}" for c in cells))
    if "ours" in results and "hf-tokenizers" in results:
        same = results["ours"][0]["ids"] == results["hf-tokenizers"][0]["ids"]
        print(f"ours and tokenizers give the same ids on the intents texts: {same}")


if __name__ == "__main__":
    main()
