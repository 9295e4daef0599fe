"""`aiaas serve` with `HOME` naming a directory that does not exist (Debian's `nobody` has
`/nonexistent`, meant never to exist; a locked-down pod sets it so) and no `AIAAS_CACHE_DIR`.

Run as root, it made `$HOME/.cache/aiaas` (and so `$HOME`) for its default model cache and the
workers' metrics. docs/kubernetes.md promises what a uid that cannot make it gets: a warning,
the models held in memory, the metrics files in `$TMPDIR`. Now that holds whoever runs it.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from functions.runtime.settings import make_dirs
from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import start_serve


def test_serve_never_makes_a_missing_home_and_says_so(tmp_path: Path) -> None:
    store, _ = publish_digits(tmp_path)
    home, scratch = tmp_path / "nonexistent", tmp_path / "tmp"
    scratch.mkdir()
    env = {"HOME": str(home), "AIAAS_CACHE_DIR": "", "XDG_CACHE_HOME": "", "TMPDIR": str(scratch)}
    for server in start_serve(store, "--workers", "2", "--models", MODEL, env=env):
        for _ in range(4):  # either worker: each loaded it, in memory
            ready = httpx.get(f"{server.base}/v2/models/{MODEL}/ready", timeout=30)
            assert ready.status_code == 200, server.output()
        assert not home.exists(), server.output()
        log = server.output()
        assert (
            f"model files are held in memory, not cached in {home}/.cache/aiaas: it cannot be "
            f"made (the home directory {home} does not exist (HOME))"
        ) in log
        assert f"the workers' metrics directory is in {scratch} instead" in log
    assert not home.exists()


def test_make_dirs_makes_all_but_a_missing_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(FileNotFoundError, match=f"the home directory {home} does not exist"):
        make_dirs(home / ".cache" / "aiaas")
    assert not home.exists()
    make_dirs(tmp_path / "elsewhere" / "cache")  # anywhere else: made, parents and all
    assert (tmp_path / "elsewhere" / "cache").is_dir()
    home.mkdir()
    make_dirs(home / ".cache" / "aiaas")
    assert (home / ".cache" / "aiaas").is_dir()
