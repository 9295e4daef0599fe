"""A rollout's error rate counts the candidate's 4xx past what the baseline's 4xx rate explains.

`--max-error-rate` counted 5xx only: a candidate answering 422 to requests its baseline took
(a new vocabulary, a value it now refuses) baked "within every limit" and went to 100%. A 4xx
is the caller's while both versions refuse alike (a bad request is bad for either), so only
the candidate's 4xx beyond the baseline's rate in the same window, with room for chance,
count; the decision is pure (decision.py), and the local gateway's metrics carry each
version's 4xx (infra/local/rollout_metrics.py) as CloudWatch's EMF dimensions do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.rollout.decision import Action, StepMetrics, VersionStats, decide
from functions.runtime.rollout.record import RolloutState
from infra.local.rollout_metrics import Scrape
from tests.functions.test_predict_events import http_event
from tests.runtime.test_rollout_engine import ROW, Setup, plan


def judged(baseline: VersionStats, candidate: VersionStats) -> tuple[Action, str]:
    """The first step's verdict once baked, at a 1% limit over 20 requests."""
    found = decide(plan(min_requests=20), 0, 1.0, StepMetrics(baseline, candidate))
    return found.action, found.reason


def test_a_candidate_refusing_what_the_baseline_takes_is_rolled_back() -> None:
    baseline = VersionStats(requests=900, client_errors=0)
    assert judged(baseline, VersionStats(requests=100, client_errors=100)) == (
        Action.ROLL_BACK,
        "error rate 97/100 requests (0 5xx, 97 4xx past the baseline's 4xx rate 0.0%) is over "
        "the limit 0.01",
    )
    # ... on its first refusals, as a 5xx would be (divided by --min-requests meanwhile)
    action, _ = judged(baseline, VersionStats(requests=5, client_errors=5))
    assert action is Action.ROLL_BACK


@pytest.mark.parametrize(
    ("baseline", "candidate"),
    [
        # the callers' own bad requests, refused by both at the same rate, stay theirs
        (VersionStats(requests=900, client_errors=45), VersionStats(requests=100, client_errors=5)),
        # chance: 8 where 5 were expected, and a few with a baseline that refused none
        (VersionStats(requests=900, client_errors=45), VersionStats(requests=100, client_errors=8)),
        (VersionStats(requests=900), VersionStats(requests=100, client_errors=3)),
        # a baseline that answered under --min-requests (at 100% it answers none) sets no rate
        (VersionStats(requests=10), VersionStats(requests=990, client_errors=990)),
    ],
)
def test_4xx_the_baseline_explains_are_not_errors(
    baseline: VersionStats, candidate: VersionStats
) -> None:
    assert judged(baseline, candidate) == (Action.ADVANCE, "the step baked within every limit")


def test_bad_requests_both_versions_refuse_do_not_stop_a_rollout(tmp_path: Path) -> None:
    """Real predict service and gateway metrics: a fifth of the requests have 3 values where
    the model reads 4 (422 from either version); the healthy candidate still goes to 100%."""
    setup = Setup(tmp_path, "healthy")
    rows = [[0.5, -1.0, 2.0, 0.25]] * 4 + [[1.0, 2.0, 3.0]]
    record = setup.engine.start("ro", "2", plan(), alias="production", actor="tester")
    checks = []
    for _ in range(200):
        if not record.running:
            break
        setup.send(40, rows)
        record = setup.engine.check("ro", "production", "tester")
        checks.append((record.last_check or {})["metrics"])
    assert record.state is RolloutState.SUCCEEDED, record.log
    refused = {version for version, status in setup.answers if status == 422}
    assert refused == {"1", "2"}  # both versions were sent, and refused, bad rows
    # each version's 4xx were counted by some check (routing is random: at the first step's 10%
    # the candidate drew none of its 8 bad rows in 43% of runs, so no one check is certain to)
    assert any(c["baseline"]["client_errors"] > 0 for c in checks)
    assert any(c["candidate"]["client_errors"] > 0 for c in checks)


def test_requests_refused_before_routing_are_not_the_baseline_s_4xx(tmp_path: Path) -> None:
    """A request the function refuses before routing picks a version (an unknown query
    parameter's 400; a body over AIAAS_MAX_PAYLOAD_BYTES, bad base64) was counted for the
    version answering now, the baseline, under the rolled-out alias: the candidate, which never
    gets those, had their rate as room for its own 4xx (with a fifth of the callers sending
    `?bogus=1`, a candidate refusing a fifth of its requests baked 'within every limit'). They
    are counted under alias '-', as the gateway's own refusals are: the split never routed them."""
    setup = Setup(tmp_path, "healthy")
    setup.engine.start("ro", "2", plan(), alias="production", actor="tester")
    for _ in range(20):
        setup.send(4)
        body = json.dumps({"inputs": ROW})
        answer = setup.service.handle(
            http_event("POST", "/models/ro/predict", body, query={"bogus": "1"})
        )
        assert answer["statusCode"] == 400
        assert answer["headers"]["x-aiaas-version"] == "1"  # still named, as before
    scrape = Scrape.parse(setup.gateway.render()[0].decode())
    routed = {k: v for k, v in scrape.refused.items() if k[1] == "production"}
    assert routed == {}  # was {("ro", "production", "1"): 20.0}
    assert scrape.refused[("ro", "-", "1")] == 20  # still counted, for the version answering
