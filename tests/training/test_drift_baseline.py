"""Training stores each numeric version's drift baseline beside its model (issue #18)."""

from __future__ import annotations

import numpy as np
import pytest

from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline, build
from functions.runtime.drift.fit import fit
from functions.runtime.drift.live import LiveHistograms
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.drift.report import PREDICTION, Window, compare
from functions.runtime.drift.text import TEXT_FEATURES
from functions.runtime.model import LoadedModel
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests.training.conftest import Published


def stored(published: Published, name: str) -> DriftBaseline:
    key = f"{version_prefix(name, '1')}/{BASELINE_FILE}"
    return DriftBaseline.from_json(LocalStore(published.store_dir).get_bytes(key))


@pytest.mark.parametrize(("name", "features"), [("tiny-logistic", 4), ("tiny-linear", 10)])
def test_a_tabular_version_carries_its_training_bins(
    published: Published, name: str, features: int
) -> None:
    base = stored(published, name)
    manifest = published.registry.manifest(name, "1")
    assert base.width == features and base.features == manifest.features
    assert (base.counts.sum(1) == base.rows).all() and base.rows > 50
    assert base.prediction is not None and base.prediction.counts.sum() == base.rows
    if manifest.labels:  # classifier: the shares of each predicted label
        assert base.prediction.labels == manifest.labels and base.prediction.edges is None
    else:  # regressor: its predictions' own quantile bins
        assert base.prediction.edges is not None and len(base.prediction.edges) >= 5
    # Quantile bins: a feature with many values has ~10 bins of about a tenth each; one with
    # few (diabetes' `sex`, iris' 0.1 cm steps) keeps fewer, merged at repeated quantiles.
    many = (base.counts > 0).sum(1) >= 8
    assert many.any()
    assert np.max(base.counts[many] / base.rows) < 0.3  # ties in 102 iris rows: 27


def test_a_text_version_is_watched_by_length_and_unknown_words(
    published: Published,
) -> None:
    """Stored from the held-out texts; then, on a baseline of 3000 texts drawn like the served
    ones, the same draw flags nothing and twice the unknown words flags the unknown share."""
    stored_base = stored(published, "tiny-transformer")
    assert stored_base.features == TEXT_FEATURES
    assert (stored_base.counts.sum(1) == stored_base.rows).all()
    assert stored_base.counts[1, 1:].sum() > 0  # held-out texts do hold unknown words
    path = published.results["transformer"].model_path
    model = LoadedModel(published.registry.manifest("tiny-transformer", "1"), path)
    assert model.text is not None
    known = np.array([t for t in model.text.vocabulary.tokens[2:] if t.isalpha()])
    rng = np.random.default_rng(0)

    def draw(n: int, unknown: float) -> list[str]:
        """`n` texts of 3-13 words, each a known word or, with chance `unknown`, "zqx"; the
        words of a text drawn at once (one rng.choice a word, of a list: ~3 CPU-s)."""
        texts = []
        for k in rng.integers(3, 14, n):
            words = np.where(rng.random(k) > unknown, rng.choice(known, k), "zqx")
            texts.append(" ".join(words))
        return texts

    ids = model.text.vocabulary.encode(draw(3000, 0.1), 16)
    base = fit(model, ids)
    # Our vocabulary keeps its ids (pad 0, unknown 1): `aiaas train`'s baselines byte for byte.
    tokens = (ids != 0).sum(1)
    features = np.stack([tokens.astype(np.float64), (ids == 1).sum(1) / tokens], axis=1)
    assert base.to_json() == build(features, TEXT_FEATURES, base.prediction).to_json()

    def flagged(texts: list[str]) -> list[str]:
        live = LiveHistograms(base, model.manifest, model.text)
        for start in range(0, len(texts), 4):
            inputs = {"text": np.array(texts[start : start + 4])}
            live.record(inputs, model.predict(inputs))
        live.fold()
        window = Window(live.rows, live.counts, live.nan, live.below, live.above, live.predicted, 1)
        return [r.name for r in compare(base, window) if r.drifted and r.name != PREDICTION]

    assert flagged(draw(2000, 0.1)) == []
    assert flagged(draw(2000, 0.3)) == ["unknown_share"]
    # The predict function's monitor takes the stored text baseline (and never flushes here).
    monitor = DriftMonitor(LocalStore(published.store_dir), interval=1e9)
    inputs = {"text": np.array(["where is my parcel"])}
    monitor.record(model, inputs, model.predict(inputs))
    live = monitor._live[("tiny-transformer", "1")]
    assert live is not None and live.text is model.text
    assert np.array_equal(live.baseline.counts, stored_base.counts)
