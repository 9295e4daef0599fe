"""`aiaas publish` without --version while another publisher takes the same number.

Both read the next number from the store and claim it; the store lets one win (conditional
writes). The loser used to exit 1 with "m:1 is already published; versions are immutable", a
version its user never asked for. It now takes the next free number, as a later run would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from functions.runtime.cache import sha256_file
from functions.runtime.errors import NotFound
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import ObjectStore
from infra.cli.main import main
from tests import onnx_factory

REPO = Path(__file__).resolve().parents[2]


def test_a_version_taken_after_the_number_was_read_gets_the_next(
    capsys: pytest.CaptureFixture[str],
    store: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mine = onnx_factory.linear_classifier(tmp_path / "mine.onnx", seed=1)
    theirs = onnx_factory.linear_classifier(tmp_path / "theirs.onnx", seed=2)
    registry = Registry(store)
    read_number = Registry.next_version

    # The race's window, made certain: another publisher completes the very number this one
    # read, right after it was read (a real publish of other bytes on the same store).
    def read_then_lose(self: Registry, name: str) -> str:
        number = read_number(self, name)
        if name == "m" and not registry.versions("m", missing_ok=True):
            manifest = onnx_factory.manifest_for(theirs, "m", number)
            registry.publish(manifest, theirs)
        return number

    monkeypatch.setattr(Registry, "next_version", read_then_lose)
    code = main(["--store", store.uri, "publish", str(mine), "--name", "m", "--alias", "prod"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.startswith("published m:2 ") and "m@prod -> 2" in out
    assert registry.versions("m") == ["1", "2"]
    assert registry.manifest("m", "2").file.sha256 == sha256_file(mine)
    assert registry.manifest("m", "1").file.sha256 == sha256_file(theirs)


def test_an_explicit_version_taken_meanwhile_is_still_an_error(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    other = onnx_factory.linear_classifier(tmp_path / "other.onnx", seed=2)
    assert main(["--store", store.uri, "publish", str(path), "--name", "m", "--version", "7"]) == 0
    code = main(["--store", store.uri, "publish", str(other), "--name", "m", "--version", "7"])
    assert code == 1  # asked for 7 by name: no other number is what was asked (the same file
    # again is done already: test_cli_registry.py)
    assert "m:7 is already published" in capsys.readouterr().err


def publish_at_once(
    uri: str,
    files: list[Path],
    name: str,
    *options: str,
    each: list[tuple[str, ...]] | None = None,
) -> list[tuple[int, str, str]]:
    """`aiaas publish FILE --name NAME --json OPTIONS` of each of `files` in its own process,
    all at once, with `each[i]`'s options too: (exit code, stdout, stderr) of each."""
    # Every process imports, says so, and waits for one go on stdin: they publish together,
    # once all are ready (a fixed start time cost 8 s of every run, and was a guess under load).
    script = (
        "import sys\n"
        "import infra.cli.publish_commands, functions.runtime.introspect, boto3\n"
        "from infra.cli.main import main\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def publish(path: Path, own: tuple[str, ...]) -> subprocess.Popen[str]:
        argv = ["--store", uri, "publish", str(path), "--name", name, "--json", *options, *own]
        return subprocess.Popen(
            [sys.executable, "-c", script, *argv],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    procs = [publish(path, own) for path, own in zip(files, each or [()] * len(files), strict=True)]
    assert [p.stdout.readline() for p in procs if p.stdout] == ["ready\n"] * len(files)
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    return [(p.wait(timeout=120), *p.communicate()) for p in procs]


def test_four_processes_publishing_at_once_on_s3_all_succeed(
    s3_store: S3Store, tmp_path: Path
) -> None:
    files = [onnx_factory.linear_classifier(tmp_path / f"m{i}.onnx", seed=i) for i in range(4)]
    results = publish_at_once(s3_store.uri, files, "race")
    assert [code for code, _, _ in results] == [0] * 4, results
    registry = Registry(s3_store)
    assert registry.versions("race") == ["1", "2", "3", "4"]
    stored = sorted(registry.manifest("race", v).file.sha256 for v in ["1", "2", "3", "4"])
    assert stored == sorted(sha256_file(path) for path in files)


def test_six_processes_publishing_one_file_at_once_get_six_versions(
    store: ObjectStore, tmp_path: Path
) -> None:
    """The same file from six processes at once (six CI runs of one commit): publishes in
    the same second wrote byte-identical manifests, each loser took the winner's for its own
    write, and six runs reported 1,2,1,1,3,2 with three versions stored, each saying
    "published" (not already published). Each run now gets its own number."""
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    results = publish_at_once(store.uri, [model] * 6, "twin", "--no-progress")
    assert [code for code, _, _ in results] == [0] * 6, results
    reports = [json.loads(out) for _, out, _ in results]
    assert sorted(int(doc["version"]) for doc in reports) == [1, 2, 3, 4, 5, 6], reports
    assert not any(doc["already_published"] for doc in reports)
    registry = Registry(store)
    assert registry.versions("twin") == ["1", "2", "3", "4", "5", "6"]
    stored = [registry.manifest("twin", str(v)) for v in range(1, 7)]
    assert {manifest.file.sha256 for manifest in stored} == {sha256_file(model)}
    assert len({manifest.publish_id for manifest in stored}) == 6


def test_four_processes_publishing_one_file_as_one_version_are_all_done(
    store: ObjectStore, tmp_path: Path
) -> None:
    """`--version 7` of one file from four processes at once (a CI job and its retries): one
    publishes, and the others are done as a retry after it is (exit 0, already published),
    where those in the same second used to say each that it had published 7 itself."""
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    results = publish_at_once(store.uri, [model] * 4, "twin", "--version", "7")
    assert [code for code, _, _ in results] == [0] * 4, results
    reports = [json.loads(out) for _, out, _ in results]
    assert [doc["version"] for doc in reports] == ["7"] * 4
    assert sorted(doc["already_published"] for doc in reports) == [False, True, True, True]
    assert Registry(store).versions("twin") == ["7"]


def test_a_twin_publishing_between_the_two_reads_of_the_version_is_done_too(
    capsys: pytest.CaptureFixture[str],
    store: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The window CI met (one run in four thousand): this publish read twin:7's manifest when it
    was not there, a twin run of the same file then published 7, and the check that the number
    was not pruned found it taken: "already published; versions are immutable", exit 1, for
    the very files stored. It is now judged as if read after the twin's publish: done."""
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "twin", "--version", "7"]
    read_manifest = Registry.manifest
    twin_ran: list[int] = []
    first = [True]

    def not_there_yet(self: Registry, name: str, version: str) -> object:
        if first.pop() if first else False:  # the first read: absent, the twin publishes next
            twin_ran.append(main(argv))
            raise NotFound(f"no {name}:{version}")
        return read_manifest(self, name, version)

    monkeypatch.setattr(Registry, "manifest", not_there_yet)
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert twin_ran == [0]
    assert (code, err) == (0, ""), err
    report = json.loads(out[out.index("{") :])
    assert (report["version"], report["already_published"]) == ("7", True)
    assert Registry(store).versions("twin") == ["7"]
