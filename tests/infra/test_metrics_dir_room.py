"""`aiaas serve --workers N` on a full cache disk: its metrics files go elsewhere.

prometheus_client maps each worker's file sparse; on a full disk the first value written there
was a SIGBUS that killed every worker and the server (found running serve for a team with
AIAAS_CACHE_DIR on a full tmpfs). A full filesystem needs root to make, so its free space is
what is stood in for here; the directories are real.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from infra.local import metrics_dir as md


def test_a_full_cache_disk_puts_the_workers_metrics_in_the_next_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    full, roomy = tmp_path / "cache" / "metrics", tmp_path / "tmp"
    real = shutil.disk_usage

    def usage(path: Any) -> Any:
        found = real(path)
        return found._replace(free=0) if Path(path) == full else found

    monkeypatch.setattr(md.shutil, "disk_usage", usage)
    with caplog.at_level(logging.WARNING, "aiaas.gateway"), md.metrics_dir([full, roomy]) as got:
        assert got.parent == roomy
        assert list(full.iterdir()) == []  # nothing made where it could not be written
    assert not got.exists()
    assert "0 MiB free" in caplog.text and str(full) in caplog.text
