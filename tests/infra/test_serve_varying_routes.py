"""Which calls of a model whose cost a request's VALUE sets `aiaas serve` runs off its event loop,
against the real server and real onnxruntime models (review_rev7 1, 3, 4).

The gateway asks the predict function BEFORE each call whether the version that will answer it
may vary (its graph, read as the version loads: functions/runtime/input_cost.py):
- a pinned route (`/models/mix/versions/1/predict`) is judged on its own version's graph, not on
  the alias's: a Loop pinned there ran inline, judged on the plain current version, and its
  heavy call held every client;
- the first call after a promotion to a varying version runs on a thread: it ran inline (the
  route's earlier calls were on the plain version), held the loop, and read the graph there;
- only the routes that run the model: its readiness and metadata stay inline, so a readiness
  probe is answered at once behind heavy calls, even at `--max-in-flight` (it got a 503).
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from pathlib import Path

import httpx
import pytest
from onnx import TensorProto

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve
from tests.infra.test_serve_heavy_inline import worst_probe

serving = contextlib.contextmanager(start_serve)  # a started server, stopped whatever happens

HEAVY_TRIPS = 1.5e6  # ~1.5 s of a core


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mix` and `moved` v1: a Loop of the request's value trips; v2: y = x (plain); their
    production -> v2. `looping`: the Loop alone."""
    root = tmp_path_factory.mktemp("varying_routes")
    loop = onnx_factory.looping(root / "looping.onnx")
    plain = onnx_factory.identity(root / "plain.onnx", TensorProto.FLOAT, [1, 1])
    published = [
        ("mix", loop),
        ("mix", plain),
        ("moved", loop),
        ("moved", plain),
        ("looping", loop),
    ]
    for name, path in published:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            assert main(["publish", str(path), "--name", name, "--store", str(root / "store")]) == 0
    for name in ("mix", "moved"):
        Registry(LocalStore(root / "store")).set_alias(name, "production", "2")
    return root / "store"


def cheap_calls(http: httpx.Client, path: str) -> None:
    """Cheap calls until an ordinary route would run inline (its first call goes to a thread,
    and its average CPU a call decays by 0.9 a call under 2 ms)."""
    for _ in range(70):
        answer = http.post(path, json={"inputs": [[3]]})
        assert answer.json()["outputs"] == {"y": [[3.0]]}, answer.text


def worst_live_wait(server: ServeProcess, path: str) -> tuple[float, float, httpx.Response]:
    """(the longest a liveness probe waited while a heavy call of `path` ran, how long the call
    took, its answer). Held, a probe waits about the whole call; a load stretches both alike,
    so the bound is half the call, not a fixed time: at 0.5 s, one probe of many asked while
    the Loop ran on a thread waited 0.58 s beside three busy loops (a load of 7 on 2 cores)."""
    answers: list[httpx.Response] = []

    def send() -> None:
        body = {"inputs": [[HEAVY_TRIPS]]}
        answers.append(httpx.post(f"{server.base}{path}", json=body, timeout=120))

    sender = threading.Thread(target=send)
    sender.start()
    worst, took = worst_probe(server, sender)
    return worst, took, answers[0]


def test_a_pinned_varying_version_runs_off_the_loop(store: Path) -> None:
    """v1 (a Loop) pinned, behind a plain production v2: its heavy call leaves the loop free."""
    with serving(store) as server:
        with httpx.Client(base_url=server.base, timeout=120) as http:
            cheap_calls(http, "/models/mix/versions/1/predict")
            cheap_calls(http, "/models/mix/predict")  # v2, plain: inline
            worst, call_s, answer = worst_live_wait(server, "/models/mix/versions/1/predict")
        assert answer.status_code == 200 and answer.json()["version"] == "1", answer.text
        assert worst < call_s / 2, f"a pinned Loop's heavy call held the loop ({worst:.2f} s)"


def test_the_first_call_after_a_promotion_to_a_varying_version_runs_off_the_loop(
    store: Path,
) -> None:
    """Production moves from the plain v2 (its route inline) to v1, a Loop: the first call
    after the move, a heavy one, leaves the loop free."""
    with serving(store) as server:
        with httpx.Client(base_url=server.base, timeout=120) as http:
            cheap_calls(http, "/models/moved/versions/1/predict")  # v1 loaded: no load to time
            cheap_calls(http, "/models/moved/predict")  # v2, plain: inline
            Registry(LocalStore(store)).set_alias("moved", "production", "1")
            worst, call_s, answer = worst_live_wait(server, "/models/moved/predict")
        assert answer.status_code == 200 and answer.json()["version"] == "1", answer.text
        held = f"the first call after the promotion held the loop ({worst:.2f} s of {call_s:.2f})"
        assert worst < call_s / 2, held


def test_a_varying_models_readiness_is_answered_inline_behind_its_heavy_calls(
    store: Path,
) -> None:
    """At `--max-in-flight 2`, with two heavy calls of a Loop in flight: its readiness and
    metadata are answered (inline, at once), not refused with a 503 as a threaded call is."""
    with serving(store, "--max-in-flight", "2") as server:
        with httpx.Client(base_url=server.base, timeout=120) as http:
            # Each route judged on its calls: cheap ones. 120 rounds, so that some of the
            # inline calls timed (one in 16) are readiness and metadata calls: each such
            # answer carried the Loop's recent model time, which sent the route to a thread
            # and its call at the limit to a 503 (failed 2 of 2 at 120 rounds; at 40, once
            # in CI). A route that runs no model now carries none (gateway.py).
            for _ in range(120):
                http.post("/models/looping/predict", json={"inputs": [[2]]})
                http.get("/v2/models/looping/ready")
                http.get("/v2/models/looping")
            heavies: list[httpx.Response] = []

            def send() -> None:
                body = {"inputs": [[HEAVY_TRIPS]]}
                heavies.append(
                    httpx.post(f"{server.base}/models/looping/predict", json=body, timeout=120)
                )

            senders = [threading.Thread(target=send) for _ in range(2)]
            for sender in senders:
                sender.start()
            time.sleep(0.4)  # both run, on threads
            ready = http.get("/v2/models/looping/ready", timeout=5)
            metadata = http.get("/v2/models/looping", timeout=5)
            for sender in senders:
                sender.join()
        assert ready.status_code == 200, ready.text
        assert metadata.status_code == 200, metadata.text
        assert [answer.status_code for answer in heavies] == [200, 200]


def test_only_the_routes_that_run_the_model_are_asked_before_each_call() -> None:
    """The HTTP API's routes, as the gateway names them (the model's name written in)."""
    from functions.predict.routes import runs_model

    runs = [
        "POST /models/m/predict",
        "POST /models/m/versions/{version}/predict",
        "POST /models/m/explain",
        "POST /v2/models/m/infer",
        "POST /v2/models/m/versions/{version}/infer",
        "POST /v2/models/m/explain",
    ]
    runs_not = [
        "GET /v2/models/m/ready",
        "GET /v2/models/m/versions/{version}/ready",
        "GET /v2/models/m",
        "GET /v2/models/m/versions/{version}",
        "GET /v2/health/ready",
        "GET /v2/health/live",
        "GET /models/m/tokenizer",
        "GET /models/m/predict",  # not a route of the function
    ]
    assert [runs_model(route) for route in runs] == [True] * len(runs)
    assert [runs_model(route) for route in runs_not] == [False] * len(runs_not)
