"""A batch job's uploaded body that is not the file itself, refused before it is placed.

Two ways a careful-looking upload stored something else (hunt_csvquirks 1):

- `curl -d @rows.csv` (`--data`): curl drops every CR and LF of a file it reads so, and the CSV
  arrived as one line, its header with the rows glued to the last name. Where the glued header
  still held every column the model reads, the job "succeeded" with 0 rows: every row lost
  without a word; else it failed as "the header lacks column(s) x_2".
- `curl -F file=@rows.csv`, `requests.put(files=...)`: a multipart form, stored with its
  boundary lines and part headers as the file ("the header lacks column(s)", or an NPY whose
  "magic string is not correct").

A 400 names the cause and the upload that sends the file as it is; the route documents no
415, its body being a file of any type. curl -d with the Content-Type a file has
(`-H 'content-type: text/csv'`) drops the line breaks all the same (hunt_docs 2): a CSV
body of one line is refused whatever its type. Rows of text only glued to the header
(`text,langgreat film,en`) show no sign of it (review_revsess 3), and a header alone without
its line end, the one file such a body could also be, scores nothing: the 400 asks for its
line break. JSONL is refused where records meet (`}{`); one record alone is whole.
"""

from __future__ import annotations

import json

import orjson

from functions.runtime.batch.layout import BatchObject
from functions.runtime.codecs.json_errors import MULTIPART
from functions.runtime.errors import BadRequest

FORM = "application/x-www-form-urlencoded"  # what curl -d, --data-binary and -d @- send


def check_upload(obj: BatchObject, data: bytes, content_type: str) -> None:
    """Raise where `data`, sent with `content_type`, is not the file `obj` names."""
    sent_as = content_type.split(";", 1)[0].strip().lower()
    as_it_is = (
        f"send the file itself as the body: curl -T {_base(obj)} URL (or curl --data-binary "
        f"@{_base(obj)} URL), requests.put(URL, data=open({_base(obj)!r}, 'rb'))"
    )
    if sent_as == "multipart/form-data" or MULTIPART.match(data[:512]):
        raise BadRequest(
            "the body is a multipart/form-data upload (curl -F, requests' files=), which would "
            f"be stored as {obj.file} boundary lines and all; {as_it_is}"
        )
    if obj.compressed or obj.format == "npy" or b"\n" in data or b"\r" in data:
        return  # a CR-only file keeps its CRs, and its run says what to do
    if obj.format == "jsonl" and _one_record(data):
        return  # a file of one record without its line end: --data-binary sends it whole
    if obj.format == "jsonl" and sent_as != FORM and not _glued(data):
        return  # one line that is not one record: its run says what is wrong with it
    what = (
        "a header without rows, its rows glued on where curl -d sent it; a header alone "
        "ends in a line break"
        if obj.format == "csv"
        else "records glued together"
    )
    raise BadRequest(
        f"the body holds no line break, so {obj.file} would be one line ({what}): curl -d "
        f"(--data) drops the line breaks of a file it sends, whatever its content-type; "
        f"{as_it_is}"
    )


def _base(obj: BatchObject) -> str:
    return obj.file.rsplit("/", 1)[-1]


def _glued(data: bytes) -> bool:
    """Whether one JSONL line holds records glued together, whatever the Content-Type said
    (`curl -H 'content-type: application/json' -d @rows.jsonl`): they meet as `}{` or `][`."""
    return any(pair in data for pair in (b"}{", b"][", b"}[", b"]{"))


def _one_record(data: bytes) -> bool:
    """Whether `data` is one JSON value (NaN and Infinity, which batch reads, included)."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            json.loads(data)
        except ValueError:  # JSONDecodeError, and UnicodeDecodeError of bytes not UTF-8
            return False
    return True
