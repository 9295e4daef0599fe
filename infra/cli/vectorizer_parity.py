"""Whether a skl2onnx text vectorizer's words, as onnxruntime reads them, are scikit-learn's.

skl2onnx writes a `TfidfVectorizer` / `CountVectorizer`'s own `token_pattern` (any but the
default, which vectorizer_tokens.py speaks of) into onnxruntime's `Tokenizer` as it is, and
onnxruntime reads it with RE2, not Python's `re`: RE2's `\\w`, `\\d` and `\\b` are ASCII, so
`\\b\\w\\w+\\b` reads `café` as `caf` and `naïve` as `na` and `ve`, and the model answered such
texts otherwise than `predict_proba` did, published with success. (A pattern RE2 cannot parse
at all, `(?u)...` or a lookahead, is refused when onnxruntime loads it: load_errors.py.)

So publish runs the graph's Tokenizer on texts and reads the same texts with Python's `re` and
the pattern as scikit-learn does (`re.compile(token_pattern).findall`): on `--data`'s texts a
difference is refused, naming the rows; without `--data`, on a few texts of accented letters,
digits and one-letter words, it is a warning. A pattern Python's `re` cannot compile (RE2's own
`[\\p{L}\\p{N}_]{2,}`, given as skl2onnx's `tokenexp` option) is not scikit-learn's pattern, so
nothing is compared, except the two skl2onnx writes for scikit-learn's default pattern.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelManifest
from infra.cli.vectorizer_tokens import LIKE_SKLEARN, SKL2ONNX_DEFAULT, node_text

SKLEARN_DEFAULT = r"(?u)\b\w\w+\b"  # scikit-learn's token_pattern, which skl2onnx rewrites
PROBES = ("café crème", "naïve über", "rückerstattung bitte", "i need a refund", "x1 y_2 2024",
          "don't stop", "日本語 テキスト", "çà et là")  # fmt: skip
SHOWN = 3  # rows named


@dataclass(frozen=True)
class _Tokenizer:
    source: str  # the value the Tokenizer reads
    tokens: str  # the value it writes
    pattern: str  # its tokenexp (RE2)
    python: re.Pattern[str]  # what scikit-learn read with
    pad: str


def checked_tokens(
    path: Path, producer: str, manifest: ModelManifest, data: Path | None, target: str | None
) -> tuple[str, ...]:
    """Refuses a model whose Tokenizer reads the words of `data`'s texts otherwise than
    scikit-learn read them, naming those rows; a warning where it reads a few made-up texts
    otherwise (none where it agrees, or for any other model)."""
    found = _tokenizers(path, producer)
    if not found:
        return ()
    if data is not None:
        from infra.cli.publish_data import read_data

        rows = read_data(data, manifest, target, labelled=False)
        _refuse_other_tokens(path, found, rows.inputs, rows.lines, data)
    note = _probe_note(
        [t for t in found if t.pattern != SKL2ONNX_DEFAULT]
    )  # else vectorizer_tokens warns
    return (note,) if note else ()


def _probe_note(checked: list[_Tokenizer]) -> str | None:
    """A warning where a Tokenizer splits a few made-up texts otherwise than scikit-learn."""
    import onnxruntime as ort  # publish has it loaded already

    differ: list[str] = []
    for tokenizer in checked:
        session = ort.InferenceSession(_alone(tokenizer), providers=["CPUExecutionProvider"])
        feed = np.array(PROBES, dtype=object).reshape(-1, 1)
        served = session.run(None, {"text": feed})[0].reshape(len(PROBES), -1)
        for text, row in zip(PROBES, served, strict=True):
            own, theirs = _tokens(row, tokenizer.pad), tokenizer.python.findall(text)
            if own != theirs and len(differ) < SHOWN:
                differ.append(f"{text!r} is read as {own}, scikit-learn reads {theirs}")
    if not differ:
        return None
    return (
        f"warning: the text vectorizer's token pattern '{checked[0].pattern}' is read by "
        "onnxruntime's RE2, not Python's re (RE2's \\w, \\d and \\b are ASCII): "
        f"{'; '.join(differ)}, so texts like these are answered otherwise than predict_proba "
        f"answers them; {_advice()}; publish with --data to check your own texts"
    )


def _refuse_other_tokens(
    path: Path,
    found: list[_Tokenizer],
    inputs: Mapping[str, np.ndarray],
    lines: Sequence[int],
    data: Path,
) -> None:
    """A BadRequest naming the rows of `data` whose words a Tokenizer reads otherwise than
    scikit-learn read them (their answers are not `predict_proba`'s)."""
    values = _intermediates(path, found, inputs)
    if values is None:  # rows the graph refuses: scoring names them
        return
    for tokenizer in found:
        texts, tokens = values[tokenizer.source], values[tokenizer.tokens]
        texts = texts.reshape(len(texts), -1)[:, 0] if texts.ndim > 1 else texts
        tokens = tokens.reshape(len(texts), -1)
        differ = []
        for i, (text, row) in enumerate(zip(texts, tokens, strict=True)):
            own, theirs = _tokens(row, tokenizer.pad), tokenizer.python.findall(str(text))
            if own != theirs:
                differ.append((lines[i] if i < len(lines) else i + 1, str(text), own, theirs))
        if differ:
            raise BadRequest(_refusal(data, tokenizer, differ, len(texts)))


def _refusal(
    data: Path, tokenizer: _Tokenizer, differ: list[tuple[int, str, Any, Any]], rows: int
) -> str:
    named = "; ".join(
        f"line {line} {text[:60]!r} is read as {own[:8]}, scikit-learn reads {theirs[:8]}"
        for line, text, own, theirs in differ[:SHOWN]
    )
    return (
        f"--data {data}: the text vectorizer reads the words of {len(differ)} of {rows} rows "
        f"otherwise than scikit-learn does ({named}): its token pattern "
        f"'{tokenizer.pattern}' is read by onnxruntime's RE2, not Python's re, so those rows "
        f"would be answered otherwise than predict_proba answers them; {_advice()}, and publish "
        "again"
    )


def _advice() -> str:
    return (
        "export with skl2onnx's options={id(vectorizer): {'tokenexp': ..., 'locale': "
        "'C.UTF-8'}} giving the pattern in RE2's syntax (Python's \\w is "
        "[\\p{L}\\p{N}_], and RE2's \\b is ASCII: leave it out, a run of those is a whole "
        f"word; scikit-learn's default pattern is {LIKE_SKLEARN})"
    )


def _tokens(row: np.ndarray, pad: str) -> list[str]:
    """One text's tokens from the Tokenizer's padded row."""
    words = [str(w) for w in row]
    while words and words[-1] == pad:
        words.pop()
    return words


def _tokenizers(path: Path, producer: str) -> list[_Tokenizer]:
    """The graph's Tokenizers that read with a pattern Python's re reads as scikit-learn did."""
    if not producer.lower().startswith("skl2onnx"):
        return []
    try:
        import onnx
    except ImportError:  # a base install: nothing read
        return []
    graph = onnx.load(str(path), load_external_data=False).graph
    found = []
    for node in graph.node:
        if node.op_type != "Tokenizer" or not (pattern := node_text(node, "tokenexp")):
            continue
        python = SKLEARN_DEFAULT if pattern in (SKL2ONNX_DEFAULT, LIKE_SKLEARN) else pattern
        try:
            compiled = re.compile(python)
        except re.error:  # RE2's own syntax: not a token_pattern scikit-learn ran
            continue
        pad = node_text(node, "pad_value") or "#"
        found.append(_Tokenizer(node.input[0], node.output[0], pattern, compiled, pad))
    return found


def _alone(tokenizer: _Tokenizer) -> bytes:
    """A graph of the one Tokenizer, reading `text` [N, 1]."""
    from onnx import TensorProto, helper

    node = helper.make_node(
        "Tokenizer", ["text"], ["tokens"], domain="com.microsoft", mark=0, mincharnum=1,
        pad_value=tokenizer.pad, tokenexp=tokenizer.pattern,
    )  # fmt: skip
    graph = helper.make_graph(
        [node], "tokens",
        [helper.make_tensor_value_info("text", TensorProto.STRING, [None, 1])],
        [helper.make_tensor_value_info("tokens", TensorProto.STRING, None)],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    serialized: bytes = helper.make_model(graph, opset_imports=opsets).SerializeToString()
    return serialized


def _intermediates(
    path: Path, found: list[_Tokenizer], inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray] | None:
    """What each Tokenizer reads and writes, running the whole graph on `inputs`."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    names = [n for t in found for n in (t.source, t.tokens)]
    declared = {o.name for o in model.graph.output}
    model.graph.output.extend(
        helper.make_tensor_value_info(n, TensorProto.STRING, None)
        for n in dict.fromkeys(names)
        if n not in declared
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {i.name: _fed(inputs[i.name], i.type) for i in session.get_inputs() if i.name in inputs}
    if len(feed) != len(session.get_inputs()):
        return None
    try:
        values = session.run(list(dict.fromkeys(names)), feed)
    except Exception:  # rows serving refuses, which scoring then names
        return None
    return dict(zip(dict.fromkeys(names), values, strict=True))


_NUMBERS = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


def _fed(values: np.ndarray, kind: str) -> np.ndarray:
    """An input as the graph takes it (a missing text as "", whose words are none either way)."""
    array = np.asarray(values)
    if kind == "tensor(string)":
        texts: np.ndarray = np.vectorize(
            lambda v: v if isinstance(v, str) else "", otypes=[object]
        )(array)
        return texts
    return array.astype(_NUMBERS[kind]) if kind in _NUMBERS else array
