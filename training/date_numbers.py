"""A feature column of dates written as numbers: `20240131`, as a warehouse export or
`df["date"].dt.strftime("%Y%m%d").astype(int)` writes them.

Such a column reads as numbers, so it was trained on as one without a word (a column of
`2024-01-31` texts is told to hold dates, `category_hints.py`; one of such numbers was warned
only when unique in every row, as "a row id"). As a number, a date is no measure of time:
20240131 to 20240201 is a step of 70 where 20240101 to 20240131 is one of 30, and every date
after training lies past the range the model was fitted on.
"""

from __future__ import annotations

import datetime

import numpy as np

MIN_VALUES = 2  # one value is a constant column, said elsewhere


def dates_as_numbers(column: np.ndarray, name: str) -> str | None:
    """A warning when every value of `column` (its present cells) is a date written YYYYMMDD
    (years 1900 to 2100), of at least 2 dates; else None."""
    values = np.unique(column[np.isfinite(column)])
    if values.size < MIN_VALUES or values[0] < 19000101 or values[-1] > 21001231:
        return None
    if not np.all(values == np.floor(values)):
        return None
    try:
        first, *_ = [_date(int(v)) for v in values]
    except ValueError:  # a month 13 or a day 32: numbers that only look like dates
        return None
    return (
        f"feature column {name!r} holds dates written as numbers (e.g. {int(values[0])}, "
        f"{first.isoformat()}): read as a number, 20240131 to 20240201 is a step of 70 where "
        "20240101 to 20240131 is one of 30, and every later date lies past the range the "
        "model was trained on; derive numbers from it (days since a date, month, weekday) in "
        "columns of their own, or add it to dataset.exclude"
    )


def _date(value: int) -> datetime.date:
    return datetime.date(value // 10000, value // 100 % 100, value % 100)
