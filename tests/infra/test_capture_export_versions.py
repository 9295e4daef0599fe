"""A captured line names the version that answered three times: its `version`, its answer's,
and the folder it is stored in (capture/MODEL/VERSION/DAY/...). A line whose `version` was
changed since (an edit in the store) was exported as the other version's answer, even inside
an export of `--version` its folder's, and nothing said so; it is now skipped and named, as a
line that is no JSON object is, and every other line is exported as before."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_capture_export_cells import FEATURES, LABELS, ROWS, capture


def _export(
    store: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[str, list[dict[str, str]]]:
    code = main(["--store", str(store), "capture", "export", "churn", "--out", str(out), *extra])
    said, err = capsys.readouterr()
    assert code == 0, err
    with out.open(newline="") as handle:
        return said, list(csv.DictReader(handle))


def test_a_line_edited_to_name_another_version_is_skipped_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2"):
        path = onnx_factory.linear_classifier(tmp_path / f"churn-{version}.onnx", seed=int(version))
        manifest = onnx_factory.manifest_for(path, "churn", version, labels=LABELS)
        registry.publish(dataclasses.replace(manifest, features=FEATURES), path)
    bodies = [{"instances": [dict(zip(FEATURES, row, strict=True))]} for row in ROWS]
    capture(registry, tmp_path, "churn", bodies, route="/models/{}/versions/2/predict")
    store = LocalStore(tmp_path / "store")
    keys = sorted(k for k in store.list_keys("capture/churn/2") if k.endswith(".jsonl"))
    held = {k: [json.loads(x) for x in store.get_bytes(k).decode().splitlines()] for k in keys}
    lines = [line for k in keys for line in held[k]]  # the same objects, edited below
    assert [line["version"] for line in lines] == ["2"] * len(ROWS)
    _, before = _export(tmp_path / "store", tmp_path / "before.csv", capsys, "--version", "2")
    assert [row["version"] for row in before] == ["2"] * len(ROWS)

    lines[0]["version"] = "1"  # now claims version 1 answered it
    lines[1]["response"]["version"] = "1"  # its answer now claims so
    for k in keys:
        store.put_bytes(k, "".join(json.dumps(line) + "\n" for line in held[k]).encode())
    key = keys[0]
    for extra in (("--version", "2"), ()):
        said, rows = _export(tmp_path / "store", tmp_path / "after.csv", capsys, *extra)
        assert [row["version"] for row in rows] == ["2"] * (len(ROWS) - 2)
        assert [row["request_id"] for row in rows] == [lines[2]["request_id"]]
        assert (
            "2 captured lines skipped, not as captured (no JSON object, or naming another "
            f"version than their folder's): {key} line 1: it names version '1', not '2', "
            "whose folder holds it"
        ) in said
