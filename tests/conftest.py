"""Shared fixtures: a real S3-compatible server on loopback, stores of both kinds, ONNX files."""

from __future__ import annotations

import atexit
import collections
import contextlib
import functools
import os
import re
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import httpx
import httpx._transports.default
import pytest

from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store, make_s3_client
from functions.runtime.store import LocalStore, ObjectStore
from tests import onnx_factory, serve_logs
from tests.s3server import MotoServer

# Parsed templates are cached under XDG_CACHE_HOME: not in the developer's home, and gone when
# this process (the run, or one xdist worker) ends: 2,400 were left in /tmp by earlier runs.
_CACHE_HOME = tempfile.mkdtemp(prefix="aiaas-test-cache-")
atexit.register(shutil.rmtree, _CACHE_HOME, True)
# Never let a test reach a real AWS account or read the developer's credentials.
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_var, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
    AIAAS_S3_MAX_ATTEMPTS="2",
    AIAAS_S3_CONNECT_TIMEOUT="2",
    AIAAS_S3_READ_TIMEOUT="10",
    XDG_CACHE_HOME=_CACHE_HOME,
)

# httpx reads the whole CA bundle into a new SSL context for every Client and every httpx.get
# (30-38 ms of CPU here); the tests make thousands of them, over plain HTTP on loopback, many
# while polling a server that is starting on the same 2 cores. One context per setting serves
# them all, as httpx's docs advise for a shared context.
httpx._transports.default.create_ssl_context = functools.cache(  # type: ignore[assignment]
    httpx._transports.default.create_ssl_context
)

# Every make_s3_client() makes a new boto3 Session, and each Session's own loader parses S3's
# service model, endpoints and rulesets from JSON again: 0.25-1 s of CPU per client here, and
# the tests make hundreds (each S3Store, each in-process CLI run). One loader for all sessions
# parses them once; its caches are what one Session already shares between its clients.
botocore.session.create_loader = functools.cache(botocore.session.create_loader)


@pytest.fixture
def stop_signals_as_in_a_terminal() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP handled as in a terminal's foreground, whatever this run
    inherited, in this process and in the processes it starts: `nohup` ignores SIGHUP and a
    shell without job control ignores SIGINT in its background jobs, the CLI and granian rightly
    keep an ignored signal ignored, and a test of stopping them waited for a stop that never
    came (4 such tests failed in a run under `nohup` in a background job). Use it as
    `pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")`."""
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3 server in a child process: real HTTP and real SigV4 signing on loopback."""
    server = MotoServer().start(tmp_path_factory.mktemp("moto") / "moto.log")
    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint
    yield server
    server.stop()
    if previous is None:
        os.environ.pop("AWS_ENDPOINT_URL", None)
    else:
        os.environ["AWS_ENDPOINT_URL"] = previous


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> str:
    """A fresh private bucket for one test."""
    bucket = f"aiaas-test-{uuid.uuid4().hex[:12]}"
    make_s3_client().create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3_store(s3_bucket: str) -> S3Store:
    return S3Store(s3_bucket, "registry")


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """Each test using this runs against the directory store and against S3 (moto server)."""
    name = "local_store" if request.param == "local" else "s3_store"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def registry(store: ObjectStore) -> Registry:
    return Registry(store)


@pytest.fixture
def classifier_onnx(tmp_path: Path) -> Path:
    return onnx_factory.linear_classifier(tmp_path / "onnx" / "linear.onnx")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


# Session fixtures built once per run, not once per pytest-xdist worker: a module that uses
# one runs whole on the worker that holds it (the others take tens of seconds each).
SHARED_SESSION_FIXTURES = ("packaged", "x86_bundle", "published")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks we add
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests for `--dist loadgroup` (`make unit`): by module, so module fixtures are
    built once, and every module that uses a shared session fixture with the others using it.
    The modules that use `sam build`'s output are also marked `sam_build`: `make unit` runs
    them in a second, serial pass, as `sam build` writes to the checkout's .aws-sam (two
    workers each building it at once fail with shutil's "are the same file")."""
    uses: dict[str, set[str]] = {}
    for item in items:
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        names = {
            n for n in SHARED_SESSION_FIXTURES if defs.get(n) and defs[n][-1].scope == "session"
        }
        uses.setdefault(item.nodeid.split("::", 1)[0], set()).update(names)
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        first = [name for name in SHARED_SESSION_FIXTURES if name in uses[module]]
        item.add_marker(pytest.mark.xdist_group(first[0] if first else module))
        if "packaged" in uses[module]:
            item.add_marker(pytest.mark.sam_build)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: each worker's collected node ids
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """Refuse an ungrouped parallel run: without its groups, a module's tests are spread over
    the workers, each building the module's fixtures, and `sam build` may run twice at once.
    Nothing else fails loudly when grouping stops (pytest 9.2 with xdist 3.8 did, silently)."""
    ungrouped = [nodeid for nodeid in ids if "@" not in nodeid]
    if node.config.getvalue("dist") == "loadgroup" and ungrouped:
        raise pytest.UsageError(
            f"--dist loadgroup did not group {len(ungrouped)} tests (first: {ungrouped[0]});"
            " is pytest newer than pyproject.toml's dev pin allows?"
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    serve_logs.before_test()


# A pytest process that holds more descriptors than this after a test is leaking them: a
# worker reached 1,024 late in a run (each model cache entry a dropped pool had held stayed
# open), select() refused the next one and a shadow thread died, far from the cause. Said once
# each time the count passes the bar (~0.1 ms a test to count).
DESCRIPTORS_MAX = 512
_descriptor_bar = [DESCRIPTORS_MAX]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """The test (its fixtures torn down) after which this process first holds more than
    `DESCRIPTORS_MAX` open descriptors fails, saying what they are."""
    yield
    fds = Path("/proc/self/fd")
    if not fds.is_dir() or len(names := os.listdir(fds)) <= _descriptor_bar[0]:
        return
    _descriptor_bar[0] = len(names) + DESCRIPTORS_MAX  # not again for every later test
    named: collections.Counter[str] = collections.Counter()
    for name in names:
        with contextlib.suppress(OSError):  # the listing's own, closed by now
            named[re.sub(r"\[\d+\]$", "", os.readlink(fds / name))] += 1
    pytest.fail(
        f"this pytest process holds {len(names)} open descriptors after this test (more than "
        f"{DESCRIPTORS_MAX}): a leak, here or in an earlier test; most held: "
        f"{named.most_common(8)}"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test's report carries the log tail of each `aiaas serve` it had running (or
    that ended during it): a failure inside a client call names no server's reason."""
    report = yield
    if report.failed:
        for server in serve_logs.SERVERS:
            report.sections.append((f"log of {server.name}", server.tail()))
    return report


@pytest.fixture
def switching() -> Iterator[None]:
    """Threads switched as often as the interpreter can: a race shows within a few thousand
    calls rather than once a day."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)
