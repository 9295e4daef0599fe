"""argparse types for numbers a command cannot use outside a range: a usage error (exit 2)
naming the flag and the range, before anything is read, uploaded or written."""

from __future__ import annotations

import argparse
import math
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


def whole_days(text: str) -> int:
    """An argparse type: whole days, 0 to 100 years, as S3's lifecycle rules count them: a
    fraction (0.1) meant whole days rounded up by date arithmetic, said nowhere. `7.0` is a
    whole number, as the releases that took fractions wrote it in unit files: still taken."""
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number.is_integer():
        raise argparse.ArgumentTypeError(f"give a whole number of days; got {text}")
    value = int(number)
    if not 0 <= value <= 36500:
        raise argparse.ArgumentTypeError(f"give 0 to 36500 days; got {text}")
    return value


def _said(check: Callable[[], object]) -> object:
    """`check()`'s value; its refusal (BadRequest, ValueError) as argparse's usage error."""
    from functions.runtime.errors import BadRequest

    try:
        return check()
    except BadRequest as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# Values the command's own check used to refuse after parsing, exit 1, where the README gives a
# value outside its flag's range as a usage error, 2 (`shadow --sample 2`, `serve --port 99999`,
# `rollout --bake 5x`); `monitor --window 7x` was only said after the baseline was looked up.


def shadow_sample(text: str) -> float:
    from functions.runtime.aliases import check_sample

    return float(_said(lambda: check_sample(float(text))))  # type: ignore[arg-type]


def capture_sample(text: str) -> float:
    from functions.runtime.capture.setting import check_sample

    return float(_said(lambda: check_sample(float(text))))  # type: ignore[arg-type]


def port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port: pick one from 1 to 65535")
    return value


def duration(text: str) -> str:
    """A duration as written (`30s`, `5m`, `1h`), checked; the command reads it again."""
    from functions.runtime.rollout.plan import parse_duration

    _said(lambda: parse_duration(text))
    return text


def bake(text: str) -> str:
    """A rollout's `--bake` as written, a duration a new rollout may bake (at least 1 s)."""
    from functions.runtime.rollout.plan import check_bake, parse_duration

    _said(lambda: check_bake(parse_duration(text)))
    return text


def steps(text: str) -> str:
    """Rollout steps as written (`10,50,100`), checked; the command reads them again."""
    from functions.runtime.rollout.plan import parse_steps

    _said(lambda: parse_steps(text))
    return text


def window(text: str) -> str:
    """A monitor window as written (`30m`, `7d`), checked; the command reads it again."""
    from infra.cli.monitor_period import parse_window

    _said(lambda: parse_window(text))
    return text


def store_uri(text: str) -> str:
    """An argparse type: a store URI, not empty. `--store "$REGISTRY"` with REGISTRY unset
    gave "", which meant the default store: a CI job published into its workspace's
    `.aiaas/store` and exited 0, the model never reaching S3."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "is empty (an unset variable?): give a directory or s3://bucket/prefix"
        )
    return text


def trusted_proxies(text: str) -> tuple[str, ...]:
    """`serve --trusted-proxy`'s addresses (infra/local/forwarded.py)."""
    from infra.local.forwarded import proxy_addresses

    try:
        return proxy_addresses(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def browser_origins(text: str) -> tuple[str, ...]:
    """`serve --cors-origins`'s origins (infra/local/cors.py)."""
    from infra.local.cors import cors_origins

    try:
        return cors_origins(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def model_list(text: str) -> list[str]:
    """An argparse type: comma-separated model names, each a valid name, each once. An empty
    entry (`--models a,b,`) or an invalid name (`a/b`) became a route of its own
    (`POST /models//predict`) and an init that failed with `AIAAS_MODEL is not set` or the
    name rule at every request; a name given twice loaded its model twice."""
    # imported here, not at the top: the parser is built before main() guards Ctrl-C (exit
    # 130), and tests/infra/test_cli_usage_errors.py takes this import as the command's start
    from functions.runtime.names import MODEL_RULE, is_model_name

    if not text.strip():  # `--models "$TEAM_MODELS"` with the variable unset served every model
        raise argparse.ArgumentTypeError(
            "name at least one model (leave --models out to serve every model of the store)"
        )
    names: list[str] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            raise argparse.ArgumentTypeError(
                f"{text!r} has an empty name (a trailing or doubled comma?): give model names "
                "separated by single commas, e.g. iris,churn"
            )
        if not is_model_name(entry):
            raise argparse.ArgumentTypeError(f"{entry!r} is no model name: use {MODEL_RULE}")
        if entry not in names:
            names.append(entry)
    return names
