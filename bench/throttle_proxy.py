"""A TCP proxy on loopback that caps each connection's bandwidth, as S3 does (~90 MB/s each).

moto's server answers at memory speed; real S3 gives one connection roughly 90 MB/s, which is
what makes parallel ranged GETs and multipart parts worth having. Each connection gets its own
token bucket in each direction, so N parallel connections get N times the bandwidth.
"""

from __future__ import annotations

import asyncio
import threading
import time

READ_BYTES = 256 * 1024


class ThrottleProxy:
    """Forwards 127.0.0.1:<port> to `target_port`, at most `rate` bytes/s per connection
    and direction; runs its event loop on a daemon thread."""

    def __init__(self, target_port: int, rate: float) -> None:
        self.target_port = target_port
        self.rate = rate
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()

    def start(self) -> ThrottleProxy:
        threading.Thread(target=self._run, daemon=True, name="throttle-proxy").start()
        if not self._ready.wait(10):
            raise RuntimeError("the throttling proxy did not start")
        return self

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Close the connections still open (a client's keep-alive pool), then the loop: left
        pending, their tasks were reported at exit as destroyed, their loop closed."""
        asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _close_all(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, limit=READ_BYTES)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            self._pipe(client_r, server_w), self._pipe(server_r, client_w), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        due = time.monotonic()  # when the bytes sent so far may have gone at the capped rate
        try:
            while data := await reader.read(READ_BYTES):
                writer.write(data)
                # An idle connection earns no credit: a keep-alive one must not burst after a pause.
                due = max(due, time.monotonic()) + len(data) / self.rate
                ahead = due - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
                await writer.drain()
        finally:
            writer.close()
