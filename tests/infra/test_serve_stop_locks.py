"""A stop signal landing while `aiaas serve`'s start holds a lock the exit path takes.

granian's server sets up its logging as it is built (logging.config.dictConfig, which holds
logging's module lock throughout), after the banner and before it takes the stop signals over.
A SIGTERM landing there ran the interpreter's exit handlers on a thread, and logging's
shutdown waited for that lock, held by the thread the signal had interrupted: the stop took
the exit handlers' whole bound (10 s) and exited 1, "captured lines ... are lost", with
nothing captured (1 CI run of tests/infra/test_cli_fatal_lines.py). The real CLI in a
subprocess; the only change is that the signal is sent from inside granian's logging set-up,
where it landed by chance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.infra.test_cli_fatal_lines import free_port

ROOT = Path(__file__).resolve().parents[2]

# The CLI's main, with SIGTERM sent to itself by the first dictConfig call (granian's), while
# it holds logging's lock, as a signal landing in it does.
SIGNAL_IN_DICTCONFIG = """
import logging, logging.config, os, signal, sys, time
from infra.cli.early_stop import early_stop

early_stop()
from infra.cli.main import main

configure = logging.config.dictConfig

def signalled(config):
    logging.config.dictConfig = configure
    with logging._lock:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs here, at the first bytecode after the signal
    return configure(config)

logging.config.dictConfig = signalled
sys.exit(main())
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_stop_inside_the_servers_logging_set_up_is_a_clean_stop(
    tmp_path: Path, workers: str
) -> None:
    (tmp_path / "aiaas_signalled.py").write_text(textwrap.dedent(SIGNAL_IN_DICTCONFIG))
    (tmp_path / "store").mkdir()
    env = {**os.environ, "AIAAS_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)}
    env.pop("AIAAS_API_TOKEN", None)
    args = ["--store", str(tmp_path / "store"), "serve", "--port", str(free_port())]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(tmp_path / "aiaas_signalled.py"), *args, "--workers", workers],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=30,
    )
    took = time.monotonic() - started
    lines = [json.loads(x) for x in (done.stdout + done.stderr).decode().splitlines()]
    assert done.returncode == 0, lines
    assert lines[0]["message"].startswith("aiaas serve: http://"), lines  # past the banner
    assert lines[-1]["message"] == "aiaas serve: stopped", lines
    assert not any(x["level"] == "ERROR" for x in lines), lines
    assert took < 8, took  # the start itself (imports) and the stop, not a 10 s wait
