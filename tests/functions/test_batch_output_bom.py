"""The output of a CSV that begins with UTF-8's byte order mark begins with it too (hunt_batch2 3).

Excel saves "CSV UTF-8" with the mark and opens a CSV without one in the system's code page, so
the scored file of an Excel export, opened where it came from, showed `ZÃ¼rich` for `Zürich`
(and any non-ASCII label likewise): the mark was dropped as the header was read and never
written back. Scored from the SQS message S3 sends (a directory store and moto's S3), and by
`aiaas batch`, in one process and in shards: the same bytes, mark first.
"""

from __future__ import annotations

import json
from pathlib import Path

from functions.batch.handler import dispatch
from functions.runtime.store import LocalStore, ObjectStore
from tests.batch_support import publish_classifier, service, sqs_for
from tests.cli_run import run

IN, OUT = "batch/iris/input", "batch/iris/output"
BOM = b"\xef\xbb\xbf"
ROWS = "id,x_0,x_1,x_2,x_3,ville\r\na,1,2,3,4,Zürich\r\nb,0.5,0,-1,2,Málaga\r\n".encode()


def scored(store: ObjectStore, tmp_path: Path, name: str, data: bytes) -> bytes:
    store.put_bytes(f"{IN}/{name}", data)
    assert dispatch(service(store, tmp_path), sqs_for(store, f"{IN}/{name}")) == {
        "batchItemFailures": []
    }
    summary = json.loads(store.get_bytes(f"{OUT}/{name}.summary.json"))
    assert summary["status"] == "succeeded"
    return store.get_bytes(f"{OUT}/{name}")


def test_the_output_of_a_csv_with_a_byte_order_mark_begins_with_it(
    store: ObjectStore, tmp_path: Path
) -> None:
    publish_classifier(store, tmp_path)
    marked = scored(store, tmp_path, "excel.csv", BOM + ROWS)
    plain = scored(store, tmp_path, "plain.csv", ROWS)
    assert not plain.startswith(BOM)  # nothing added to a file without one
    assert marked == BOM + plain
    assert "Zürich" in marked.decode("utf-8-sig")
    head = scored(store, tmp_path, "head.csv", BOM + ROWS.split(b"\n")[0] + b"\n")
    assert head.startswith(BOM + b"id,x_0,x_1,x_2,x_3,ville,pred_")  # a header-only file too


def test_aiaas_batch_writes_it_back_in_one_process_and_in_shards(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    publish_classifier(store, tmp_path)
    rows = b"".join(f"r{i},1,2,3,{i % 7},Zürich\r\n".encode() for i in range(3000))
    path = tmp_path / "excel.csv"
    path.write_bytes(BOM + ROWS.split(b"\n")[0] + b"\n" + rows)
    outputs = []
    for name, flags in (("one.csv", ()), ("sharded.csv", ("--shards", "3"))):
        code, _, err = run(store, "batch", "iris", str(path), "--name", name, *flags)
        assert code == 0, err
        outputs.append(store.get_bytes(f"{OUT}/{name}"))
    assert outputs[0].startswith(BOM + b"id,")
    assert outputs[1] == outputs[0]
