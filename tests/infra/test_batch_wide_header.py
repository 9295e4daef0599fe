"""`aiaas batch` of CSV files with very wide headers, and of models with awkward output names.

A header line was read up to a fixed 1 MiB and cut there, silently: the file then failed for
lacking columns it has, or every row for having more fields than the header, and raising
AIAAS_BATCH_MAX_LINE_BYTES changed nothing. The header now follows that setting, as every
line does, and a longer one is refused naming it. Its check counted each column's name in the
whole header (20,000 columns: 3.7 s; 300,000: 196 s for a file of one row). And an output
name holding a comma or a quote went into the output's header bare, shifting every prediction
column after it. Real path: the CLI on a directory store and on S3 (moto), real ONNX models.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from pathlib import Path

import pytest
from onnx import TensorProto, helper

from functions.batch.handler import dispatch
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import ObjectStore
from infra.cli.main import main
from tests import onnx_factory
from tests.batch_support import service, sqs_for
from tests.functions.test_batch_state_machine import ASL, Walker, execution_input

WIDE = 15_000  # passthrough columns of 100-character names: a 1.5 MB header
LIMIT = "AIAAS_BATCH_MAX_LINE_BYTES"


def with_ident(store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    """`store` with `ident`: y = x, float32 [N, 3], read from columns x_0, x_1, x_2."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    path = onnx_factory.identity(tmp_path / "ident.onnx")
    Registry(store).publish(onnx_factory.manifest_for(path, "ident", "1"), path)
    return store


@pytest.fixture
def ident(store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    return with_ident(store, tmp_path, monkeypatch)


@pytest.fixture
def local_ident(
    local_store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ObjectStore:
    return with_ident(local_store, tmp_path, monkeypatch)


def wide_file(path: Path, rows: int, inputs_first: bool) -> Path:
    """A CSV whose x_* columns come before or after WIDE long passthrough columns."""
    names = [f"col_{i:05d}_" + "p" * 90 for i in range(WIDE)]
    empty = "," * (WIDE - 1)
    lines = []
    for r in range(rows):
        x = f"{r},{r + 0.5},{-r}"
        lines.append(f"{x},{empty}" if inputs_first else f"{empty},{x}")
    xs = "x_0,x_1,x_2"
    header = ",".join([xs, *names] if inputs_first else [*names, xs])
    assert len(header) > 1024 * 1024
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def batch(store: ObjectStore, data: Path, *extra: str) -> int:
    return main(["--store", store.uri, "batch", "ident", str(data), "--no-progress", *extra])


def summary(store: ObjectStore, name: str) -> dict[str, object]:
    return dict(json.loads(store.get_bytes(f"batch/ident/output/{name}.summary.json")))


def scored_rows(store: ObjectStore, name: str) -> list[list[str]]:
    """The output's rows as csv reads them, each as long as the header (the first row)."""
    rows = list(csv.reader(io.StringIO(store.get_bytes(f"batch/ident/output/{name}").decode())))
    assert {len(row) for row in rows} == {WIDE + 6}
    return rows


@pytest.mark.parametrize("inputs_first", [False, True], ids=["inputs_last", "inputs_first"])
def test_a_header_over_the_line_limit_is_refused_naming_it_and_read_whole_under_a_raised_one(
    ident: ObjectStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    inputs_first: bool,
) -> None:
    data = wide_file(tmp_path / "wide.csv", 3, inputs_first)
    assert batch(ident, data) == 1
    refused = (
        "batch/ident/input/wide.csv: the header line is longer than 1048576 bytes "
        f"({LIMIT}), the longest line batch reads: set {LIMIT} above the header's length, "
        "where the file is scored, or shorten its column names"
    )
    assert capsys.readouterr().err == f"aiaas batch: error: {refused}\n"
    failed = summary(ident, "wide.csv")
    assert (failed["status"], failed["error"]) == ("failed", refused)

    monkeypatch.setenv(LIMIT, str(4 * 1024 * 1024))
    assert batch(ident, data, "--name", "raised.csv") == 0
    rows = scored_rows(ident, "raised.csv")
    assert rows[0][-3:] == ["pred_y_0", "pred_y_1", "pred_y_2"]
    header = data.read_text().split("\n", 1)[0].split(",")
    assert rows[0][:-3] == header  # read whole: no name cut, none lost
    x = slice(0, 3) if inputs_first else slice(WIDE, WIDE + 3)
    assert [[float(v) for v in row[x]] for row in rows[1:]] == [
        [float(v) for v in row[-3:]] for row in rows[1:]
    ]
    assert summary(ident, "raised.csv")["scored_rows"] == 3


def test_a_raised_limit_reads_a_wide_header_in_shards_and_gzipped_alike(
    local_ident: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shards and the merge read the header again: under the same setting."""
    monkeypatch.setenv(LIMIT, str(4 * 1024 * 1024))
    data = wide_file(tmp_path / "wide.csv", 200, inputs_first=False)
    assert batch(local_ident, data) == 0
    whole = local_ident.get_bytes("batch/ident/output/wide.csv")
    assert len(scored_rows(local_ident, "wide.csv")) == 201
    assert batch(local_ident, data, "--name", "sharded.csv", "--shards", "2") == 0
    assert summary(local_ident, "sharded.csv")["shards"] == 2
    assert local_ident.get_bytes("batch/ident/output/sharded.csv") == whole
    packed = tmp_path / "packed.csv.gz"
    packed.write_bytes(gzip.compress(data.read_bytes()))
    assert batch(local_ident, packed) == 0
    assert local_ident.get_bytes("batch/ident/output/packed.csv") == whole


def test_checking_a_header_of_many_columns_takes_time_in_proportion_to_it(
    local_ident: ObjectStore, tmp_path: Path
) -> None:
    """60,000 columns (a 400 kB header, one row): ~35 s of CPU counting each name in the whole
    header, ~0.1 s once counted in one pass."""
    columns = 60_000
    data = tmp_path / "many.csv"
    names = ",".join(f"c{i}" for i in range(columns))
    data.write_text(f"x_0,x_1,x_2,{names}\n1,2,3{',0' * columns}\n")
    began = time.process_time()
    assert batch(local_ident, data) == 0
    assert time.process_time() - began < 8.0
    assert summary(local_ident, "many.csv")["scored_rows"] == 1


def test_output_names_with_a_comma_or_quote_are_quoted_in_the_header(
    local_store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`out,put "q"` of [N, 2] beside `second` of [N, 1]: the header read as 7 columns over
    rows of 5, and csv put pred_second's value under `pred_out`."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    odd = 'out,put "q"'
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["x"], [odd]),
            helper.make_node("ReduceSum", ["x", "axes"], ["second"], keepdims=1),
        ],
        "odd_names",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [
            helper.make_tensor_value_info(odd, TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("second", TensorProto.FLOAT, ["N", 1]),
        ],
        initializer=[helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    path = onnx_factory.save(graph, tmp_path / "odd.onnx")
    Registry(local_store).publish(onnx_factory.manifest_for(path, "odd", "1"), path)
    data = tmp_path / "rows.csv"
    data.write_text('id,x_0,x_1\n"a, b",1,2\nc,3,5\n')
    args = ["--store", local_store.uri, "batch", "odd", str(data), "--no-progress"]
    assert main(args) == 0
    text = local_store.get_bytes("batch/odd/output/rows.csv").decode()
    assert text.split("\n", 1)[0] == (
        'id,x_0,x_1,"pred_out,put ""q""_0","pred_out,put ""q""_1",pred_second'
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [dict(row) for row in rows] == [
        {
            "id": "a, b",
            "x_0": "1",
            "x_1": "2",
            f"pred_{odd}_0": "1.0",
            f"pred_{odd}_1": "2.0",
            "pred_second": "3.0",
        },
        {
            "id": "c",
            "x_0": "3",
            "x_1": "5",
            f"pred_{odd}_0": "3.0",
            f"pred_{odd}_1": "5.0",
            "pred_second": "8.0",
        },
    ]
    assert all(None not in row for row in rows)  # no field beyond the header's


def test_the_state_machine_reads_a_wide_header_under_the_functions_setting(
    s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plan, shards and merge (its header line) each read the header under the function's
    AIAAS_BATCH_MAX_LINE_BYTES; the output is the unsharded run's."""
    with_ident(s3_store, tmp_path, monkeypatch)
    monkeypatch.setenv(LIMIT, str(4 * 1024 * 1024))
    data = wide_file(tmp_path / "wide.csv", 200, inputs_first=False).read_bytes()
    for name in ("one.csv", "big.csv"):
        s3_store.put_bytes(f"batch/ident/input/{name}", data)
    batch = service(s3_store, tmp_path)
    dispatch(batch, sqs_for(s3_store, "batch/ident/input/one.csv"))
    walker = Walker(batch)
    machine = json.loads(ASL.read_text())
    start = execution_input(s3_store, "batch/ident/input/big.csv", 2)
    outcome, done = walker.run(machine, start)
    assert (outcome, done["status"], done["shards"]) == ("Succeed", "succeeded", 2)
    assert walker.invocations == ["plan", "shard", "shard", "merge"]
    one = s3_store.get_bytes("batch/ident/output/one.csv")
    assert s3_store.get_bytes("batch/ident/output/big.csv") == one
    assert len(scored_rows(s3_store, "one.csv")) == 201
