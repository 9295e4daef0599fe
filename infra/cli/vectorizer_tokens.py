"""What `aiaas publish` says of a scikit-learn text vectorizer exported with skl2onnx's defaults.

scikit-learn's `TfidfVectorizer` / `CountVectorizer` read words with `token_pattern`
`(?u)\\b\\w\\w+\\b`: runs of 2 or more letters or digits of any script. skl2onnx (1.20) exports
that default as onnxruntime's `Tokenizer` with `tokenexp` `[a-zA-Z0-9_]+`: ASCII runs of one or
more. So the served model reads other words than `predict_proba` did:

- a word with a letter outside ASCII is cut at it: `lateé` is `late` (a word of the vocabulary)
  where scikit-learn read one unknown word, `Rückerstattung` is `R` and `ckerstattung`, and a
  vocabulary word such as `rückerstattung` is never matched at all;
- a one-letter word (`I need a refund`) is a token, so with `ngram_range=(1, 2)` the n-grams
  across it (`need a`, `a refund`) are not scikit-learn's (`need refund`).

Served, a TF-IDF + LogisticRegression on support tickets answered 1,245 of 20,005 texts of
mixed words differently from `predict_proba` (by up to 0.83, labels changed), a CountVectorizer
with bigrams 1,377; exported with `tokenexp` `[\\p{L}\\p{N}_]{2,}` (re2's classes for Python's
`\\w`), none (tests/infra/test_vectorizer_tokens.py). The platform serves the graph as it is, as
onnxruntime answers it: publish says so, and how to export it as scikit-learn reads words.
"""

from __future__ import annotations

from pathlib import Path

SKL2ONNX_DEFAULT = "[a-zA-Z0-9_]+"  # skl2onnx's tokenexp for scikit-learn's default pattern
LIKE_SKLEARN = r"[\p{L}\p{N}_]{2,}"  # what `(?u)\b\w\w+\b` matches, in re2's syntax
SHOWN = 3  # vocabulary words named


def vectorizer_tokens_note(path: Path, producer: str) -> str | None:
    """A warning for a skl2onnx export whose Tokenizer reads words otherwise than scikit-learn
    read them; None for any other model (read only for skl2onnx's files, which are small)."""
    if not producer.lower().startswith("skl2onnx"):
        return None
    try:
        import onnx
    except ImportError:  # a base install: a ZipMap export was refused already, saying so
        return None
    graph = onnx.load(str(path), load_external_data=False).graph
    tokenizers = [n for n in graph.node if n.op_type == "Tokenizer"]
    if not any(node_text(n, "tokenexp") == SKL2ONNX_DEFAULT for n in tokenizers):
        return None
    vectorizers = [n for n in graph.node if n.op_type == "TfIdfVectorizer"]
    words = [w for n in vectorizers for w in _strings(n, "pool_strings")]
    foreign = sorted({w for w in words if not w.isascii()})
    grams = max((_int(n, "max_gram_length") for n in vectorizers), default=1)
    lost = ""
    if foreign:
        named = ", ".join(repr(w) for w in foreign[:SHOWN]) + (
            ", ..." if len(foreign) > SHOWN else ""
        )
        lost = f" (its vocabulary's {len(foreign)} such words, {named}, are never matched)"
    pairs = (
        f", and with n-grams of {grams} words a one-letter word ('I need a refund') makes "
        "n-grams scikit-learn never made"
        if grams > 1
        else ""
    )
    return (
        f"warning: the text vectorizer reads words with skl2onnx's ASCII pattern "
        f"{SKL2ONNX_DEFAULT}, not scikit-learn's (?u)\\b\\w\\w+\\b: a word with a letter outside "
        f"ASCII is cut at it ('lateé' is read as 'late'){lost}{pairs}, so texts holding them are "
        "answered otherwise than predict_proba answers them; export with options={id(vectorizer): "
        f"{{'tokenexp': r'{LIKE_SKLEARN}', 'locale': 'C.UTF-8'}}}}, which reads words as "
        "scikit-learn does"
    )


def _attribute(node: object, name: str) -> object:
    from onnx import helper

    for attribute in node.attribute:  # type: ignore[attr-defined]
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return None


def node_text(node: object, name: str) -> str:
    value = _attribute(node, name)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def _strings(node: object, name: str) -> list[str]:
    value = _attribute(node, name)
    if not isinstance(value, list):
        return []
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value]


def _int(node: object, name: str) -> int:
    value = _attribute(node, name)
    return value if isinstance(value, int) else 1
