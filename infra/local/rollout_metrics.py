"""A rollout's metrics from a running `aiaas serve`: its `/metrics` (Prometheus text).

Only requests the rolled-out alias's split routed are counted (the `alias` label): a request
pinned to a version (`/models/{name}/versions/{version}/...`, alias '-') or served through
another alias is no evidence of how the split does. The gateway's counters and histograms
are cumulative since it started, so a window's figures
are the difference between a scrape now and the one taken when the window began (`begin`).
The p99 comes from the latency histogram's buckets in that window, interpolated within its
bucket as Prometheus' histogram_quantile does (so it is known to a bucket's width: the
buckets run from 0.1 ms to 30 s, about 2.5x apart).
"""

from __future__ import annotations

import itertools
import math
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from functions.predict.metric_names import (
    LATENCY,
    LATENCY_BUCKETS,
    NO_LABEL,
    REQUESTS,
    SHADOW_AGREED,
    SHADOW_BY_INDEX,
    SHADOW_ERRORS,
    SHADOW_REQUESTS,
    SHADOW_ROWS,
)
from functions.runtime.errors import StoreError
from functions.runtime.refs import DEFAULT_ALIAS
from functions.runtime.rollout.decision import ShadowStats, StepMetrics, VersionStats
from infra.local.client_token import SET_ONE, ClientToken
from infra.local.credential_redirects import CredentialRedirect, open_url

_SHADOW = (SHADOW_REQUESTS, SHADOW_ERRORS, SHADOW_ROWS, SHADOW_AGREED, SHADOW_BY_INDEX)
_LATENCY_BUCKET = LATENCY + "_bucket"
Versions = tuple[str, str]  # a rollout's baseline and candidate


@dataclass
class Scrape:
    """The figures of one scrape, per model, routing alias and version (and version pair for
    shadows). A request pinned to a version counts under alias '-' (routed by no split)."""

    requests: dict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    errors: dict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    refused: dict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    buckets: dict[tuple[str, str, str, float], float] = field(
        default_factory=lambda: defaultdict(float)
    )
    shadow: dict[tuple[str, str, str, str], float] = field(
        default_factory=lambda: defaultdict(float)
    )

    @classmethod
    def parse(cls, text: str) -> Scrape:
        scrape = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                scrape.add(sample.name, sample.labels, sample.value)
        return scrape

    def restarted_since(self, before: Scrape, model: str, alias: str, versions: Versions) -> bool:
        """Whether the gateway restarted between `before` and this scrape: a count the window
        judges went down (they only rise while it runs). The differences were negative, so a
        restart mid-step hid every request, error and breach until the counts rose past their
        old values. Only the window's own series (the two versions through `alias`, and the
        candidate as the baseline's shadow): another version's leave a running gateway once
        `aiaas prune` removed it (AIAAS_METRICS_GONE_AFTER_S), and taking that for a restart
        judged the step on every count since the gateway started, requests answered before
        the rollout began included (a step advanced with no request sent during it)."""
        baseline, candidate = versions
        keys = [(model, alias, baseline), (model, alias, candidate)]
        shadow = (SHADOW_REQUESTS, model, baseline, candidate)
        went_down = any(self.requests.get(k, 0.0) < before.requests.get(k, 0.0) for k in keys)
        return went_down or self.shadow.get(shadow, 0.0) < before.shadow.get(shadow, 0.0)

    def add(self, name: str, labels: dict[str, str], value: float) -> None:
        model, version = labels.get("model", ""), labels.get("version", "")
        if name == REQUESTS:
            alias = labels.get("alias", NO_LABEL)  # a gateway of before the label: unrouted
            self.requests[model, alias, version] += value
            if labels.get("status_class") == "5xx":
                self.errors[model, alias, version] += value
            elif labels.get("status_class") == "4xx":
                self.refused[model, alias, version] += value
        elif name == _LATENCY_BUCKET:
            alias = labels.get("alias", NO_LABEL)
            self.buckets[model, alias, version, float(labels["le"])] += value
        elif name in _SHADOW:
            self.shadow[name, model, version, labels.get("shadow_version", "")] += value


def http_scrape(
    url: str, token: ClientToken | None = None, timeout: float = 10.0
) -> Callable[[], str]:
    """A scrape of `url` (e.g. http://127.0.0.1:8080/metrics), with the gateway's token (asked
    for at each scrape: a token file is followed through a rotation)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the metrics URL must be http(s)://...; got {url!r}")

    def scrape() -> str:
        request = urllib.request.Request(url)  # noqa: S310 - http(s) only, checked above
        sent = token() if token is not None else None
        if sent:
            request.add_header("Authorization", f"Bearer {sent}")
        try:
            with open_url(request, timeout=timeout) as answer:  # the token stays on its origin
                return str(answer.read().decode())
        except OSError as exc:
            fix = _fix(exc, token if sent else None)
            raise StoreError(f"cannot read the gateway's metrics at {url}: {exc} ({fix})") from exc

    return scrape


def _fix(exc: OSError, sent: ClientToken | None) -> str:
    """What the person running the rollout should do about a failed scrape."""
    if isinstance(exc, CredentialRedirect):
        return "give --metrics the gateway's own /metrics URL"
    if isinstance(exc, urllib.error.HTTPError) and exc.code in (401, 403):
        if sent is not None:
            return f"the gateway refused the token sent ({sent.source()}); give one it accepts: {SET_ONE}"
        return f"the gateway wants its token: {SET_ONE}"
    return "is `aiaas serve` running there? start it, or give its /metrics URL with --metrics"


class GatewayMetricsSource:
    """The `MetricsSource` of functions/runtime/rollout over one gateway's `/metrics`."""

    def __init__(self, scrape: Callable[[], str]) -> None:
        self.scrape = scrape
        self._zero: dict[tuple[str, float], Scrape] = {}

    def begin(self, model: str, since: float) -> None:
        self._zero = {(model, since): Scrape.parse(self.scrape())}

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = DEFAULT_ALIAS
    ) -> StepMetrics:
        now = Scrape.parse(self.scrape())
        zero = self._zero.get((model, since))
        if zero is None:  # a window this source did not open (another process did): from now
            self._zero[model, since] = now
            zero = now
        elif now.restarted_since(zero, model, alias, (baseline, candidate)):  # all since then
            zero = self._zero[model, since] = Scrape()
        return StepMetrics(
            baseline=_version(now, zero, (model, alias, baseline)),
            candidate=_version(now, zero, (model, alias, candidate)),
            shadow=_shadow(now, zero, model, baseline, candidate),
        )


def _version(now: Scrape, zero: Scrape, key: tuple[str, str, str]) -> VersionStats:
    """A version's requests routed by one alias's split: `key` is (model, alias, version)."""
    requests = now.requests.get(key, 0.0) - zero.requests.get(key, 0.0)
    errors = now.errors.get(key, 0.0) - zero.errors.get(key, 0.0)
    counts = sorted(
        (le, count - zero.buckets.get((m, a, v, le), 0.0))
        for (m, a, v, le), count in now.buckets.items()
        if (m, a, v) == key
    )
    refused = now.refused.get(key, 0.0) - zero.refused.get(key, 0.0)
    p99, bucket = _quantile(0.99, counts)
    return VersionStats(requests, errors, p99, refused, bucket)


def _quantile(
    q: float, cumulative: list[tuple[float, float]]
) -> tuple[float | None, tuple[float, float] | None]:
    """The q-quantile in ms from cumulative (upper bound, count) buckets, and the bucket it
    lies in (ms); None, None when empty."""
    if not cumulative or cumulative[-1][1] <= 0:
        return None, None
    rank = q * cumulative[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in cumulative:
        if count >= rank:
            if math.isinf(upper):  # past the last finite bucket: its bound is all we know
                return lower * 1000, None
            inside = count - below
            fraction = (rank - below) / inside if inside else 1.0
            return (lower + (upper - lower) * fraction) * 1000, (_ms(lower), _ms(upper))
        lower, below = upper, count
    return None, None


def _ms(seconds: float) -> float:
    """A bucket bound in ms as written (0.025 s is 25 ms, not 25.000000000000004)."""
    return round(seconds * 1000, 6)


def p99_limit_inside_bucket(limit_ms: float) -> str | None:
    """A warning for a --max-p99-ms that lies inside one of the gateway's latency buckets (the
    p99 there is interpolated: known only to the bucket), or None for a limit on a bound."""
    bounds = [0.0, *(_ms(bound) for bound in LATENCY_BUCKETS)]
    for low, high in itertools.pairwise(bounds):
        if low < limit_ms < high:
            return (
                f"--max-p99-ms {limit_ms:g} lies inside the gateway's latency bucket "
                f"{low:g}-{high:g} ms: a p99 there is interpolated within the bucket (as "
                f"Prometheus' histogram_quantile does), so a version whose requests all take "
                f"just over {low:g} ms can read as nearly {high:g} ms and be rolled back, and "
                f"one at nearly {high:g} ms can pass; a limit on a bucket bound ({low:g} or "
                f"{high:g} ms) is judged exactly"
            )
    return None


def _shadow(now: Scrape, zero: Scrape, model: str, baseline: str, candidate: str) -> ShadowStats:
    def delta(name: str) -> float:
        key = (name, model, baseline, candidate)
        return now.shadow.get(key, 0.0) - zero.shadow.get(key, 0.0)

    rows, agreed = delta(SHADOW_ROWS), delta(SHADOW_AGREED)
    labelled = (SHADOW_AGREED, model, baseline, candidate) in now.shadow
    return ShadowStats(
        copies=delta(SHADOW_REQUESTS),
        errors=delta(SHADOW_ERRORS),
        rows=rows,
        agreed=agreed if labelled else None,
        by_index=delta(SHADOW_BY_INDEX),
    )
