"""What `aiaas train --check` cannot tell from its sample of a large file, said by the run once
it has read the whole file (`training.job`): the classes' shares, and a class first seen past the
sample that is spelt like another. The rules and messages are `--check`'s own."""

from __future__ import annotations

import numpy as np

from training.category_hints import (
    label_spellings,
    misspelling_warning,
    misspelt_labels,
    spelled_apart,
)
from training.data_checks import SAMPLE_ROWS, class_warnings
from training.datasets import RawData
from training.errors import DataError
from training.prepare import PreparedData
from training.spec import JobSpec
from training.targets import class_labels


def whole_file_class_warnings(spec: JobSpec, raw: RawData, data: PreparedData) -> list[str]:
    """The class shares of a file past `--check`'s sample, said on stderr as `--check` says
    them of a smaller file: a 20,000-row file with a 2% class trained with no imbalance
    warning (the check judges no shares from a partial sample, and nothing else did); and a
    class first seen past the sample that is spelt like another (`hihg`), which the check
    could not see."""
    if not data.labels or len(raw.y) <= SAMPLE_ROWS:
        return []
    codes = np.concatenate([data.train.y, data.validation.y, data.test.y])
    counts = np.bincount(codes, minlength=len(data.labels)).tolist()
    try:  # the sample `--check` read (a run from Python may not have checked it)
        sampled = set(class_labels(raw.y[:SAMPLE_ROWS], raw.target_name)[0])
    except DataError:
        sampled = set(data.labels)
    unsampled = set(data.labels) - sampled
    said = [] if not unsampled else [
        warning
        for warning, found in (
            (misspelling_warning(data.labels, counts, raw.target_name),
             set(misspelt_labels(data.labels, counts))),
            (label_spellings(data.labels, counts, raw.target_name),
             {v for group in spelled_apart(list(data.labels)) for v in group}),
        )
        if warning is not None and found & unsampled
    ]  # fmt: skip
    return [*said, *class_warnings(data.labels, codes, raw.target_name, spec)]
