"""Shadow results summed per interval (functions/predict/shadow_tally.py), as the replay
process sends them, reach `/metrics` exactly as observing each copy with prometheus_client
would: the histogram's buckets, sum and count, the counters and the largest differences."""

from __future__ import annotations

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest

from functions.predict import metric_names as m
from functions.predict.shadow_tally import ShadowTally
from functions.runtime.dataplane.class_match import INDEX, UNMATCHED
from functions.runtime.dataplane.compare import Comparison
from infra.local.prometheus import LATENCY_BUCKETS, PrometheusFamilies

LABELS = ("m", "1", "2")


def copies(n: int) -> list[tuple[float, Comparison | None]]:
    rng = np.random.default_rng(3)
    seconds = rng.lognormal(-7, 2, size=n)  # from ~1 us to seconds: every bucket
    out: list[tuple[float, Comparison | None]] = []
    for s in seconds:
        if rng.random() < 0.1:
            out.append((float(s), None))
        else:
            rows = int(rng.integers(1, 5))
            diff = float(rng.random())
            out.append((float(s), Comparison(rows, int(rng.integers(0, rows + 1)), diff, diff / 3)))
    return out


def samples(text: str, prefix: str) -> dict[str, float]:
    lines = [x for x in text.splitlines() if x.startswith(prefix) and "_created" not in x]
    return {x.rsplit(" ", 1)[0]: float(x.rsplit(" ", 1)[1]) for x in lines}


def test_tallies_equal_observing_each_copy() -> None:
    observed = copies(2000)
    families = PrometheusFamilies()
    for start in range(0, len(observed), 300):  # intervals, through the wire format
        tally = ShadowTally()
        for seconds, comparison in observed[start : start + 300]:
            tally.add(seconds, comparison)
        labels, back = ShadowTally.from_row(orjson.loads(orjson.dumps(tally.to_row(LABELS))))
        families.shadow(labels, back)
    theirs = CollectorRegistry()
    histogram = Histogram(
        m.SHADOW_LATENCY, "x", m.SHADOW_LABELS, registry=theirs, buckets=LATENCY_BUCKETS
    )
    for seconds, _ in observed:
        histogram.labels(*LABELS).observe(seconds)
    ours = generate_latest(families.registry).decode()
    expected = samples(generate_latest(theirs).decode(), m.SHADOW_LATENCY)
    got = samples(ours, m.SHADOW_LATENCY)
    assert got.keys() == expected.keys() and len(got) == len(LATENCY_BUCKETS) + 3
    assert all(np.isclose(got[k], expected[k], rtol=1e-12) for k in got)
    done = [c for _, c in observed if c is not None]
    label = '{model="m",shadow_version="2",version="1"}'
    assert samples(ours, m.SHADOW_REQUESTS + label)[m.SHADOW_REQUESTS + label] == len(done)
    errors = len(observed) - len(done)
    assert samples(ours, m.SHADOW_ERRORS + label)[m.SHADOW_ERRORS + label] == errors
    rows, agreed = sum(c.rows for c in done), sum(c.agreed or 0 for c in done)
    assert samples(ours, m.SHADOW_ROWS + label)[m.SHADOW_ROWS + label] == rows
    assert samples(ours, m.SHADOW_AGREED + label)[m.SHADOW_AGREED + label] == agreed
    top = max(c.max_abs for c in done)
    assert samples(ours, m.SHADOW_MAX_ABS + label)[m.SHADOW_MAX_ABS + label] == top


def test_a_regressor_tally_has_no_agreement_and_a_failed_one_no_rows() -> None:
    tally = ShadowTally.of(0.01, Comparison(3, None, 0.5, 0.1))
    assert tally.agreed is None and tally.rows == 3 and tally.answered == 1
    failed = ShadowTally.of(0.01, None)
    assert (failed.copies, failed.errors, failed.rows, failed.answered) == (1, 1, 0, 0)


def test_how_classes_were_matched_reaches_metrics_through_the_wire_format() -> None:
    """Rows matched by class index, and rows whose classes nothing links (no agreement)."""
    by_index = [Comparison(3, 2, 0.1, 0.1, INDEX), Comparison(2, 2, 0.0, 0.0, INDEX)]
    families = PrometheusFamilies()
    for pair, comparisons in (
        (LABELS, by_index),
        (("m", "1", "3"), [Comparison(4, None, 0, 0, UNMATCHED)]),
    ):
        tally = ShadowTally()
        for comparison in comparisons:
            tally.add(0.001, comparison)
        labels, back = ShadowTally.from_row(orjson.loads(orjson.dumps(tally.to_row(pair))))
        assert (back.by_index, back.unmatched, back.agreed) == (
            tally.by_index,
            tally.unmatched,
            tally.agreed,
        )
        families.shadow(labels, back)
    ours = generate_latest(families.registry).decode()
    label = '{model="m",shadow_version="2",version="1"}'
    assert samples(ours, m.SHADOW_BY_INDEX + label) == {m.SHADOW_BY_INDEX + label: 5}
    assert samples(ours, m.SHADOW_AGREED + label) == {m.SHADOW_AGREED + label: 4}
    other = '{model="m",shadow_version="3",version="1"}'
    assert samples(ours, m.SHADOW_UNMATCHED + other) == {m.SHADOW_UNMATCHED + other: 4}
    assert samples(ours, m.SHADOW_ROWS + other) == {m.SHADOW_ROWS + other: 4}
    assert m.SHADOW_AGREED + other not in ours  # no agreement, not a 0
