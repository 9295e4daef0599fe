"""A TCP proxy on loopback in front of the S3 server: slow S3 and S3 outages, for real.

`delay` seconds pass before each chunk of the server's reply is forwarded (a slow network or
an overloaded endpoint); `stop()` closes the port and every open connection (an outage);
`start()` on the same port brings it back. `upstream_bytes` counts what clients sent on to the
server: a test asks it whether a call reached S3 at all, exactly, rather than timing it. Runs its
own asyncio loop on a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tests.s3server import free_port


class DelayingProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream_port`, replies held `delay` seconds."""

    def __init__(self, upstream_port: int, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.delay = 0.0
        self.upstream_bytes = 0  # bytes forwarded from clients to the server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> DelayingProxy:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            server = self._loop.run_until_complete(
                asyncio.start_server(self._connection, "127.0.0.1", self.port, reuse_address=True)
            )
            started.set()
            self._loop.run_forever()
            server.close()
            for writer in list(self._writers):
                writer.close()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="s3-proxy", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None
        self._writers.clear()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer, delayed=False),
            self._pipe(up_reader, writer, delayed=True),
        )

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while chunk := await source.read(65536):
                if delayed and self.delay:
                    await asyncio.sleep(self.delay)
                if not delayed:
                    self.upstream_bytes += len(chunk)
                sink.write(chunk)
                await sink.drain()
        sink.close()
        self._writers.discard(sink)
