"""argparse types the bench scripts share: a value a bench cannot use (`--rate 0` where nothing
paces the load, `--runs 0`, a `--code` checkout that is not there) is a one-line usage error
(exit 2) naming the flag and what to give, before any model is built or server started, not a
traceback after seconds of set-up. The ranges themselves are the CLI's (infra/cli/arg_types.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from infra.cli.arg_types import above_zero, count, wait, whole

__all__ = [
    "above_zero",
    "checkout",
    "count",
    "fraction",
    "rate",
    "rate_or_zero",
    "share",
    "wait",
    "whole",
]

share = above_zero(1.0)  # a share of requests or rows: above 0, at most 1
rate = above_zero(1e6)  # requests a second, or MB/s


def rate_or_zero(text: str) -> float:
    """An argparse type: requests a second, or 0 where the bench then runs back to back."""
    value = float(text)
    if not 0 <= value <= 1e6:  # NaN too
        raise argparse.ArgumentTypeError(f"give 0 (back to back) or a rate up to 1e6; got {text}")
    return value


def checkout(text: str) -> Path:
    """An argparse type: a checkout of this project, whose `infra/cli/main.py` the servers run."""
    path = Path(text)
    if not (path / "infra" / "cli" / "main.py").is_file():
        raise argparse.ArgumentTypeError(
            f"{text} is not a checkout of aiaas (no infra/cli/main.py)"
        )
    return path.resolve()


def fraction(text: str) -> float:
    """An argparse type: a share from 0 to 1, both ends included."""
    value = float(text)
    if not 0 <= value <= 1:  # NaN too
        raise argparse.ArgumentTypeError(f"give a share from 0 to 1; got {text}")
    return value


def counts(text: str) -> list[int]:
    """An argparse type: comma-separated counts, `1,5,20`."""
    try:
        return [count(part) for part in text.split(",")]
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(
            f"give counts of 1 or more, as 1,5,20; got {text}"
        ) from None


def venv(text: str) -> Path:
    """An argparse type: a virtual environment with `aiaas` installed in it (bin/aiaas)."""
    path = Path(text)
    if not (path / "bin" / "python").is_file() or not (path / "bin" / "aiaas").is_file():
        raise argparse.ArgumentTypeError(
            f"{text} is not a venv with aiaas installed (no bin/aiaas)"
        )
    return path.resolve()


def names(known: tuple[str, ...]) -> Callable[[str], list[str]]:
    """An argparse type: comma-separated names, each one of `known`."""

    def parse(text: str) -> list[str]:
        chosen = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [part for part in chosen if part not in known]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(
                f"give comma-separated names from {','.join(known)}; got {text}"
            )
        return chosen

    return parse


def existing_file(text: str) -> Path:
    """An argparse type: a file that is there (a spec, an input)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path
