"""tests.moto_atomic's server, whose answer to a multipart upload's completion can be held: the
object completed and stored, its answer not yet sent, as S3 is while a client waits on a big
one (moto took 8-10 s for 2.5 GB). A test sends its signal in that window, knowing the client
is inside the completion call and the object there.

The folder named by MOTO_HOLD_DIR steers it: with `armed` in it, the next completion, once
carried out, renames `armed` to `held` and keeps its answer until `release` appears (60 s at
most). Other requests, and completions while nothing is armed, are answered as moto does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from pathlib import Path
from typing import Any

from moto.s3.responses import S3Response

from tests.moto_atomic import make_conditional_writes_atomic, make_recording_whole

HELD_MOST_S = 60.0


def hold_completions(folder: Path) -> None:
    post = S3Response._key_response_post  # already under moto_atomic's lock: not held here

    @functools.wraps(post)
    def completing(
        self: S3Response, request: Any, body: bytes, bucket: str, query: dict[str, Any], key: str
    ) -> Any:
        answer = post(self, request, body, bucket, query, key)
        if "uploadId" in query:  # CompleteMultipartUpload (a part is a PUT)
            with contextlib.suppress(FileNotFoundError):
                (folder / "armed").rename(folder / "held")  # one completion held an arming
                deadline = time.monotonic() + HELD_MOST_S
                while not (folder / "release").exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
        return answer

    S3Response._key_response_post = completing  # type: ignore[method-assign]


if __name__ == "__main__":
    from moto.server import main

    make_conditional_writes_atomic()  # first: the hold wraps the locked handler, not in it
    make_recording_whole()
    hold_completions(Path(os.environ["MOTO_HOLD_DIR"]))
    main()
