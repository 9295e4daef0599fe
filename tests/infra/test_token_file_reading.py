"""What AIAAS_API_TOKEN_FILE's reader makes of files that are no file of tokens, or of tokens
no caller could send: refused saying what to fix (at the start) or the last set kept (later),
never a start or a watcher that hangs, a worker that eats its memory, or a token cut in two.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from functions.runtime.errors import BadRequest
from infra.local.token_file import TokenFile, read_tokens, stat_key

TOKEN = "tok-Qm4r-never-in-logs"


def read_within(path: Path, seconds: float = 5.0) -> BaseException | tuple[str, ...]:
    """read_tokens(path) on a thread, so a read that blocks fails the test, not hangs it."""
    got: list[BaseException | tuple[str, ...]] = []

    def read() -> None:
        try:
            got.append(read_tokens(path))
        except BaseException as exc:  # handed to the test to judge
            got.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(seconds)
    assert got, f"reading {path} still blocks after {seconds} s"
    return got[0]


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    """A FIFO (or a pipe from a process substitution) with no writer blocked the read for ever:
    the start hung before listening, a worker's watcher stopped following the file."""
    os.mkfifo(tmp_path / "tokens")
    got = read_within(tmp_path / "tokens")
    assert isinstance(got, BadRequest), got
    assert "it is not a regular file" in got.message


def test_a_device_is_refused_not_read_whole(tmp_path: Path) -> None:
    """/dev/zero was read until memory ran out (every worker's, once each)."""
    got = read_within(Path("/dev/zero"))
    assert isinstance(got, BadRequest), got
    assert "it is not a regular file" in got.message


def test_a_file_far_too_large_is_refused_unread(tmp_path: Path) -> None:
    """A path pointed at a model or a log by mistake: refused, not read into each worker."""
    path = tmp_path / "tokens"
    with path.open("wb") as sparse:
        sparse.truncate(1 << 30)  # 1 GiB of holes: no disk used, a whole read would take it
    got = read_within(path)
    assert isinstance(got, BadRequest), got
    assert "over 64 KiB" in got.message


def test_a_directory_is_refused(tmp_path: Path) -> None:
    got = read_within(tmp_path)
    assert isinstance(got, BadRequest), got
    assert f"cannot read the API token file {tmp_path}" in got.message


def test_a_byte_order_mark_is_no_part_of_the_first_token(tmp_path: Path) -> None:
    """Notepad saves UTF-8 with a BOM: the first token had it, so it matched no caller, and
    clients (which send the first token) sent a header httpx cannot encode."""
    (tmp_path / "tokens").write_bytes(f"\ufeff{TOKEN}\r\n".encode())
    assert read_within(tmp_path / "tokens") == (TOKEN,)


@pytest.mark.parametrize("odd", ["\x0c", "\x1c", "\x85", "\u2028"], ids=["ff", "fs", "nel", "ls"])
def test_a_token_is_not_cut_at_an_odd_line_break(tmp_path: Path, odd: str) -> None:
    """str.splitlines also breaks at form feeds, separators and Unicode line breaks: a token
    holding one was cut in two, each half (short, guessable) accepted alone."""
    (tmp_path / "tokens").write_bytes(f"{TOKEN}\nabc{odd}def\n".encode())
    got = read_within(tmp_path / "tokens")
    assert isinstance(got, BadRequest), got
    assert got.message.startswith(f"line 2 of the API token file {tmp_path / 'tokens'} holds")
    assert "abc" not in got.message and TOKEN not in got.message  # never a token in a log


def test_a_token_no_header_can_carry_is_refused(tmp_path: Path) -> None:
    """A non-ASCII token: no caller's header matches it (httpx refuses to send it)."""
    (tmp_path / "tokens").write_text(f"{TOKEN}\n# comments may say anything: é\npässwörd\n")
    got = read_within(tmp_path / "tokens")
    assert isinstance(got, BadRequest), got
    assert "line 3 of the API token file" in got.message


def test_a_watcher_keeps_its_set_when_the_file_becomes_a_fifo(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{TOKEN}\n")
    accepted: list[tuple[bytes, ...]] = []
    watch = TokenFile(path, read_tokens(path), accepted.append)
    watch.check()
    path.unlink()
    os.mkfifo(path)
    checked = threading.Thread(target=watch.check, daemon=True)
    checked.start()
    checked.join(5)
    assert not checked.is_alive(), "the watcher blocks on a FIFO: no rotation is seen again"
    assert (watch.tokens, accepted) == ((TOKEN,), [])


def test_a_comment_after_a_token_is_refused_not_read_as_part_of_it(tmp_path: Path) -> None:
    """`NEW6 # primary` was the token: every caller sending NEW6 got a 401."""
    path = tmp_path / "tokens"
    path.write_text("# rotated 2026-12-04\nOLD5\nNEW6 # primary\n")
    with pytest.raises(BadRequest) as info:
        read_tokens(path)
    assert info.value.message == (
        f"line 3 of the API token file {path} holds a space, which a bearer token cannot "
        "(RFC 6750); a comment goes on a line of its own, starting with #"
    )
    path.write_text("# rotated 2026-12-04\nOLD5\n  NEW6\t\n")
    assert read_tokens(path) == ("OLD5", "NEW6")


def test_a_worker_whose_first_look_finds_the_file_gone_accepts_no_token(tmp_path: Path) -> None:
    """A worker started later (granian respawns one) holds the set read at the serve's start;
    with the file deleted since, its first look found no file, read as "unchanged" (a missing
    file's stat key is None, as the watcher's start), and it kept accepting a revoked token
    (k8s hunt: 10 of 20 requests with a removed token answered 200)."""
    path = tmp_path / "tokens"
    path.write_text(f"{TOKEN}\n")
    at_start = stat_key(path)
    accepted: list[tuple[bytes, ...]] = []
    path.unlink()  # the operator's rotation went wrong: the file is gone
    watch = TokenFile(path, (TOKEN,), accepted.append, read_at=at_start)
    watch.check()
    assert (watch.tokens, accepted) == ((), [()])
