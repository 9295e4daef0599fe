"""`aiaas models --check` after a store was copied (docs/registry.md, "Moving a store"): a
directory store copied to S3 key by key, as `aws s3 sync` does, but stopped short.

Before: the doc's check, `aiaas --store s3://... models`, listed such a copy as whole (exit 0)
while one version's model.onnx was missing and another's cut in half: serving then answered
them 503 (the alias's main version: every caller). `--check` reads each version's files'
sizes and each alias's manifest digests and names each problem, exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_cli_registry import run


def _published(capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path) -> None:
    for seed in (1, 2, 3):
        path = onnx_factory.linear_classifier(tmp_path / f"m{seed}.onnx", seed=seed)
        assert run(capsys, store, "publish", str(path), "--name", "m")[0] == 0
    assert run(capsys, store, "promote", "m", "2")[0] == 0  # production -> 2


def _copy(local: LocalStore, s3: S3Store, *, skip: str = "", cut: str = "") -> None:
    """Every object of `local` into `s3` under the same keys (`aws s3 sync`), lock files left
    behind; `skip`: a key not copied yet, `cut`: one copied half."""
    for path in sorted(p for p in local.root.rglob("*") if p.is_file()):
        key = path.relative_to(local.root).as_posix()
        if key == skip or path.name.startswith(".tmp-"):
            continue
        body = path.read_bytes()
        s3.put_bytes(key, body[: len(body) // 2] if key == cut else body)


def test_a_whole_copy_checks_clean(
    capsys: pytest.CaptureFixture[str], local_store: LocalStore, s3_store: S3Store, tmp_path: Path
) -> None:
    _published(capsys, local_store, tmp_path)
    _copy(local_store, s3_store)
    code, out, err = run(capsys, s3_store, "models", "--check")
    assert (code, err) == (0, "checked: no problems\n")
    assert out.startswith("m  ") and "!" not in out


def test_a_copy_stopped_short_is_named_file_by_file(
    capsys: pytest.CaptureFixture[str], local_store: LocalStore, s3_store: S3Store, tmp_path: Path
) -> None:
    _published(capsys, local_store, tmp_path)
    size = local_store.head("models/m/versions/2/model.onnx").size
    third = local_store.head("models/m/versions/3/model.onnx").size
    _copy(
        local_store,
        s3_store,
        skip="models/m/versions/3/model.onnx",
        cut="models/m/versions/2/model.onnx",
    )
    s3_store.put_bytes("models/m/versions/4/card/card.md", b"# m:4\n")  # its manifest to come
    code, out, _ = run(capsys, s3_store, "models")
    assert code == 0 and "!" not in out  # what the doc's check said before: all well
    code, out, err = run(capsys, s3_store, "models", "--check")
    assert code == 1, out
    assert err == "checked: 3 problem(s) listed above\n"
    problems = [line for line in out.splitlines() if line.startswith("  ! ")]
    assert problems[0].startswith(
        f"  ! m:2: model.onnx is {size // 2} bytes, its manifest lists {size} (cut short or "
        "replaced): copy it again from the source"
    )
    assert problems[1].startswith(
        f"  ! m:3: model.onnx is missing (its manifest lists {third} bytes)"
    )
    assert problems[2].startswith("  ! m: versions/4/ holds files but no manifest.json")
    code, out, _ = run(capsys, s3_store, "models", "--check", "--json")
    assert code == 1
    assert len(json.loads(out)["models"][0]["problems"]) == 3


def test_an_alias_pinning_another_manifest_is_named(
    capsys: pytest.CaptureFixture[str], local_store: LocalStore, s3_store: S3Store, tmp_path: Path
) -> None:
    """A manifest restored from another backup than its alias record (or edited): every server
    refuses the alias's version (503); the check says which alias and both digests."""
    _published(capsys, local_store, tmp_path)
    _copy(local_store, s3_store)
    key = "models/m/versions/2/manifest.json"
    doc = json.loads(s3_store.get_bytes(key))
    s3_store.put_bytes(key, json.dumps({**doc, "description": "edited"}).encode())
    code, out, _ = run(capsys, s3_store, "models", "--check")
    assert code == 1
    assert "  ! alias 'production': m:2's manifest.json is not the one it was moved onto" in out
