"""`publish --alias` (and `train --publish --alias`) whose alias cannot be written: the version
that now exists is reported, and the error says how to finish without publishing again.

The alias is written after the version is committed. A refusal there (a full or read-only store,
access denied on aliases/) was the store's error alone, exit 1, nothing on stdout even with
--json: the natural retry published the same file again as the next version (a `train` retrained
it). Here the store really refuses: a file stands where the model's aliases/ folder goes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.errors import AiaasError
from functions.runtime.publish_alias import point_alias_at_published
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with m:1, whose aliases/ folder is a file: every alias write of m fails."""
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    root = tmp_path / "store"
    assert main(["--store", str(root), "publish", str(model), "--name", "m"]) == 0
    (root / "models" / "m" / "aliases").write_text("not a folder")
    return root


def test_the_published_version_is_reported_and_the_error_says_how_to_finish(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    args = ["--store", str(store), "publish", str(tmp_path / "m.onnx"), "--name", "m"]
    assert main([*args, "--alias", "production", "--json"]) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert (report["version"], report["alias"]) == ("2", None)
    assert err.startswith("aiaas publish: error: published m:2, but could not point 'production'")
    assert "run `aiaas promote m 2 --alias production` (not the publish again" in err
    assert Registry(LocalStore(store)).versions("m") == ["1", "2"]


def test_training_s_publish_says_the_same(store: Path) -> None:
    """training/publish.py points the alias through the same step."""
    registry = Registry(LocalStore(store))
    with pytest.raises(AiaasError) as refused:
        point_alias_at_published(registry, "m", "staging", "1")
    message = refused.value.message
    assert message.startswith("published m:1, but could not point 'staging' at it: cannot use")
    assert message.endswith(
        "run `aiaas promote m 1 --alias staging` (not the publish again: it would be a new version)"
    )
