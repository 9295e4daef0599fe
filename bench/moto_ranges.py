"""moto's S3 server whose ranged GETs read only their range, as S3's do.

    python -m bench.moto_ranges -H 127.0.0.1 -p PORT   (moto.server's own arguments)

moto 5 answers every GET by reading the whole object into memory and then slicing out the
range asked for: a 2.5 GB file fetched as 16 MB ranges, 16 at a time, reads 2.5 GB per part
(~390 GB in all) and holds up to 16 x 2.5 GB at once, which would exhaust this machine long
before any transfer code is measured. S3 reads a range's bytes only. This changes that one
thing, for bench.large_model only: ranged GETs of object data slice moto's own spooled copy of
the object (under its lock); everything else (uploads, multipart, conditions, whole GETs) is
moto unchanged. Both the aiaas path and boto3's `download_fileobj` use ranged GETs, so both
gain alike; the single-stream path makes no ranged GET.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from moto import server
from moto.s3.models import FakeKey
from moto.s3.responses import S3Response

_ranged = threading.local()  # set while a GET with a Range header is being answered
_value: Any = FakeKey.value  # the property itself
_get_object = S3Response.get_object


class _Ranges:
    """An object's bytes that moto's range handler slices (len, [a:b]) without reading all."""

    def __init__(self, key: FakeKey) -> None:
        self.key = key

    def __len__(self) -> int:
        return int(self.key.size)

    def __getitem__(self, part: slice) -> bytes:
        start, stop, _ = part.indices(len(self))
        with self.key.lock:
            self.key._value_buffer.seek(start)
            return self.key._value_buffer.read(max(stop - start, 0))


def _value_or_ranges(key: FakeKey) -> Any:
    return _Ranges(key) if getattr(_ranged, "on", False) else _value.fget(key)


def _get_object_ranged(self: S3Response) -> Any:
    _ranged.on = bool(self.headers.get("range")) and "," not in self.headers.get("range", "")
    try:
        return _get_object(self)
    finally:
        _ranged.on = False


FakeKey.value = property(_value_or_ranges, _value.fset)  # type: ignore[assignment,method-assign]
S3Response.get_object = _get_object_ranged  # type: ignore[method-assign]

if __name__ == "__main__":
    server.main(sys.argv[1:])
