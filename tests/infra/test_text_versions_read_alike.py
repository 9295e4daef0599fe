"""Two versions of a text model that read their callers' text differently (found by a hunt).

- A rollout checked only the ONNX inputs, so the same transformer published again without
  `--tokenizer` (a common slip) started, went 50% -> 100% and "succeeded" while every canary
  request was a 400 (4xx are the caller's, not counted in the error rate); so did a candidate
  reading another `--text-field`, or fewer token ids.
- `aiaas compare` of such a pair said "no row could be compared (1 bad) ... got 'text', which this
  model does not take" rather than that the versions read different inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from pytest_mock import MockerFixture

from functions.runtime.batch.scoring import ChunkScorer
from functions.runtime.cache import ArtifactCache
from functions.runtime.comparison.run import CompareRequest, compare_versions
from functions.runtime.errors import BadRequest, InvalidInput
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.store import LocalStore
from infra.cli.rollout_commands import _NoMetrics
from tests import hf_transformer
from tests.infra.test_publish_tokenizer import TEXTS, publish

MODEL = "tiny-bert"
LABELS = ",".join(hf_transformer.LABELS)
# Version -> what it was published with, beside the same model file.
VERSIONS = {
    "1": ("--tokenizer", "T"),
    "2": (),  # no tokenizer: token ids only
    "3": ("--tokenizer", "T", "--text-field", "review"),
    "4": ("--tokenizer", "T", "--max-length", "12"),
    "5": ("--tokenizer", "T"),  # the same as 1
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("versions")
    model = hf_transformer.transformer(root / "model.onnx", positions=24)
    tokenizer = str(hf_transformer.tokenizer_json(root / "tokenizer.json"))
    store = LocalStore(root / "store")
    for options in VERSIONS.values():
        argv = [tokenizer if value == "T" else value for value in options]
        code, _, err = publish(store, model, "--labels", LABELS, *argv)
        assert code == 0, err
    registry = Registry(store)
    registry.set_alias(MODEL, "production", "1")
    rows = "".join(f'"{text}"\n' for text in TEXTS)
    store.put_bytes(f"batch/{MODEL}/input/texts.csv", f"text\n{rows}".encode())
    return registry


def compare(registry: Registry, a: str, b: str) -> dict[str, object]:
    pool = ModelPool(registry, ArtifactCache(registry.store, registry.store.root / "../cache"))
    return compare_versions(pool, CompareRequest(MODEL, a, b, f"batch/{MODEL}/input/texts.csv"))


@pytest.mark.parametrize(
    ("candidate", "why"),
    [
        ("2", "it reads no raw text (it was published without its tokenizer), which the "),
        ("3", "it reads raw text from record field 'review', not 'text' as the baseline does"),
        ("4", "it takes at most 12 token ids a row where the baseline takes 24 (raw text is cut"),
    ],
)
def test_a_rollout_to_a_version_reading_text_otherwise_is_refused_before_any_caller_sees_it(
    registry: Registry, candidate: str, why: str
) -> None:
    engine = RolloutEngine(registry, _NoMetrics())
    plan = RolloutPlan(steps=(0.5, 1.0), bake_s=0.0, max_error_rate=0.01)
    with pytest.raises(InvalidInput) as info:
        engine.start(MODEL, candidate, plan, alias="production", actor="test")
    assert f"version {candidate} of {MODEL} does not take the requests 1 takes ({why}" in (
        info.value.message
    )
    target = registry.alias_target(MODEL, "production")
    assert target is not None and target.describe() == "1"


@pytest.mark.parametrize(
    ("b", "how"),
    [("2", "2 none (it was published without its tokenizer)"), ("3", "3 from field 'review'")],
)
def test_compare_names_how_two_text_versions_read_differently(
    registry: Registry, b: str, how: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        compare(registry, "1", b)
    assert info.value.message == (
        f"versions 1 and {b} of {MODEL} read different inputs: 1 reads raw text from field "
        f"'text', {how}; compare scores one file with both, so they must read it alike"
    )


@pytest.mark.parametrize("b", ["4", "5"])
def test_text_versions_reading_one_field_are_compared_whatever_their_lengths(
    registry: Registry, b: str
) -> None:
    report = compare(registry, "1", b)
    assert report["rows"] == {
        "compared": len(TEXTS),
        "failed": 0,
        "truncated": False,
        "refused": {"a": 0, "b": 0, "both": 0},
    }


def test_a_rollout_to_a_version_reading_text_alike_starts(registry: Registry) -> None:
    engine = RolloutEngine(registry, _NoMetrics())
    plan = RolloutPlan(steps=(0.5, 1.0), bake_s=0.0, max_error_rate=0.01)
    assert engine.start(MODEL, "5", plan, alias="production", actor="test").running
    engine.abort(MODEL, "production", "test")
    target = registry.alias_target(MODEL, "production")
    assert target is not None and target.describe() == "1"


def test_a_text_the_tokenizer_keeps_nothing_of_costs_compare_that_row_alone(
    registry: Registry,
) -> None:
    """One accent alone (which BERT's normalizer strips) among 500 texts failed its batch:
    "905 rows compared, 1 not" of 5,000, the one error at the batch's first line (a good row)."""
    texts = [TEXTS[i % 4] for i in range(500)]
    texts[300] = "\u0301"
    rows = "".join(f'"{text}"\n' for text in texts)
    registry.store.put_bytes(f"batch/{MODEL}/input/accent.csv", f"text\n{rows}".encode())
    pool = ModelPool(registry, ArtifactCache(registry.store, registry.store.root / "../cache"))
    report = compare_versions(
        pool, CompareRequest(MODEL, "1", "5", f"batch/{MODEL}/input/accent.csv")
    )
    assert report["rows"]["compared"] == 499
    assert report["rows"]["refused"] == {"a": 0, "b": 0, "both": 1}
    assert report["errors"] == [
        {
            "line": 302,
            "reason": "versions 1 (A) and 5 (B) both refused this row: 'text' holds nothing "
            "the tokenizer keeps; send some text",
            "refused_by": "both",
        }
    ]


def test_a_row_failing_its_batch_otherwise_costs_compare_that_row_alone(
    registry: Registry, mocker: MockerFixture
) -> None:
    """Whatever a caller's error a batch fails with, compare finds its row rather than listing
    the whole batch as one bad row at its first line."""
    answered = ChunkScorer.answered

    def refusing_parcels(
        self: ChunkScorer, features: dict[str, np.ndarray], rows: int
    ) -> tuple[dict[str, np.ndarray], dict[int, str]]:
        if "Where is my parcel?" in features["text"].tolist():
            raise InvalidInput("no parcels")
        return answered(self, features, rows)

    mocker.patch.object(ChunkScorer, "answered", refusing_parcels)
    report = compare(registry, "1", "5")
    assert report["rows"]["compared"] == len(TEXTS) - 1
    assert report["errors"] == [{"line": 2, "reason": "version 1: no parcels"}]


def test_a_label_naming_what_the_model_reads_is_refused(registry: Registry) -> None:
    """`compare --label text` read the texts as the truth: all 6 rows "hold a class neither
    version was trained on", accuracy 0 for both (ctl2 hunt)."""
    pool = ModelPool(registry, ArtifactCache(registry.store, registry.store.root / "../cache"))
    request = CompareRequest(MODEL, "1", "5", f"batch/{MODEL}/input/texts.csv", label="text")
    with pytest.raises(BadRequest) as raised:
        compare_versions(pool, request)
    assert raised.value.message == (
        "--label 'text' is what the model reads, not a ground truth: name the column (or JSONL "
        "field) that holds each row's true answer"
    )


def test_an_npy_of_token_ids_is_told_to_send_the_texts(registry: Registry) -> None:
    """Compare (and batch) of a text model on an .npy of token ids said "array shape [30, 10]
    does not fit input 'text' [-1]; rows must have shape []" (ctl2 hunt)."""
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ones((6, 10), dtype=np.int64))
    registry.store.put_bytes(f"batch/{MODEL}/input/ids.npy", buffer.getvalue())
    pool = ModelPool(registry, ArtifactCache(registry.store, registry.store.root / "../cache"))
    with pytest.raises(BadRequest) as raised:
        compare_versions(pool, CompareRequest(MODEL, "1", "5", f"batch/{MODEL}/input/ids.npy"))
    assert "an .npy of numbers for a model that reads text ('text'): batch files" in (
        raised.value.message
    )
