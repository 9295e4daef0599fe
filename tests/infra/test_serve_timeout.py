"""`aiaas serve` answers a call that outlasts its function's `Timeout` with a 504, as Lambda
ends the invocation there; before, the caller waited for as long as the model ran."""

from __future__ import annotations

import json
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.infra.test_serve import ServeProcess, start_serve
from tests.infra.test_serve_shutdown import ENTERED, SLOW_TEMPLATE, SLOWER_HANDLER

# 2 s, not 4: kept short (a stop no longer waits for the thread: the last test here). It
# counts its requests as the predict function does, through the gateway's metrics.
HANDLER = SLOWER_HANDLER.replace("seconds = 4 if", "seconds = 2 if").replace(
    '    return {"statusCode": 200,',
    "    if seconds:\n"
    '        OBSERVERS[0].request("slowmodel", "1", "GET /slow", "2xx", seconds)\n'
    "        entered()  # once more: counted\n"
    '    return {"statusCode": 200,',
) + ("\nOBSERVERS = []\n\ndef observe(observer):\n    OBSERVERS.append(observer)\n")

TEMPLATE = SLOW_TEMPLATE.replace(
    "      Runtime: python3.12\n", "      Runtime: python3.12\n      Timeout: 1\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("timeout")
    (root / "aiaas_slow_handler.py").write_text(ENTERED + textwrap.dedent(HANDLER))
    (root / "template.yaml").write_text(textwrap.dedent(TEMPLATE))
    (root / "store").mkdir()
    args = ("--template", str(root / "template.yaml"))
    yield from start_serve(root / "store", *args, env={"PYTHONPATH": str(root)})


def test_a_call_over_its_function_timeout_gets_a_504_and_the_server_answers_on(
    server: ServeProcess,
) -> None:
    assert "Timeout: 1" in TEMPLATE
    began = time.monotonic()
    answer = httpx.get(f"{server.base}/slow", timeout=10)  # the handler sleeps 2 s
    took = time.monotonic() - began
    assert answer.status_code == 504 and 1.0 <= took < 2.5, (answer.text, took)
    assert answer.json() == {"error": "the function did not answer within its Timeout of 1 s"}
    assert httpx.get(f"{server.base}/v2/health/ready", timeout=5).status_code == 200
    said = [line for line in server.output().splitlines() if "/slow did not answer" in line]
    assert "did not answer within its 1 s timeout" in said[0]
    # the id the caller got: its 504 is found in the log by it
    assert json.loads(said[0])["request_id"] == answer.headers["apigw-requestid"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stop_after_a_504_does_not_wait_for_the_thread_that_runs_on(
    tmp_path: Path, workers: int
) -> None:
    """granian ends a worker once its requests are answered; the 504'd call's thread had no
    caller left, yet the stop joined it on the event loop, where the grace's own timer could
    no longer fire: a handler 20 s past its Timeout held the stop 19 s (a Loop, ~1,000 s);
    with 2 workers, then said it killed a worker that "refused to gracefully stop"."""
    (tmp_path / "aiaas_slow_handler.py").write_text(
        ENTERED + textwrap.dedent(SLOWER_HANDLER.replace("seconds = 4 if", "seconds = 20 if"))
    )
    (tmp_path / "template.yaml").write_text(textwrap.dedent(TEMPLATE))
    (tmp_path / "store").mkdir()
    args = ("--template", str(tmp_path / "template.yaml"), "--workers", str(workers))
    server = ServeProcess(tmp_path / "store", *args, env={"PYTHONPATH": str(tmp_path)})
    try:
        server.wait_ready()
        assert httpx.get(f"{server.base}/slow", timeout=10).status_code == 504
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=10)
        assert time.monotonic() - began < 3, server.output()
        assert server.process.returncode == 0 and "Killing" not in server.output()
    finally:
        server.stop()


def test_a_call_answered_504_is_counted_once_not_again_when_its_thread_ends(
    server: ServeProcess,
) -> None:
    """The gateway counted the 504, then the function counted the same request again (a 2xx
    with its model's labels) when its thread finished: two requests in `/metrics` for one.
    Two calls, the second once the first's thread has ended and its time is recorded: a route
    whose function tells its model time (`model_seconds()`) stays on a thread, where its
    Timeout is kept; taken for a readiness route, it went inline and answered 200 after 2 s."""
    entered = server.store.parent / "entered"
    for _ in range(2):
        marks = len(entered.read_text().splitlines()) if entered.exists() else 0
        assert httpx.get(f"{server.base}/slow", timeout=10).status_code == 504
        deadline = time.monotonic() + 10
        while len(entered.read_text().splitlines()) < marks + 2:  # the handler counted, ended
            assert time.monotonic() < deadline, "the handler did not finish"
            time.sleep(0.05)
    time.sleep(0.2)
    text = httpx.get(f"{server.base}/metrics", timeout=5).text
    counted = [line for line in text.splitlines() if line.startswith("aiaas_requests_total{")]
    assert not [line for line in counted if 'model="slowmodel"' in line], counted
    assert any('route="GET /slow"' in line and 'status_class="5xx"' in line for line in counted)


@pytest.mark.slow
def test_a_timeout_over_the_http_api_s_is_cut_at_its_30_s(tmp_path: Path) -> None:
    """API Gateway answers an HTTP API request at 30 s whatever the function's Timeout; `aiaas
    serve` waited the whole Timeout (900 s for a model given Lambda's most), so local and
    deployed answers disagreed."""
    handler = SLOWER_HANDLER.replace("seconds = 4 if", "seconds = 33 if")
    (tmp_path / "aiaas_slow_handler.py").write_text(ENTERED + textwrap.dedent(handler))
    template = TEMPLATE.replace("Timeout: 1\n", "Timeout: 40\n")
    (tmp_path / "template.yaml").write_text(textwrap.dedent(template))
    (tmp_path / "store").mkdir()
    args = ("--template", str(tmp_path / "template.yaml"))
    for server in start_serve(tmp_path / "store", *args, env={"PYTHONPATH": str(tmp_path)}):
        began = time.monotonic()
        answer = httpx.get(f"{server.base}/slow", timeout=45)
        took = time.monotonic() - began
        assert answer.status_code == 504 and 30 <= took < 32, (answer.text, took)
        assert answer.json() == {
            "error": "the function did not answer within the HTTP API's 30 s (API Gateway's "
            "integration timeout; its Timeout is 40 s)"
        }
        assert httpx.get(f"{server.base}/v2/health/ready", timeout=5).status_code == 200
