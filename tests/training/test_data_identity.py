"""Which file a trained version learned from, in terms an auditor can check with `sha256sum`.

The manifest's `dataset.fingerprint` is a sha256 of the encoded arrays: blind to the header,
to the categories' and classes' spellings, and to float32 rounding, and recomputable only by
aiaas's own code. Two CSVs that differ in every column name, a category and both class names
(`default`/`repaid` read as `approve`/`reject`: the same class codes, opposite meanings) got
one fingerprint, and nothing in the manifest or the card named the file's own hash. A run
now records the file's sha256 and size (`dataset.file_sha256`, `dataset.file_bytes`) and the
card prints them.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.code_digest import code_digest
from tests.training.conftest import run_job, tiny_spec, write_csv
from training.datasets import load_raw
from training.prepare import prepare
from training.spec import JobSpec

ROWS = [
    [float(i % 7), ["rent", "own"][i % 2], ["default", "repaid"][(i // 2) % 2]] for i in range(40)
]


def _other(path: Path) -> Path:
    """The same numbers under other names: header, a category and both classes renamed."""
    rows = [
        [a, b.replace("rent", "renter"), {"default": "approve", "repaid": "reject"}[c]]
        for a, b, c in ROWS
    ]
    return write_csv(path, ["years", "home", "verdict"], rows)


def _spec(path: Path, target: str) -> JobSpec:
    return tiny_spec("logistic", dataset={"path": str(path), "target": target})


def test_the_manifest_names_the_file_read_by_its_own_sha256(tmp_path: Path) -> None:
    first = write_csv(tmp_path / "credit.csv", ["age", "housing", "outcome"], ROWS)
    other = _other(tmp_path / "other.csv")
    summaries = []
    for path, target in ((first, "outcome"), (other, "verdict")):
        spec = _spec(path, target)
        raw = load_raw(spec.dataset, "tabular")
        summaries.append(prepare(raw, spec, "tabular").summary)
    a, b = summaries
    assert a["fingerprint"] == b["fingerprint"]  # why the fingerprint alone cannot tell them
    assert a["file_sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert b["file_sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()
    assert a["file_bytes"] == first.stat().st_size
    assert a["file_sha256"] != b["file_sha256"]
    sample = load_raw(_spec(first, "outcome").dataset, "tabular", limit=5)
    assert sample.file_sha256 is None  # `--check`'s sample reads part of the file: no hash


def test_a_published_version_and_its_card_carry_the_file_hash(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "credit.csv", ["age", "housing", "outcome"], ROWS)
    registry = Registry(LocalStore(tmp_path / "store"))
    result = run_job(
        _spec(data, "outcome"), registry, tmp_path / "run", publish_model=True, progress=False
    )
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    stored = tmp_path / "store" / "models" / "tiny-logistic" / "versions" / "1"
    manifest = json.loads((stored / "manifest.json").read_text())
    assert manifest["dataset"]["file_sha256"] == digest
    assert manifest["dataset"]["file_bytes"] == data.stat().st_size
    assert result.manifest.dataset["file_sha256"] == digest
    card = (stored / "card" / "card.md").read_text()
    data_line = next(line for line in card.splitlines() if line.startswith("- Data: "))
    assert f"file sha256 `{digest}` ({data.stat().st_size} bytes)" in data_line
    assert "fingerprint of the encoded rows" in data_line


def test_a_version_records_who_ran_it_and_with_which_software(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Who trained a version, and on which torch / onnxruntime / numpy (what the same spec
    and seed reproduce a model with), were nowhere but torch's version in `file.producer`."""
    monkeypatch.setenv("AIAAS_ACTOR", "auditor-alice")
    data = write_csv(tmp_path / "credit.csv", ["age", "housing", "outcome"], ROWS)
    registry = Registry(LocalStore(tmp_path / "store"))
    run_job(_spec(data, "outcome"), registry, tmp_path / "run", publish_model=True, progress=False)
    stored = tmp_path / "store" / "models" / "tiny-logistic" / "versions" / "1"
    training = json.loads((stored / "manifest.json").read_text())["training"]
    assert training["run_by"] == "auditor-alice"
    versions = training["software"]
    assert versions["python"] == platform.python_version()
    for name in ("aiaas", "torch", "onnxruntime", "numpy"):
        assert versions[name] == metadata.version(name)
    # Every release is 0.1.0: the code's own digest, as `aiaas --version` names it.
    assert versions["aiaas_code"] == code_digest()
    card = (stored / "card" / "card.md").read_text()
    line = next(line for line in card.splitlines() if line.startswith("- Run by "))
    order = ("python", "torch", "onnx", "onnxruntime", "onnxscript", "numpy")
    said = ", ".join(f"{name} {versions[name]}" for name in order if name in versions)
    aiaas = f"aiaas {versions['aiaas']} (code {versions['aiaas_code']})"
    assert line == f"- Run by auditor-alice with {aiaas}, {said}"
    assert said.startswith(f"python {versions['python']}, torch ")
