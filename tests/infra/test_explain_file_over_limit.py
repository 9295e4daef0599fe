"""`aiaas explain --file` sends a row alone before it refuses it as over the time limit, so the
data plane's "send fewer rows or ask for fewer samples" named a way out the command had taken
already and one it calls otherwise (hunt_journey4): the row's error line names `--samples N`
and AIAAS_EXPLAIN_MAX_SECONDS instead. A request to the data plane keeps its own words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from tests.infra.test_cli_explain import cli, store, write_csv

__all__ = ["store"]  # the fixture: a linear classifier published as iris:1


def test_a_row_over_the_limit_alone_names_the_commands_ways_out(
    store: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = np.random.default_rng(0).normal(size=(3, 4)).round(3)
    data = write_csv(tmp_path / "rows.csv", rows)
    assert cli(store, capsys, "baseline", "iris", str(data))[0] == 0
    monkeypatch.setenv("AIAAS_EXPLAIN_MAX_SECONDS", "1e-6")  # no row fits
    out = tmp_path / "why.jsonl"
    code, _, err = cli(store, capsys, "explain", "iris", "--file", str(data), "--out", str(out))
    assert code == 1 and "3 row(s) could not be explained" in err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["row"] for line in lines] == [0, 1, 2]
    for line in lines:
        error = line["error"]
        assert error.startswith("this explanation needs about "), error
        assert "the limit is 1e-06 s (AIAAS_EXPLAIN_MAX_SECONDS): sent alone, this row does " \
            "not fit; a lower --samples N" in error, error  # fmt: skip
        assert "a higher AIAAS_EXPLAIN_MAX_SECONDS" in error, error
        assert "send fewer rows" not in error, error  # it was sent alone
    # A request of its own (the data plane's answer) keeps the request's ways out.
    code, _, err = cli(store, capsys, "explain", "iris", "--inputs", "[[1, 2, 3, 4]]")
    assert code == 1 and "send fewer rows or ask for fewer samples" in err, err
