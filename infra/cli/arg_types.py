"""argparse types for numbers a command cannot use outside a range: a usage error (exit 2)
naming the flag and the range, before anything is read, uploaded or written."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def count(text: str) -> int:
    """An argparse type: 0 workers still served with one, 0 requests in flight without a cap."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a count: give 1 or more")
    return value


def seconds(text: str) -> float:
    """An argparse type: a timeout of 0 turned granian's header timeout off (slow heads and idle
    connections stayed open for good) and made every request with a body a 408."""
    value = float(text)
    if not 0.001 <= value <= 86400:  # granian counts the header timeout in whole milliseconds
        raise argparse.ArgumentTypeError(f"{text} is not a timeout: give 0.001 to 86400 seconds")
    return value


def wait(text: str) -> float:
    """An argparse type: seconds to wait, 0 (look once) to a day; NaN waited for good."""
    value = float(text)
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{text} is not a wait: give 0 to 86400 seconds")
    return value


def above_zero(high: float) -> Callable[[str], float]:
    """An argparse type: a number above 0, at most `high`; NaN, which compares false with
    everything (`--threshold nan` flagged no drift, ever), is not one."""

    def number(text: str) -> float:
        value = float(text)
        if not 0 < value <= high:
            raise argparse.ArgumentTypeError(f"give a number above 0, at most {high:g}; got {text}")
        return value

    return number


def weight(text: str) -> float:
    """An argparse type: a canary's share of an alias, as the alias record keeps it (6
    decimals): `--weight 1.5` was the registry's refusal, exit 1, where the README's table
    gives a value outside its flag's range as a usage error, 2."""
    from functions.runtime.aliases import check_weight
    from functions.runtime.errors import BadRequest

    try:
        return check_weight(float(text))
    except BadRequest as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`. `--shards 0` ran unsharded and
    `--bins 99999999` spent minutes on quantiles before any check."""

    def number(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"give a whole number from {low} to {high:,}; got {text}"
            )
        return value

    return number


def days(text: str) -> float:
    """An argparse type: an age in days, 0 to 100 years; NaN (never older) is not one."""
    value = float(text)
    if not 0 <= value <= 36500:
        raise argparse.ArgumentTypeError(f"give 0 to 36500 days; got {text}")
    return value
