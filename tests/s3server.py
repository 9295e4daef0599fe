"""A real S3-compatible server on loopback for tests: moto's server mode in a child process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # tests.moto_atomic importable from any cwd


# Ports handed out by this machine's test processes, one file each: granian binds with
# SO_REUSEPORT, so two servers given one port (two xdist workers' free_port() drew it) both
# started, and the kernel shared the callers between them: a test's requests were answered by
# another test's server (404 "no model 'wine' is served here", CI of 1fc1638).
HANDED_OUT = Path(os.environ.get("TMPDIR", "/tmp")) / "aiaas-test-ports"
HELD_S = 1800.0  # a port handed out this recently is not handed out again


def free_port() -> int:
    """A port free now, and not handed out to another test process lately (`HANDED_OUT`); the
    server that is to bind it may still find it taken by then (`listens`)."""
    HANDED_OUT.mkdir(exist_ok=True)
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        mark = HANDED_OUT / str(port)
        with contextlib.suppress(FileNotFoundError):
            if time.time() - mark.stat().st_mtime > HELD_S:
                mark.unlink()  # an earlier session's
        try:
            mark.touch(exist_ok=False)
        except FileExistsError:
            continue
        return port
    raise RuntimeError(f"no port free that {HANDED_OUT} had not handed out lately")


def listening_inodes(port: int) -> set[str]:
    """The inodes of the TCP sockets listening on `port`, any address (Linux's /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                    found.add(fields[9])
    return found


def children(pid: int) -> list[int]:
    """The process's children, over all its threads (a thread that ended since the listing
    has none: granian's supervisor starts and ends threads while it respawns a worker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def listens(pid: int, port: int) -> bool:
    """Whether the socket listening on `port` is held by process `pid` or one of its children
    (granian's supervisor passes it on to its workers): not another process that took the
    port between `free_port()` and this one's bind, and answers in its place."""
    sockets = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    with contextlib.suppress(OSError):  # ended meanwhile: not listening
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for process in (str(pid), *children):
            for fd in Path(f"/proc/{process}/fd").iterdir():
                with contextlib.suppress(OSError):  # closed meanwhile
                    if os.readlink(fd) in sockets:
                        return True
    return False


def wait_answering(
    process: subprocess.Popen[bytes],
    port: int,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
    log: Path | None = None,
) -> None:
    """Until `url` answers 200 from `process`'s own socket on `port` (`listens`: not another
    process that bound the port first); RuntimeError, with the log's end, if `process` exits
    or `timeout` passes."""
    import httpx

    said = lambda: log.read_text(errors="replace")[-3000:] if log else ""  # noqa: E731
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}): {said()}")
        try:
            answer = httpx.get(url, headers=headers, timeout=5)
            if answer.status_code == 200 and listens(process.pid, port):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s: {said()}")


def stop_process(process: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGTERM, `grace` seconds to end, then SIGKILL; nothing if it has ended already."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class MotoServer:
    """Starts `python -m moto.server` on a free loopback port; stop() kills it."""

    def __init__(
        self,
        port: int | None = None,
        module: str = "tests.moto_atomic",
        env: dict[str, str] | None = None,
    ) -> None:
        self.chosen = port is None  # ours to change should another process bind it first
        self.port = port or free_port()
        # A module run as moto.server, taking its arguments: by default moto with conditional
        # writes made atomic, as S3's are (tests race writers; moto alone lets two win).
        self.module = module
        self.env = env or {}  # e.g. MOTO_ENABLE_RECORDING: every request written to a file
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, log: Path | None = None) -> MotoServer:
        for attempt in range(3):
            try:
                return self._start(log)
            except _PortTaken:
                if not self.chosen or attempt == 2:
                    raise RuntimeError(f"moto server: port {self.port} is in use") from None
                self.port = free_port()
                self.endpoint = f"http://127.0.0.1:{self.port}"
        raise AssertionError("unreachable")

    def _start(self, log: Path | None) -> MotoServer:
        out = log.open("ab") if log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=out,
            stderr=out,
            env={
                **os.environ,
                **self.env,
                "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            },
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    if listens(self.process.pid, self.port):  # else another's answer
                        return self
            except OSError:
                pass
            if self.process.poll() is not None:
                if listening_inodes(self.port):  # another process has the port
                    raise _PortTaken
                raise RuntimeError("moto server exited at start")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto server did not start within 30 s")

    def stop(self) -> None:
        if self.process:
            stop_process(self.process, grace=10)
        self.process = None


class _PortTaken(Exception):
    """The server exited at start with its port held by another process."""
