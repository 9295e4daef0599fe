"""The project's clients never carry a credential through a redirect to another origin.

`python -m infra.call --token-file` and `aiaas rollout`'s `/metrics` scrape used urllib's
`urlopen`, which follows a 302 with every header it was given: a server answering a redirect
to another host or port got the bearer token (which opens every route of a serve), and the
client printed that server's answer as the one it asked for. Two real HTTP servers on loopback:
`origin`, which redirects, and `elsewhere`, which records what reaches it.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from functions.runtime.errors import StoreError
from infra.local.client_token import ClientToken
from infra.local.rollout_metrics import http_scrape

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-Redir-7q2w-never-elsewhere"


@dataclass
class Servers:
    origin: str
    elsewhere: str
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)  # (server, path, auth)

    def reached(self, server: str) -> list[tuple[str, str | None]]:
        return [(path, auth) for name, path, auth in self.seen if name == server]


def _server(name: str, servers: Servers, answer: dict[str, str]) -> http.server.HTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            servers.seen.append((name, self.path, self.headers.get("Authorization")))
            target = answer.get(self.path)
            if target is not None:
                self.send_response(302)
                self.send_header("Location", target.format(**vars(servers)))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = f"{name} {self.path}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def servers() -> Iterator[Servers]:
    found = Servers("", "")
    redirects = {
        "/away": "{elsewhere}/stolen",  # another port: another origin
        "/metrics": "{elsewhere}/metrics",
        "/same": "/final",  # within the origin
    }
    origin = _server("origin", found, redirects)
    elsewhere = _server("elsewhere", found, {})
    found.origin = f"http://127.0.0.1:{origin.server_address[1]}"
    found.elsewhere = f"http://127.0.0.1:{elsewhere.server_address[1]}"
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (origin, elsewhere)]
    for thread in threads:
        thread.start()
    yield found
    for server in (origin, elsewhere):
        server.shutdown()
        server.server_close()


def call(tmp_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    """`python -m infra.call GET url --token-file F`, as an operator runs it."""
    (tmp_path / "tokens").write_text(f"{TOKEN}\n")
    argv = ["-m", "infra.call", "GET", url, "--token-file", str(tmp_path / "tokens")]
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_infra_call_does_not_take_the_token_to_another_origin(
    servers: Servers, tmp_path: Path
) -> None:
    done = call(tmp_path, f"{servers.origin}/away")
    assert servers.reached("elsewhere") == []  # the token went to that server, which answered
    assert done.returncode == 2, done  # it was 0, with the other server's answer printed
    assert f"a redirect to {servers.elsewhere}/stolen, another origin: not followed" in done.stderr
    assert TOKEN not in done.stderr + done.stdout


def test_infra_call_follows_a_redirect_within_its_origin(servers: Servers, tmp_path: Path) -> None:
    done = call(tmp_path, f"{servers.origin}/same")
    assert done.returncode == 0, done
    assert done.stdout == "origin /final\n\n"  # the body, and the line infra.call ends it with
    assert servers.reached("origin")[-1] == ("/final", f"Bearer {TOKEN}")


def test_the_rollout_scrape_does_not_take_the_token_to_another_origin(servers: Servers) -> None:
    scrape = http_scrape(f"{servers.origin}/metrics", ClientToken.from_settings(TOKEN, None))
    with pytest.raises(StoreError) as refused:
        scrape()  # it returned "elsewhere /metrics" as the gateway's metrics
    assert servers.reached("elsewhere") == []
    assert "another origin: not followed" in refused.value.message
    assert "give --metrics the gateway's own /metrics URL" in refused.value.message


def test_a_scrape_without_a_token_follows_redirects_as_before(servers: Servers) -> None:
    assert http_scrape(f"{servers.origin}/metrics")() == "elsewhere /metrics\n"
    assert servers.reached("elsewhere") == [("/metrics", None)]
