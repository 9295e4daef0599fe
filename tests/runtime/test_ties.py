"""Which tied best score the model's own label output settles (functions/runtime/codecs/ties.py)."""

from __future__ import annotations

import numpy as np

from functions.runtime.codecs.ties import _may_tie, ranked_first, tie_winners

LABELS = ("3", "7", "9")


def test_int_labels_settle_the_tied_rows_only() -> None:
    scores = [[0.4, 0.4, 0.2], [0.1, 0.6, 0.3], [0.3, 0.3, 0.3]]
    own = np.array([7, 7, 9], dtype=np.int64)
    assert tie_winners(scores, LABELS, own, np.asarray(scores, np.float32)) == {0: 1, 2: 2}


def test_a_label_naming_no_tied_column_or_no_class_keeps_the_first_best() -> None:
    scores = [[0.4, 0.4, 0.2], [0.4, 0.4, 0.2]]
    assert tie_winners(scores, LABELS, np.array(["9", "5"], dtype=object)) == {}
    assert tie_winners(scores, LABELS, None) == {}
    assert tie_winners(scores, LABELS, np.array([7])) == {}  # not one label a row


def test_untied_raw_scores_skip_the_served_ones() -> None:
    raw = np.array([[0.2, 0.8]], np.float32)
    assert tie_winners([[0.5, 0.5]], ("a", "b"), np.array(["b"]), raw) == {}
    assert tie_winners([[0.5, 0.5]], ("a", "b"), np.array([b"b"], dtype=object)) == {0: 1}


def test_the_settled_column_ranks_ahead_of_those_it_ties() -> None:
    assert ranked_first([0.4, 0.4, 0.2, 0.4], 3, 3) == [3, 0, 1]
    assert ranked_first([0.5, 0.5], 1, 1) == [1]


def test_a_tie_is_found_in_a_few_rows_as_in_many() -> None:
    """A request of a few rows is checked in Python (cheaper than numpy's calls), a larger one
    with numpy: both find the one tied row, and neither a row without a tie."""
    for count in (1, 5, 40, 1000):  # scores: 3 to 3,000, across SMALL
        raw = np.tile(np.array([[0.2, 0.5, 0.3]], dtype=np.float32), (count, 1))
        assert not _may_tie(raw), count
        raw[count // 2] = [0.4, 0.4, 0.2]
        assert _may_tie(raw), count
