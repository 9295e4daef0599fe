"""SIGTERM to `aiaas train --publish --alias A` once its version exists ends it as `publish` ends
at that moment: exit 0, the alias set, the run's --out folder kept, the document printed.

It said "interrupted" (143) with the version published: the alias never set, --out removed,
and the retried job (the same --version) refused as already published, so no retry ever set
the alias (rev13 2). The real `aiaas` console entry (launch.py) in a process of its own; the
SIGTERM is sent to that process right after the version's manifest is written, before the
alias.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.infra.test_cli_stopped_at_manifest import quick

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "training" / "specs" / "iris-logistic.yaml"
# The console script's entry, with a SIGTERM to itself once the version is published.
STOPPED = """
import os, signal, sys
import training.publish
from infra.cli import launch
point = training.publish.point_alias_at_published
def stop_then_point(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)  # the manifest is written: the version exists
    return point(*args, **kwargs)
training.publish.point_alias_at_published = stop_then_point
sys.argv = ["aiaas", *sys.argv[1:]]
sys.exit(launch.main())
"""


def test_sigterm_once_the_version_exists_finishes_the_alias_and_keeps_the_run(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    out = tmp_path / "runs"
    argv = ["--store", store.uri, "train", str(quick(SPEC, tmp_path)), "--publish"]
    argv += ["--version", "ci-4"]
    argv += ["--alias", "staging", "--json", "--no-progress", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", STOPPED, *argv],
        capture_output=True,
        text=True,
        timeout=240,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        start_new_session=True,  # as a runner's job: no terminal
    )
    assert done.returncode == 0, done.stderr[-2000:]  # was 143, "interrupted"
    document = json.loads(done.stdout)
    assert (document["version"], document["alias"]) == ("ci-4", "staging")
    assert Registry(store).alias("iris-logistic", "staging") == "ci-4"
    assert (out / "manifest.json").is_file()  # the run's folder kept
