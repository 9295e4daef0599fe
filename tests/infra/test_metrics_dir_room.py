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

from functions.runtime.errors import BadRequest
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


def test_the_workers_metrics_files_have_their_blocks_before_they_are_mapped(
    tmp_path: Path,
) -> None:
    """The cache disk filling while serving was the same SIGBUS a little later: a worker's
    file is mapped sparse and grown sparse, so a new series wrote to a page no block backed.
    Every byte mapped is now allocated first (st_blocks), growth included."""
    from infra.local.metrics_room import BackedMmapedDict

    path = tmp_path / "counter_1.db"
    mapped = BackedMmapedDict(str(path))
    assert path.stat().st_blocks * 512 >= mapped._capacity == 1 << 16
    for i in range(3000):  # ~190 KB of keys: the file doubles twice
        mapped.write_value(f'["aiaas_requests_total", "m", {{"series": "{i}"}}]', 1.0, 0.0)
    assert mapped._capacity >= 1 << 18
    assert path.stat().st_blocks * 512 >= mapped._capacity
    assert (
        dict((k, v) for k, v, _ in mapped.read_all_values())[
            '["aiaas_requests_total", "m", {"series": "2999"}]'
        ]
        == 1.0
    )
    mapped.close()


FULL_DISK = """
import logging, os, resource, signal, sys
from pathlib import Path
logging.basicConfig(format="%(levelname)s %(message)s")
from infra.local.prometheus import PrometheusFamilies
families = PrometheusFamilies(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
families.request("m", "1", "r", "2xx", 0.001)  # a series with its blocks, before the disk fills
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit: EFBIG, as ENOSPC on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, resource.RLIM_INFINITY))
for i in range(400):  # new series: the files must grow, and cannot
    families.request(f"model-{i}", "1", "r", "2xx", 0.001)
families.request("m", "1", "r", "2xx", 0.001)
print(families.render()[0].decode())
"""


def test_a_new_series_on_a_full_disk_is_dropped_with_one_warning(tmp_path: Path) -> None:
    """A worker whose files cannot grow (the file size limit stands in for a full disk, which
    needs root to make) keeps serving: new series are not counted, said once, old ones are."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("cannot add a metrics series") == 1, done.stderr
    series = 'aiaas_requests_total{alias="-",model="m",route="r",status_class="2xx",version="1"}'
    assert f"{series} 2.0" in done.stdout


def test_no_usable_directory_is_one_line_naming_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pod with a read-only root and its scratch volume missing (TMPDIR and AIAAS_CACHE_DIR
    under it) crashed at start with tempfile's "No usable temporary directory found" and a
    stack trace, naming neither setting (k8s hunt)."""
    (tmp_path / "ro").write_text("")  # nothing can be made under a file (tests run as root)
    scratch = tmp_path / "ro" / "scratch"
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(md.tempfile, "tempdir", None)  # tempfile caches its first answer

    def unusable() -> str:
        raise FileNotFoundError(2, "No usable temporary directory found")

    monkeypatch.setattr(md.tempfile, "gettempdir", unusable)
    parents = md.default_parents(scratch / "aiaas")
    assert parents == [scratch / "aiaas" / "metrics", scratch]
    with pytest.raises(BadRequest) as raised, md.metrics_dir(parents):
        pass
    said = raised.value.message
    assert said.startswith("no directory for the workers' metrics: ")
    assert said.endswith(
        "point AIAAS_CACHE_DIR or TMPDIR at a writable directory with 16 MiB free, or serve "
        "with --workers 1 (which keeps none)"
    )
