"""A text model's CSV sent to a running `aiaas serve` as `curl -H 'content-type: text/csv' -d`
(review_revsess 3). curl -d drops the file's line breaks whatever the type: rows of text only,
glued to the header (`x,langgreat film,en...`), hold no number for the guard to see, and the
job "succeeded" with 0 rows while the model's column `x` was still named. Now a CSV body of one
line is a 400 naming `-d` and `--data-binary`, whatever its type; a header alone ends in a line
break (that upload is still an empty day: 0 rows, succeeded).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from onnx import TensorProto

from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_serve_capture import ServeUri
from tests.infra.test_serve_job_uploads_as_sent import curl_put, finished, refused, serving

JOBS = "/control/batch/iris/jobs"  # `finished` and `refused` follow this model name
ROWS = b'x,lang\ngreat film,en\n"dull, long",fr\n'  # text only: no cell reads as a number


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeUri, LocalStore]]:
    work = tmp_path_factory.mktemp("text_uploads")
    onnx = onnx_factory.identity(work / "echo.onnx", TensorProto.STRING, ["N"])  # reads `x`
    yield from serving(work, onnx)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_d_of_a_text_csv_typed_text_csv_is_refused_not_scored_as_zero_rows(
    served: tuple[ServeUri, LocalStore], tmp_path: Path
) -> None:
    server, store = served
    rows = tmp_path / "reviews.csv"
    rows.write_bytes(ROWS)

    def curl(file: str, *flags: str) -> httpx.Response:
        return curl_put(f"{server.base}{JOBS}/{file}", *flags)

    typed = ("-H", "content-type: text/csv")
    answer = curl("reviews.csv", *typed, "-d", f"@{rows}")
    refused(answer, store, "reviews.csv", "no line break", "curl -d", "--data-binary @reviews.csv")
    assert "whatever its content-type" in answer.json()["error"]
    kept = curl("kept.csv", *typed, "--data-binary", f"@{rows}")  # the file as it is
    assert kept.status_code == 202, kept.text
    with httpx.Client(base_url=server.base, timeout=30) as client:
        summary = finished(client, "kept.csv")
    assert (summary["status"], summary["rows"], summary["scored_rows"]) == ("succeeded", 2, 2)


def test_a_header_alone_is_asked_for_its_line_break_and_with_it_is_an_empty_day(
    served: tuple[ServeUri, LocalStore],
) -> None:
    server, store = served
    csv_type = {"content-type": "text/csv"}
    with httpx.Client(base_url=server.base, timeout=30) as client:
        answer = client.put(f"{JOBS}/alone.csv", content=b"x,lang", headers=csv_type)
        refused(answer, store, "alone.csv", "a header alone ends in a line break", "curl -T")
        empty = client.put(f"{JOBS}/empty.csv", content=b"x,lang\n", headers=csv_type)
        assert empty.status_code == 202, empty.text
        summary = finished(client, "empty.csv")
    assert (summary["status"], summary["rows"]) == ("succeeded", 0)
