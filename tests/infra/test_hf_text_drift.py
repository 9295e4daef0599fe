"""Drift of a user's transformer published with its tokenizer.json: `aiaas baseline` bins a file
of texts, tokenized as serving tokenizes them, by that tokenizer's own pad, unknown token and
attention mask; the predict handler counts served texts the same way; `aiaas monitor` reads
them. The reference is the `tokenizers` library's own encode, no aiaas code.

The test transformer (tests/hf_transformer.py) with its WordPiece vocabulary reordered so that
[CLS] is 0, [SEP] 1, [UNK] 52 and [PAD] 53: our tokenizer's ids (pad 0, unknown 1) would count
[CLS] as padding and every [SEP] as an unknown word. And the same transformer with a byte-level
BPE (no unknown token: every text is read).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.drift.text import TEXT_FEATURES, TokenIds, text_features
from functions.runtime.explain.background import BACKGROUND_FILE
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import hf_transformer
from tests.functions.test_predict_events import http_event
from tests.infra.test_publish_tokenizer import POSITIONS, publish

TOKENS = ["[CLS]", "[SEP]", *dict.fromkeys(hf_transformer.WORDS), "[UNK]", "[PAD]"]
TOKENS += hf_transformer.PIECES
KNOWN = list(dict.fromkeys(hf_transformer.WORDS))
LABELS = ",".join(hf_transformer.LABELS)


def draw(rng: np.random.Generator, n: int, low: int, high: int, unknown: float = 0.0) -> list[str]:
    """`n` texts of `low` to `high` words of the vocabulary, a share `unknown` of them not."""
    return [
        " ".join("zyxq" if rng.random() < unknown else str(rng.choice(KNOWN)) for _ in range(k))
        for k in rng.integers(low, high, n)
    ]


def byte_level(path: Path) -> Path:
    """A byte-level BPE as GPT-2's: every byte in its alphabet, no unknown token."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<pad>"], initial_alphabet=alphabet, show_progress=False
    )
    tokenizer.train_from_iterator([" ".join(KNOWN)] * 3, trainer)
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hf-drift")
    store = LocalStore(root / "store")
    tokenizer = hf_transformer.tokenizer_json(root / "tokenizer.json", TOKENS)
    model = hf_transformer.transformer(root / "m.onnx", rows=len(TOKENS), positions=POSITIONS)
    for name in ("user-bert", "user-bert-bad"):  # the second never gets a baseline
        code, _, err = publish(
            store, model, "--labels", LABELS, "--tokenizer", str(tokenizer), name=name
        )
        assert code == 0, err
    bpe = byte_level(root / "bpe.json")
    size = Tokenizer.from_file(str(bpe)).get_vocab_size()
    model = hf_transformer.transformer(root / "b.onnx", rows=size, positions=POSITIONS)
    code, _, err = publish(
        store, model, "--labels", LABELS, "--tokenizer", str(bpe), name="user-bpe"
    )
    assert code == 0, err
    rng = np.random.default_rng(1)
    texts = draw(rng, 300, 3, 12, unknown=0.05)
    with (root / "train.jsonl").open("w") as out:
        out.writelines(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
    (root / "train.txt").write_text("\n".join(texts) + "\n")
    return root


def run(root: Path, *argv: str) -> int:
    return main(["--store", LocalStore(root / "store").uri, *argv])


def stored(root: Path, name: str) -> DriftBaseline:
    key = f"{version_prefix(name, '1')}/{BASELINE_FILE}"
    return DriftBaseline.from_json(LocalStore(root / "store").get_bytes(key))


def own_features(tokenizer: Path, texts: list[str], unknown: str | None) -> np.ndarray:
    """(tokens, unknown share) by the tokenizers library: attention mask, its own [UNK] id."""
    own = Tokenizer.from_file(str(tokenizer))
    own.enable_truncation(POSITIONS)
    encodings = own.encode_batch(texts)
    tokens = np.array([sum(e.attention_mask) for e in encodings], dtype=np.float64)
    unk = own.token_to_id(unknown) if unknown else None
    share = [e.ids.count(unk) / len(e.ids) if unk is not None else 0.0 for e in encodings]
    return np.stack([tokens, np.array(share)], axis=1)


@pytest.fixture(scope="module")
def baselined(root: Path) -> Path:
    assert run(root, "baseline", "user-bert", str(root / "train.jsonl")) == 0
    return root


def test_a_file_of_texts_gives_a_baseline_by_the_tokenizers_own_ids(
    baselined: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = stored(baselined, "user-bert")
    assert base.features == TEXT_FEATURES and base.rows == 300 and base.constant == ()
    texts = (baselined / "train.txt").read_text().splitlines()
    expected = own_features(baselined / "tokenizer.json", texts, "[UNK]")
    assert base.low.tolist() == expected.min(0).tolist()
    assert base.high.tolist() == expected.max(0).tolist()
    assert base.bin_rows(expected).tolist() == base.counts.tolist()
    assert base.counts[1, 1:].sum() > 0  # the unknown words are seen as such
    # Their ids, not ours (pad 0, unknown 1): [CLS] (0) is no padding, [SEP] (1) no unknown.
    ids = np.array([[0, 5, 52, 52, 1, 53, 53]])
    assert text_features(ids).tolist() == [[6.0, 1 / 6]]
    assert text_features(ids, TokenIds(53, 52)).tolist() == [[5.0, 2 / 5]]
    mask = np.array([[1, 1, 1, 1, 0, 0, 0]])  # the attention mask, where given, says
    assert text_features(ids, TokenIds(53, 52), mask).tolist() == [[4.0, 2 / 4]]
    # No explain background: a text is explained against an all-padding row.
    assert not (baselined / "store" / version_prefix("user-bert", "1") / BACKGROUND_FILE).exists()
    # Never replaced: the same file again is done (exit 0), another refused before it is read.
    assert run(baselined, "baseline", "user-bert", str(baselined / "train.jsonl")) == 0
    assert "user-bert:1 already has a drift baseline made from this data (train.jsonl, " in (
        capsys.readouterr().out
    )
    assert run(baselined, "baseline", "user-bert", str(baselined / "train.txt")) == 1
    assert "already has a drift baseline, made from other data (train.jsonl, " in (
        capsys.readouterr().err
    )
    assert stored(baselined, "user-bert").to_json() == base.to_json()


def served(root: Path, model: str, texts: list[str], size: int = 50) -> None:
    """`texts` through the real predict handler (API Gateway events), its counts flushed."""
    store = LocalStore(root / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    service = service_from_env({"AIAAS_MODEL": model}, pool)
    for start in range(0, len(texts), size):
        body = orjson.dumps({"inputs": texts[start : start + size]})
        response = service.handle(http_event("POST", f"/models/{model}/predict", body))
        assert response["statusCode"] == 200, response["body"]
    assert service.plane.drift is not None
    service.plane.drift.flush()


def rows_of(out: str) -> dict[str, str]:
    return {line.split()[0]: line for line in out.splitlines() if line.startswith(TEXT_FEATURES)}


def test_texts_like_trainings_do_not_drift_and_long_unknown_ones_do(
    baselined: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(2)
    served(baselined, "user-bert", draw(rng, 300, 3, 12, unknown=0.05))
    assert run(baselined, "monitor", "user-bert", "--no-png") == 0
    out = capsys.readouterr().out
    assert "user-bert:1: 300 rows served" in out and "0 of 3 drifted" in out, out
    # Then three times as many, longer and half of their words unknown to the WordPiece.
    served(baselined, "user-bert", draw(rng, 900, 14, 30, unknown=0.5))
    assert run(baselined, "monitor", "user-bert", "--no-png") == 0
    out = capsys.readouterr().out
    rows = rows_of(out)
    assert "DRIFT" in rows["tokens"] and "DRIFT" in rows["unknown_share"], out
    assert rows["tokens"].split()[4] != "0"  # longer than any training text: outside its range
    assert "no unknown token" not in out


def test_a_tokenizer_with_no_unknown_token_says_its_share_cannot_drift(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(root, "baseline", "user-bpe", str(root / "train.txt")) == 0
    note = (
        "user-bpe:1's tokenizer has no unknown token (a byte-level BPE reads every text), so "
        "unknown_share is 0 for every text and cannot drift: watch tokens and (prediction)"
    )
    assert capsys.readouterr().out.splitlines()[-1] == note
    base = stored(root, "user-bpe")
    assert base.constant == ("unknown_share",) and base.high[1] == 0
    texts = (root / "train.txt").read_text().splitlines()
    expected = own_features(root / "bpe.json", texts, None)
    assert base.bin_rows(expected).tolist() == base.counts.tolist()
    served(root, "user-bpe", draw(np.random.default_rng(3), 200, 3, 12, unknown=0.9))
    assert run(root, "monitor", "user-bpe", "--no-png") == 0
    out = capsys.readouterr().out
    assert "DRIFT" not in rows_of(out)["unknown_share"] and note in out.splitlines(), out
    assert "DRIFT" in rows_of(out)["tokens"]  # its unknown words: split into many more pieces


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        (
            "empty.txt",
            "\n\n",
            "empty.txt: no texts; a baseline needs texts like the model's training data",
        ),
        (
            "head.csv",
            "text\n",
            "head.csv: no texts; a baseline needs texts like the model's training data",
        ),
        (
            "other.csv",
            "review,label\nfine,1\n",
            "other.csv: the header lacks column(s) text; model user-bert-bad:1 reads text: text (it "
            "reads one text a row from column 'text': rename the column that holds the texts to "
            "text, or publish a version with --text-field NAME)",
        ),
        (
            "bad.jsonl",
            '{"text": "where is my parcel"}\n{"review": "late"}\n{"text": 3}\n',
            "bad.jsonl: line 2: ",
        ),
        (  # as batch names it: its lines' JSON was the baseline's texts, kept for good
            "bad.ndjson",
            '{"text": "where is my parcel"}\n{"review": "late"}\n{"text": 3}\n',
            "bad.ndjson: line 2: ",
        ),
        (
            "blank.csv",
            'text\nwhere is it\n" "\n',
            'blank.csv: text 2 (" ") holds nothing the tokenizer keeps; fix or remove it (1 such)',
        ),
    ],
)
def test_a_file_without_usable_texts_is_refused_and_nothing_is_written(
    root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str,
    error: str,
) -> None:
    (tmp_path / name).write_text(content)
    assert run(root, "baseline", "user-bert-bad", str(tmp_path / name)) == 1
    err = capsys.readouterr().err
    assert f"aiaas baseline: error: {tmp_path / name}" in err and error in err, err
    assert not (root / "store" / version_prefix("user-bert-bad", "1") / BASELINE_FILE).exists()
    if name.startswith("bad."):
        assert err.rstrip().endswith("fix or remove it (2 bad)"), err


def test_the_unknown_token_is_the_one_the_files_model_names() -> None:
    """WordPiece / BPE name it (`unk_token`), Unigram by index (`unk_id`, parsed from the file:
    the library does not expose it); a name the vocabulary lacks, or none, is no unknown."""
    from functions.runtime.hf_tokenizer import unk_id

    pieces = {"[PAD]": 0, "a": 1, "[UNK]": 2}
    cases = {
        models.WordPiece(pieces, unk_token="[UNK]"): 2,
        models.WordPiece(pieces, unk_token="<unk>"): None,  # not in its vocabulary
        models.BPE(): None,
        models.Unigram([("<pad>", 0.0), ("a", -1.0), ("<unk>", 0.0)], unk_id=2): 2,
        models.Unigram([("<pad>", 0.0), ("a", -1.0)]): None,
    }
    for model, expected in cases.items():
        tokenizer = Tokenizer(model)
        assert unk_id(tokenizer, tokenizer.to_str()) == expected, model
