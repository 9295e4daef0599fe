"""Local function instances: a handler module executed afresh with its own environment.

As in Lambda, each instance is one "container": the handler module runs its init code once,
with the function's environment from template.yaml, and keeps its state between invocations.
Two models served by the same handler module are two module objects, not one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import inspect
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from functions.predict.routes import runs_model
from functions.runtime import input_cost
from functions.runtime.errors import AiaasError
from infra.extras import install_hint
from infra.local import lambda_logs
from infra.local.stack import PREDICT_HANDLER
from infra.model_settings import HTTP_API_TIMEOUT_S
from infra.template import FunctionSpec

if TYPE_CHECKING:  # it reads these instances
    from infra.local.loaded_models import LoadedModels

_ENV_LOCK = threading.Lock()


@dataclass(slots=True)
class LambdaContext:
    """The attributes of Lambda's context object that handlers use."""

    function_name: str
    memory_limit_in_mb: int = 1024
    timeout_s: float = 30.0
    aws_request_id: str = ""
    invoked_function_arn: str = ""
    # Not Lambda's: `aiaas serve` runs the jobs given here after the response is sent.
    after_response: Callable[[Callable[[], None]], None] | None = None
    # Not Lambda's: `aiaas serve`'s process outlives the request, so a model's download goes on
    # past the request's 504 and serves the next ones (download_deadline.for_context).
    serving: bool = False
    _start: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._start)) * 1000))


@contextlib.contextmanager
def patched_environ(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `env` applied, restored afterwards; one patch at a time.

    Only the patched names change, and only they are put back: other threads never see an
    empty or half-restored environment. Only Python's mapping changes, never the process's
    C environment (setenv): glibc's getenv, which native threads call unlocked, may read an
    array that setenv has just reallocated and freed. granian's tokio runtime thread, starting
    as the warm-up imported the first handler, died so in getenv (SIGSEGV at `aiaas serve`'s
    start: ~1 in 330 starts in CI; 15 in 600 with the warm-up patching for its first 0.5 s,
    0 in 600 with this). Handlers, boto3 and Powertools read os.environ; native libraries and
    child processes started without an env of their own see the server's environment.
    """
    # os.environ's own store (CPython's `_Environ._data`, keys and values as its encodekey and
    # encodevalue give them: bytes on POSIX): setting os.environ[name] would call setenv too.
    data: dict[str, str] = os.environ._data  # type: ignore[attr-defined]
    key, value = os.environ.encodekey, os.environ.encodevalue
    with _ENV_LOCK:
        saved = {name: data.get(key(name)) for name in env}
        data.update({key(name): value(v) for name, v in env.items()})
        try:
            yield
        finally:
            for name, old in saved.items():
                if old is None:
                    data.pop(key(name), None)
                else:
                    data[key(name)] = old


# Read by native libraries through getenv, which a function's environment (Python's mapping
# only, above) never reaches: the Hugging Face tokenizers library tokenizes a request on one
# thread only when TOKENIZERS_PARALLELISM says so (docs/text.md); onnxruntime starts no
# telemetry client when ORT_DISABLE_TELEMETRY is set (template.yaml's Globals say why).
NATIVE_SETTINGS = ("TOKENIZERS_PARALLELISM", "ORT_DISABLE_TELEMETRY")


def export_native_settings(env: Mapping[str, str]) -> None:
    """Put `env`'s NATIVE_SETTINGS (the template's function environment) into the process's
    own environment where it has none: once, before any thread starts (setenv is not safe
    beside a native thread's getenv)."""
    for name in NATIVE_SETTINGS:
        if name in env:
            os.environ.setdefault(name, env[name])


def local_environment(spec: FunctionSpec, overrides: Mapping[str, str]) -> dict[str, str]:
    """The function's variables; cloud-only placeholders give way to local values."""
    env = {k: v for k, v in spec.environment.items() if "<" not in v}
    env.update(overrides)
    env.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", str(spec.properties.get("MemorySize", 1024)))
    if spec.handler == PREDICT_HANDLER:
        # Lambda ends an invocation at its Timeout, run and all; here the caller gets its 504
        # then (infra/local/app.py), and the onnxruntime run is stopped too (run_deadline.py):
        # left to run, a Loop of 1e9 trips burnt a core for ~1,000 s after its 504, a route's
        # threads with it, and one answered inline held the event loop as long. Not for the
        # functions that score batches on threads of their own (the control plane's jobs),
        # whose runs may rightly outlast the request that started them.
        # At most the HTTP API's 30 s: its caller never waits longer (model_settings.py).
        limit = min(float(spec.properties.get("Timeout", 30)), HTTP_API_TIMEOUT_S)
        env.setdefault("AIAAS_MAX_RUN_SECONDS", f"{limit:g}")
    return env


class LocalFunction:
    """One instance of a template function; its init runs on first use or `warm()`."""

    def __init__(self, spec: FunctionSpec, env: Mapping[str, str]) -> None:
        self.spec = spec
        self.env = dict(env)
        self.timeout_s = float(spec.properties.get("Timeout", 30))
        # What a caller through the HTTP API waits for an answer: API Gateway answers at 30 s
        # whatever the Timeout, and `aiaas serve` at the same limit (app.py).
        self.api_timeout_s = min(self.timeout_s, HTTP_API_TIMEOUT_S)
        self._handler: Callable[..., Any] | None = None
        self._own_loop: ThreadPoolExecutor | None = None
        self._model_seconds: Callable[[], float] | None = None
        self._varies: Callable[[str | None], bool] | None = None
        self._observe: Callable[[Any], None] | None = None
        self._observer: Any = None
        self._loaded: LoadedModels | None = None  # the bound on the models a server loads
        self._release: Callable[[], None] | None = None  # the module's, told when retired
        self._init_lock = threading.Lock()
        self._calls = threading.Lock()  # guards `_in_flight` against `retire`
        self._in_flight = 0
        self.last_called = 0.0  # monotonic: which model a full server retires first
        self.is_model = spec.handler == PREDICT_HANDLER

    @property
    def handler(self) -> Callable[..., Any]:
        """The handler, its module initialised once (a cold start, as in Lambda)."""
        if self._handler is None:
            with self._init_lock:
                if self._handler is None:
                    # Each version's graph read as it loads, off the loop (input_cost.py).
                    input_cost.EAGER = True
                    handler, module = load_handler_module(self.spec.handler, self.env)
                    self._take_hooks(module)
                    # A handler object rather than a function (an ASGI adapter such as Mangum)
                    # drives its own asyncio loop with run_until_complete, which fails on the
                    # gateway's running loop and in pool threads that have none: it gets one
                    # thread with a loop of its own, as Lambda gives every handler a thread
                    # with no loop running.
                    if not inspect.isfunction(handler):
                        self._own_loop = ThreadPoolExecutor(
                            1, f"aiaas-{self.spec.logical_id}", _set_new_event_loop
                        )
                    self._handler = handler
        return self._handler

    def _take_hooks(self, module: ModuleType) -> None:
        """The optional functions a handler module offers `aiaas serve` (the predict function's
        has them all): `model_seconds`, `varies_with_input`, `observe` (handed the observer
        now, if one is attached) and `release`. One that is absent or not callable: None."""

        def hook(name: str) -> Any:
            found = getattr(module, name, None)
            return found if callable(found) else None

        self._model_seconds = hook("model_seconds")
        self._varies = hook("varies_with_input")
        self._observe = hook("observe")
        if self._observe is not None and self._observer is not None:
            self._observe(self._observer)
        self._release = hook("release")

    @property
    def warm(self) -> bool:
        return self._handler is not None

    def attach(self, observer: Any, loaded: LoadedModels | None = None) -> None:
        """Hand `observer` (the gateway's metrics) to the function's `observe()`, if its module
        has one (the predict function's does): now if it is loaded, else when it loads.
        `loaded`: the server's bound on the models it keeps loaded, asked before a cold start."""
        with self._init_lock:
            self._observer, self._loaded = observer, loaded
            if self._observe is not None:
                self._observe(observer)

    def late(self) -> str:
        """Why a call got its 504: the function's Timeout, or the HTTP API's limit before it."""
        if self.api_timeout_s < self.timeout_s:
            return (
                f"the function did not answer within the HTTP API's {self.api_timeout_s:g} s "
                f"(API Gateway's integration timeout; its Timeout is {self.timeout_s:g} s)"
            )
        return f"the function did not answer within its Timeout of {self.timeout_s:g} s"

    def model_seconds(self) -> float:
        """Recent seconds per call the function spends in its model outside the GIL, if its
        module tells (`model_seconds()`, as the predict function's does), else 0. Read once:
        `retire` may drop it between a check and the call (review_rev2)."""
        told = self._model_seconds
        return told() if told is not None else 0.0

    def varies_probe(self, route: str, version: str | None) -> Callable[[], bool] | None:
        """What tells, before each call of `route` (pinned to `version`), whether its cost may
        depend on the request's values: a predict function's module tells of the version that
        will answer (`varies_with_input(version)`); None: the route never runs a model (its
        readiness, metadata), or the function is not a predict one. Asks nothing now."""
        if not self.is_model or not runs_model(route):
            return None
        return functools.partial(self._varies_now, version)

    def _varies_now(self, version: str | None) -> bool:
        told = self._varies  # read once: `retire` may drop it
        # Retired: the call loads the module again, a cold start, off the loop.
        return True if told is None else told(version)

    def invoke(self, event: Any, later: Callable[[Callable[[], None]], None] | None = None) -> Any:
        """The handler's answer to `event`; `later` (offered to it as the context's
        `after_response`) takes the work it leaves for after the response is sent."""
        if self._loaded is None or not self._loaded.most:
            return self._call(event, later)  # no bound: nothing is retired, nothing counted
        if self._handler is None:
            self._loaded.admit(self)  # another model may go to make room for this one
        with self._calls:  # counted before the handler is read: `retire` leaves it be
            self._in_flight += 1
            self.last_called = time.monotonic()
        try:
            return self._call(event, later)
        finally:
            with self._calls:
                self._in_flight -= 1

    def _call(self, event: Any, later: Callable[[Callable[[], None]], None] | None) -> Any:
        handler = self.handler
        # Its fields in order (function_name, memory_limit_in_mb, timeout_s, aws_request_id,
        # invoked_function_arn, after_response, serving): set one by one, ~0.3 us more a call.
        context = LambdaContext(
            self.spec.logical_id, 1024, self.timeout_s, _request_id(event), "", later, True
        )
        if self._own_loop is not None:
            return self._own_loop.submit(handler, event, context).result()
        return handler(event, context)

    def retire(self, then: Callable[[], None] | None = None) -> bool:
        """Let go of the initialised module (a model's sessions with it), as Lambda reclaims
        an idle container: its next call is a cold start. The module's `release()` writes
        what it holds (capture lines, drift counts, EMF samples) on a thread of its own, then
        `then` runs (the collector: the module is freed by then). Written on the call that
        retired it, a slow or away store held that call, and every cold start queued on the
        bound, for the writes and their retries (review_rev2 6). False, and nothing done,
        while it is called, initialised, or not initialised at all."""
        if not self._init_lock.acquire(blocking=False):
            return False  # its init is running: a call waits for it
        try:
            with self._calls:
                if self._in_flight or self._handler is None:
                    return False
                self._handler = None  # a call from now on inits it again, after this
            release, self._release = self._release, None
            self._model_seconds = self._observe = self._varies = None
            if self._own_loop is not None:
                self._own_loop.shutdown(wait=False)
                self._own_loop = None
            if release is not None:
                held = [release]  # the thread's only hold on the module: gone before `then`
                del release
                threading.Thread(
                    target=_release_aside,
                    args=(held, then, self.spec.logical_id),
                    name=f"aiaas-release-{self.spec.logical_id}",
                    daemon=True,  # a stop meanwhile: the module's exit handlers write the rest
                ).start()
            return True
        finally:
            self._init_lock.release()


def _release_aside(
    held: list[Callable[[], None]], then: Callable[[], None] | None, logical_id: str
) -> None:
    try:
        held.pop()()
    except Exception:  # a module's own bug: said, and the function is let go all the same
        logging.getLogger("aiaas.gateway").exception("release of %s failed", logical_id)
    if then is not None:
        then()


def _request_id(event: Any) -> str:
    """The event's request id (as Lambda's context carries the invocation's), else a fresh one."""
    try:
        return str(event["requestContext"]["requestId"])
    except (KeyError, TypeError):
        return str(uuid.uuid4())


def _set_new_event_loop() -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())


def load_handler(handler: str, env: Mapping[str, str]) -> Callable[..., Any]:
    """Import `module.function` as a fresh module object, its init run under `env`."""
    return load_handler_module(handler, env)[0]


def load_handler_module(
    handler: str, env: Mapping[str, str]
) -> tuple[Callable[..., Any], ModuleType]:
    """`load_handler`, and the module it was found in."""
    module_name, _, attr = handler.rpartition(".")
    found = importlib.util.find_spec(module_name)
    if not module_name or found is None or found.loader is None:
        raise AiaasError(f"handler {handler!r}: module {module_name!r} not found")
    module = importlib.util.module_from_spec(found)
    lambda_logs.install(env)  # the function's lines, as Lambda writes them (LogFormat: JSON)
    with patched_environ(env):
        found.loader.exec_module(module)
    function = getattr(module, attr, None)
    if not callable(function):
        raise AiaasError(f"handler {handler!r}: {module_name} has no function {attr!r}")
    return function, module


def function_instances(
    specs: Mapping[str, FunctionSpec], env: Mapping[str, str]
) -> dict[str, LocalFunction]:
    """One warm instance per function that has HTTP routes."""
    return {
        name: LocalFunction(spec, local_environment(spec, env))
        for name, spec in specs.items()
        if spec.routes
    }


def warm_groups(
    functions: list[LocalFunction], most_models: int = 0
) -> tuple[list[LocalFunction], list[LocalFunction]]:
    """The functions the warm-up inits at once, in order, and those it inits a moment later;
    `most_models` (`AIAAS_SERVE_MAX_MODELS`, 0: all) models, the others on their first call.
    Health comes first: inits take turns (`patched_environ`'s lock, held for a whole init, a
    model's download and load included), and with the models first a liveness probe's call
    waited for every model's load: a start with a model slow to download failed Kubernetes'
    startupProbe (1 s timeout) throughout, and its pod was restarted before it could serve.
    Health loads no model: its init takes milliseconds."""
    first = [f for f in functions if f.spec.handler.startswith("functions.health.")]
    models = [f for f in functions if f.spec.handler.startswith("functions.predict.")]
    first += models[:most_models] if most_models else models
    return first, [f for f in functions if f not in first and f not in models]


def log_init_failure(logical_id: str, exc: Exception) -> None:
    """A missing extra is how this install was made, not a fault a retry would mend: INFO."""
    log = logging.getLogger("aiaas.gateway")
    if (hint := install_hint(exc)) is not None:
        log.info("%s is off in this installation (its routes answer 501): %s", logical_id, hint)
        return
    log.warning("init of %s failed; retried on its first request: %s", logical_id, exc)
