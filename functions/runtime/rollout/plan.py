"""What a rollout is asked to do: the steps, how long each bakes, and the limits it is held to."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from functions.runtime.aliases import SMALLEST, WEIGHT_DIGITS, check_sample
from functions.runtime.errors import BadRequest
from functions.runtime.names import shown, shown_names

DEFAULT_MIN_REQUESTS = 20  # a step's candidate answers at least this many before it advances
MAX_MIN_REQUESTS = 10**9
DEFAULT_SHADOW_SAMPLE = 1.0  # the agreement stage replays every request (copies are dropped,
# never waited for, when the shadow falls behind)
MAX_STEPS = 20
MAX_BAKE_S = 7 * 24 * 3600  # a Step Functions execution lives a year; a week a step is plenty
# A new rollout's shortest bake. At 0 each step, the 100% one too, advanced on its first
# --min-requests answers: done on 60 requests, no time for a p99 window or a slow error.
# Plans built in-process (tests, stored records) may still bake 0; `checked_new` refuses it.
MIN_BAKE_S = 1.0
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
# A server re-reads an alias on its first request after the TTL, and that request waits up to
# served.REFRESH_WAIT_S (0.5 s) for the read, which a healthy store answers well within: twice
# that, so a read ending at the wait's limit still lands before the bake (1 s of a 60 s
# settle). Not imported from the pool: the rollout function loads no onnxruntime.
REREAD_MARGIN_S = 1.0
MIN_POLL_S = 0.2
MAX_POLL_S = 60.0  # CloudWatch's resolution; locally bakes are short and polled more often


@dataclass(frozen=True)
class RolloutPlan:
    """Steps are the candidate's shares (0.1, 0.5, 1.0); the last one is 1 (all traffic)."""

    steps: tuple[float, ...]
    bake_s: float
    max_error_rate: float
    max_p99_ms: float | None = None
    min_agreement: float | None = None  # set: a shadow stage comes first, judged on agreement
    min_requests: int = DEFAULT_MIN_REQUESTS
    shadow_sample: float = DEFAULT_SHADOW_SAMPLE
    # Seconds a move takes to reach every server: the alias TTL where servers re-read the alias
    # on a timer (S3), 0 where they see it at once (a directory store). A step's bake begins
    # only after it, so a step is judged on the traffic it was given, not the one before.
    settle_s: float = 0.0

    def __post_init__(self) -> None:
        _check_steps(self.steps)
        check_bake(self.bake_s, 0)
        _check_range("settle_s", self.settle_s, 0, MAX_BAKE_S)
        _check_range("max_error_rate", self.max_error_rate, 0, 1)
        if self.max_p99_ms is not None:
            _check_range("max_p99_ms", self.max_p99_ms, 0, math.inf, low_open=True)
        if self.min_agreement is not None:
            _check_range("min_agreement", self.min_agreement, 0, 1)
        _check_range("shadow_sample", self.shadow_sample, 0, 1, low_open=True)
        # as the alias record keeps it: 1e-7 passed here, then the shadow's write failed with
        # a traceback mid-rollout, the rollout left 'running'
        if round(self.shadow_sample, WEIGHT_DIGITS) <= 0:  # 5e-324 was told of `sample`
            raise BadRequest(
                f"shadow_sample must be at least {SMALLEST} (the shadow's sample as the alias "
                f"stores it) and at most 1; got {self.shadow_sample!r}"
            )
        check_sample(self.shadow_sample)
        if isinstance(self.min_requests, bool) or not isinstance(self.min_requests, int):
            raise BadRequest(f"min_requests must be a whole number; got {self.min_requests!r}")
        if not 0 <= self.min_requests <= MAX_MIN_REQUESTS:  # 0: a stored plan, read as it was
            raise BadRequest(  # in a new plan's bounds: "at least 0" was then refused as 0
                f"min_requests must be at least 1 and at most {MAX_MIN_REQUESTS:,}; "
                f"got {self.min_requests}"
            )

    def checked_new(self) -> RolloutPlan:
        """This plan, if a rollout may start with it (stored ones are read as they were)."""
        check_bake(self.bake_s)  # 0 advanced each step on its first answers
        if self.min_requests < 1:  # 0 let a candidate that answered nothing advance to 100%
            raise BadRequest(
                f"min_requests must be at least 1: a step advances on the version's answers, "
                f"and one that answers none (it fails to load) must not; got {self.min_requests}"
            )
        return self

    @property
    def shadow_first(self) -> bool:
        """Whether the candidate is first compared as a shadow (no caller sees it)."""
        return self.min_agreement is not None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "steps": list(self.steps)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> RolloutPlan:
        """A plan from its stored or requested form; BadRequest naming what is wrong."""
        known = {"steps", "bake_s", "max_error_rate", "max_p99_ms", "min_agreement"}
        known |= {"min_requests", "shadow_sample", "settle_s"}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise BadRequest(
                f"unknown rollout settings [{shown_names(unknown)}]; known: {sorted(known)}"
            )
        lacks = [key for key in ("bake_s", "max_error_rate") if key not in doc]
        if lacks:
            raise BadRequest(
                "a rollout plan needs steps, bake_s and max_error_rate; this one lacks "
                f"{', '.join(lacks)} (e.g. 'bake_s': 300, 'max_error_rate': 0.01)"
            )
        steps = doc.get("steps")
        if not isinstance(steps, list | tuple):
            raise BadRequest("steps must be a list of shares such as [0.1, 0.5, 1]")
        try:
            return cls(**{**doc, "steps": tuple(steps)})
        except TypeError as exc:
            raise BadRequest(f"invalid rollout plan: {exc}") from None


def plan_schema() -> dict[str, Any]:
    """The JSON Schema of a plan as a client sends it (the control plane's OpenAPI): the keys
    and limits `RolloutPlan` checks. Documentation only: the plan's own checks still decide,
    and their 400 names what is wrong. Not expressible here: the steps rise and end at 1."""
    share = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
    seconds = {"type": "number", "minimum": 0, "maximum": MAX_BAKE_S}
    return {
        "type": "object",
        "required": ["steps", "bake_s", "max_error_rate"],
        "additionalProperties": False,
        "properties": {
            "steps": {
                "type": "array",
                "items": share,
                "minItems": 1,
                "maxItems": MAX_STEPS,
                "description": "the candidate's shares, each above the one before, the last 1",
            },
            "bake_s": {
                **seconds,
                "minimum": MIN_BAKE_S,
                "description": "seconds each step is watched",
            },
            "max_error_rate": {"type": "number", "minimum": 0, "maximum": 1},
            "max_p99_ms": {"type": "number", "exclusiveMinimum": 0},
            "min_agreement": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "set: a shadow stage first, judged on agreement",
            },
            "min_requests": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_MIN_REQUESTS,
                "default": DEFAULT_MIN_REQUESTS,
            },
            "shadow_sample": {**share, "default": DEFAULT_SHADOW_SAMPLE},
            "settle_s": {
                **seconds,
                "description": "seconds a move takes to reach every server before a bake "
                "starts (default: the alias TTL where servers re-read it on a timer)",
            },
        },
    }


def _check_range(
    name: str, value: object, low: float, high: float, *, low_open: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise BadRequest(f"{name} must be a number; got {shown(value)}")
    if value < low or value > high or (low_open and value == low):
        bound = f"above {low:g}" if low_open else f"at least {low:g}"
        if math.isinf(high):  # "and at most inf" told the user nothing
            raise BadRequest(f"{name} must be {bound}; got {value!r}")
        top = f"{int(high):,}" if high >= 1e6 and float(high).is_integer() else f"{high:g}"
        raise BadRequest(f"{name} must be {bound} and at most {top}; got {value!r}")


def check_bake(bake_s: object, low: float = MIN_BAKE_S) -> None:
    """The bake within [low, MAX_BAKE_S], refused in the bounds a new rollout is given (a
    stored plan may bake 0): a user's `--bake 8d` is not told "at least 0". `aiaas rollout
    --bake` checks it as it parses the flag, a usage error (exit 2) like `--bake 5x`."""
    if isinstance(bake_s, bool) or not isinstance(bake_s, int | float) or math.isnan(bake_s):
        raise BadRequest(f"bake must be a number; got {shown(bake_s)}")
    if not low <= bake_s <= MAX_BAKE_S:
        raise BadRequest(
            f"bake must be at least {MIN_BAKE_S:g} s and at most {MAX_BAKE_S:,} s (a week); "
            f"got {bake_s:g} s"
        )


def _check_steps(steps: tuple[float, ...]) -> None:
    if not steps or len(steps) > MAX_STEPS:
        raise BadRequest(f"a rollout has 1 to {MAX_STEPS} steps; got {len(steps)}")
    for step in steps:
        _check_range("a step", step, 0, 1, low_open=True)
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise BadRequest(f"steps must rise: each share above the one before; got {list(steps)}")
    if steps[-1] != 1:
        raise BadRequest(f"the last step must send all traffic (100); got {list(steps)}")


def parse_steps(text: str) -> tuple[float, ...]:
    """`10,50,100` (percent) -> (0.1, 0.5, 1.0)."""
    try:
        percents = [float(part) for part in text.split(",")]
    except ValueError:
        raise BadRequest(f"steps must be percentages such as 10,50,100; got {text!r}") from None
    # Checked here in the caller's percent: `--steps 10,150` was refused as "at most 1; got 1.5"
    # and `--steps 10,5` as "got [0.1, 0.05]", numbers the user never typed.
    if not all(0 < p <= 100 for p in percents):
        raise BadRequest(f"steps are percentages above 0 and at most 100; got {text!r}")
    if any(b <= a for a, b in itertools.pairwise(percents)) or percents[-1] != 100:
        raise BadRequest(f"steps must rise, each above the one before, to 100; got {text!r}")
    steps = tuple(round(p / 100, 6) for p in percents)
    if steps[0] <= 0 or any(b <= a for a, b in itertools.pairwise(steps)):
        # was "a step must be above 0 ...; got 0.0" for 1e-9, in shares the user never typed
        kept = ",".join(f"{step * 100:g}" for step in steps)
        raise BadRequest(
            f"steps are kept to 0.0001 percent, and {text!r} would be {kept}: each must stay "
            "above 0 and above the one before"
        )
    _check_steps(steps)
    return steps


def parse_duration(text: str) -> float:
    """`5m`, `30s`, `1h`, `500ms` or plain seconds -> seconds."""
    found = _DURATION.match(text.strip())
    if found is None:
        raise BadRequest(f"a duration is a number with s, m, h or ms, such as 5m; got {text!r}")
    return float(found.group(1)) * _UNIT_S[found.group(2)]


def poll_seconds(plan: RolloutPlan) -> float:
    """How often to check: a tenth of a bake, within [MIN_POLL_S, MAX_POLL_S]."""
    return min(max(plan.bake_s / 10, MIN_POLL_S), MAX_POLL_S)


def unwatched_after(plan: RolloutPlan) -> float:
    """Seconds without a check or log entry after which a rollout's driver has stopped: three
    missed checks and 10 s more (a slow scrape, a store answering late). `aiaas rollout status`
    says NOT WATCHED past it, and only then may `aiaas rollout resume` take the rollout over."""
    return 3 * poll_seconds(plan) + 10


def settle_after(alias_ttl: float) -> float:
    """The settle of servers that re-read an alias every `alias_ttl` seconds: the TTL and
    REREAD_MARGIN_S for the re-read itself (0 when they read it on every request)."""
    return alias_ttl + REREAD_MARGIN_S if alias_ttl > 0 else 0.0
