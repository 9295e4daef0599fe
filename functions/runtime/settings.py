"""The serving runtime's configuration: the one module that reads its environment variables.

Entry points (the Lambda handlers, the control plane, the CLI) call `RuntimeSettings.from_env()`
once and pass the result down; a library caller that passes nothing gets the same values, read
here. Light on purpose: the health function imports it.
"""

from __future__ import annotations

import errno
import getpass
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from functions.runtime.errors import AiaasError

DEFAULT_LOCAL_STORE = ".aiaas/store"
DEFAULT_ALIAS_TTL = 60.0
DEFAULT_EXPLAIN_SECONDS = 10.0  # a third of the predict function's 30 s timeout
# Two thirds of the control function's 30 s timeout (and API Gateway's 30 s): the rest is for a
# cold start and the slower half of a comparison the probe misjudged.
DEFAULT_COMPARE_SECONDS = 20.0
DEFAULT_MAX_PAYLOAD = 6 * 1024 * 1024  # Lambda's synchronous invocation limit
# A batch job's body on the control plane: Lambda's payload less room for the event around it.
DEFAULT_MAX_UPLOAD = DEFAULT_MAX_PAYLOAD - 4096
# Versions of one function's models kept loaded at once (least recently used out), as long as
# they fit its memory: an alias's two (weighted), a rollout's candidate, callers pinning older
# versions (`/versions/{v}`), and the replay process's shadows. Past it, each request for an
# evicted version loads it again (seconds for a large model), so the default leaves room.
DEFAULT_MAX_VERSIONS = 8
# `module:function` that sets up logging in a process the functions start themselves (the
# local shadow replay process), called with its environment: `aiaas serve` names the one that
# writes its own JSON lines (infra/local/lambda_logs.py), which functions/ may not import.
LOG_SETUP_ENV = "AIAAS_LOG_SETUP"


@dataclass(frozen=True)
class S3Settings:
    """boto3 client limits: standard retries, bounded timeouts."""

    max_attempts: int = 5  # counts the first try
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0


LOAD_MODES = ("auto", "disk", "memory")


MIN_PART_MB, MAX_PART_MB = 5, 5120  # S3's smallest multipart part (but the last), its largest


@dataclass(frozen=True)
class TransferSettings:
    """How big model files move: parallel ranged GETs / multipart parts, and where they land."""

    part_bytes: int = 16 * 1024 * 1024  # one ranged GET or multipart part
    workers: int = 16  # parts in flight (S3 gives ~90 MB/s per connection)
    # Where a model's files go before onnxruntime reads them: "disk" (the cache directory),
    # "memory" (never /tmp: SnapStart allows 512 MB), "auto" (memory when the disk lacks room).
    load: str = "auto"
    # The cache's bound (AIAAS_CACHE_MAX_MB): past it after a download, the least recently used
    # entries no process holds go (cache_trim.py). 0: the cache disk's free space is the bound.
    cache_max_bytes: int = 0


@dataclass(frozen=True)
class RuntimeSettings:
    store: str = DEFAULT_LOCAL_STORE  # a directory or s3://bucket/prefix
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "aiaas")
    alias_ttl: float = DEFAULT_ALIAS_TTL  # seconds before an alias is resolved again
    ort_threads: int = 0  # onnxruntime intra-op threads; 0: by model size
    max_batch: int = 0  # rows per request; 0: the manifest's, else the runtime default
    max_run_seconds: float = 0.0  # one onnxruntime run's limit (run_deadline.py); 0: none
    s3: S3Settings = S3Settings()
    actor: str = ""  # who registry changes are recorded as, when no caller is known
    # The S3 server boto3 reaches (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL; "": AWS's own):
    # an s3:// URI names a bucket of that server (functions/runtime/served_record.py).
    s3_endpoint: str = ""
    explain_max_seconds: float = DEFAULT_EXPLAIN_SECONDS  # estimated cost an explain may take
    compare_max_seconds: float = DEFAULT_COMPARE_SECONDS  # a control-plane compare, all in
    transfer: TransferSettings = TransferSettings()
    max_versions: int = DEFAULT_MAX_VERSIONS  # loaded at once, within `memory_mb`
    memory_mb: int = 0  # the function's memory (Lambda's MemorySize); 0: unknown, not checked
    require_reason: bool = False  # every alias move names why (AIAAS_REQUIRE_REASON, move_reason)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimeSettings:
        """`AIAAS_STORE`, `AIAAS_CACHE_DIR`, `AIAAS_ALIAS_TTL`, `AIAAS_ORT_THREADS`,
        `AIAAS_MAX_BATCH`, `AIAAS_MAX_RUN_SECONDS`, `AIAAS_S3_MAX_ATTEMPTS`, `AIAAS_S3_CONNECT_TIMEOUT`,
        `AIAAS_S3_READ_TIMEOUT`, `AIAAS_ACTOR` (else the login user),
        `AIAAS_EXPLAIN_MAX_SECONDS`, `AIAAS_COMPARE_MAX_SECONDS`, `AIAAS_TRANSFER_PART_MB`,
        `AIAAS_TRANSFER_WORKERS`, `AIAAS_MODEL_LOAD` (auto|disk|memory), `AIAAS_CACHE_MAX_MB`,
        `AIAAS_MAX_VERSIONS`, `AIAAS_REQUIRE_REASON`,
        `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (Lambda's; `aiaas serve` sets the template's);
        unset means the default (an empty AIAAS_STORE is refused)."""
        env = os.environ if env is None else env
        return cls(
            store=_store(env),
            cache_dir=_cache_dir(env),
            alias_ttl=env_number(env, "AIAAS_ALIAS_TTL", DEFAULT_ALIAS_TTL),
            ort_threads=int(env_number(env, "AIAAS_ORT_THREADS", 0, whole=True)),
            max_batch=int(env_number(env, "AIAAS_MAX_BATCH", 0, whole=True)),
            max_run_seconds=env_number(env, "AIAAS_MAX_RUN_SECONDS", 0.0),
            s3=S3Settings(
                max_attempts=int(
                    env_number(env, "AIAAS_S3_MAX_ATTEMPTS", 5, whole=True, positive=True)
                ),
                connect_timeout_s=env_number(env, "AIAAS_S3_CONNECT_TIMEOUT", 5.0, positive=True),
                read_timeout_s=env_number(env, "AIAAS_S3_READ_TIMEOUT", 30.0, positive=True),
            ),
            actor=env.get("AIAAS_ACTOR") or env.get("USER") or _login(),
            s3_endpoint=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "",
            # 0 s made every explain and every compare a 422 ("the limit is 0 s"): refused.
            explain_max_seconds=env_number(
                env, "AIAAS_EXPLAIN_MAX_SECONDS", DEFAULT_EXPLAIN_SECONDS, positive=True
            ),
            compare_max_seconds=env_number(
                env, "AIAAS_COMPARE_MAX_SECONDS", DEFAULT_COMPARE_SECONDS, positive=True
            ),
            transfer=_transfer(env),
            max_versions=_max_versions(env),
            memory_mb=int(env_number(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0, whole=True)),
            require_reason=env_flag(env, "AIAAS_REQUIRE_REASON"),
        )


def _store(env: Mapping[str, str]) -> str:
    """`AIAAS_STORE`, `.aiaas/store` when unset. Set but empty (`AIAAS_STORE=$REGISTRY` with
    REGISTRY unset) it meant that default too: a job published into its own workspace."""
    value = env.get("AIAAS_STORE")
    if value is None:
        return DEFAULT_LOCAL_STORE
    if not value.strip():
        raise AiaasError(
            "AIAAS_STORE is set but empty (an unset variable?): set it to a directory or "
            f"s3://bucket/prefix, or unset it for the default {DEFAULT_LOCAL_STORE}"
        )
    return value


# What botocore reads from the environment when it builds a client: endpoint, region,
# credentials, profile and config files (AWS_*, but not Lambda's AWS_LAMBDA_*, which differ
# from one function to the next), proxies and the CA bundle.
_CLIENT_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE")


def aws_client_environment() -> tuple[tuple[str, str], ...]:
    """The variables an AWS client built now would read (s3client.py: clients that may be
    shared are those built under the same ones)."""
    return tuple(
        sorted(
            (name, value)
            for name, value in os.environ.items()
            if (name.startswith("AWS_") and not name.startswith("AWS_LAMBDA_"))
            or name.upper() in _CLIENT_NAMES
        )
    )


def _transfer(env: Mapping[str, str]) -> TransferSettings:
    load = env.get("AIAAS_MODEL_LOAD", "").strip() or "auto"
    if load not in LOAD_MODES:
        raise AiaasError(f"AIAAS_MODEL_LOAD must be one of {', '.join(LOAD_MODES)}; got {load!r}")
    # S3 takes multipart parts of 5 MB to 5 GiB; a publish holds up to `workers` parts at once.
    # Each is checked on its own: a 0 of either was refused naming both, part size first.
    part_mb = _bounded(env, "AIAAS_TRANSFER_PART_MB", 16, MIN_PART_MB, MAX_PART_MB,
                       why=" (the part sizes S3 takes)")  # fmt: skip
    workers = int(_bounded(env, "AIAAS_TRANSFER_WORKERS", 16, 1, whole=True,
                           why=" (the parts sent at once)"))  # fmt: skip
    cache_mb = int(env_number(env, "AIAAS_CACHE_MAX_MB", 0, whole=True))
    return TransferSettings(int(part_mb * 1024 * 1024), workers, load, cache_mb * 1024 * 1024)


def _max_versions(env: Mapping[str, str]) -> int:
    versions = int(env_number(env, "AIAAS_MAX_VERSIONS", DEFAULT_MAX_VERSIONS, whole=True))
    if versions < 2:  # one would reload a weighted alias's versions in turn, request by request
        raise AiaasError(
            f"AIAAS_MAX_VERSIONS must be 2 or more (a weighted alias serves two); got {versions}"
        )
    return versions


def _cache_dir(env: Mapping[str, str]) -> Path:
    """`AIAAS_CACHE_DIR`, else /tmp on Lambda (the only writable disk), else ~/.cache/aiaas."""
    if env.get("AIAAS_CACHE_DIR"):
        return Path(env["AIAAS_CACHE_DIR"])
    if env.get("AWS_LAMBDA_FUNCTION_NAME"):
        return Path("/tmp/aiaas-cache")  # noqa: S108 - Lambda's only writable directory
    return Path.home() / ".cache" / "aiaas"


def make_dirs(path: Path) -> None:
    """`path` and its missing parents made (`mkdir -p`), but never a missing home directory:
    `HOME=/nonexistent` (Debian's `nobody`, a locked-down pod) is meant never to exist, and a
    root process made it for the default cache ~/.cache/aiaas. FileNotFoundError instead,
    saying so (the cache then holds its models in memory, with a warning)."""
    if path.is_dir():
        return
    try:
        home = Path.home()
    except (RuntimeError, KeyError):  # no home directory at all: nothing to spare
        home = None
    if home is not None and path.is_relative_to(home) and not home.is_dir():
        raise FileNotFoundError(
            errno.ENOENT, f"the home directory {home} does not exist (HOME)", str(home)
        )
    path.mkdir(parents=True, exist_ok=True)


def env_number(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    whole: bool = False,
    positive: bool = False,
) -> float:
    """`name`'s value in `env` (`default` when unset or blank); anything but a finite number 0
    or more (`whole`: a whole number; `positive`: more than 0) is an error that names the
    variable. (nan passed `< 0`, and inf is no count of seconds or rows.)"""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    kind = "a whole number" if whole else "a number"
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = -1
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise AiaasError(
            f"{name} must be {kind}, {'more than 0' if positive else '0 or more'}; got {raw!r}"
        )
    return value


def _bounded(
    env: Mapping[str, str],
    name: str,
    default: float,
    low: float,
    high: float = math.inf,
    *,
    whole: bool = False,
    why: str = "",
) -> float:
    """`name` as `env_number` reads it, from `low` to `high`; out of that range (or no number)
    an error naming `name` and that range (env_number's "0 or more" said 0 would do)."""
    kind = "a whole number" if whole else "a number"
    span = f"from {low:g} to {high:g}" if math.isfinite(high) else f"{low:g} or more"
    try:
        value = env_number(env, name, default, whole=whole)
    except AiaasError:
        value = math.nan
    if not low <= value <= high:
        said = env.get(name, "").strip()
        raise AiaasError(f"{name} must be {kind}, {span}{why}; got {said!r}")
    return value


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def max_payload_bytes(env: Mapping[str, str]) -> int:
    """`AIAAS_MAX_PAYLOAD_BYTES`, the predict function's request body limit. 0 is refused: it
    made every request with a body (every predict) a 413, and meant no "no limit"."""
    return int(
        env_number(env, "AIAAS_MAX_PAYLOAD_BYTES", DEFAULT_MAX_PAYLOAD, whole=True, positive=True)
    )


def max_upload_bytes(env: Mapping[str, str]) -> int:
    """`AIAAS_CONTROL_MAX_UPLOAD_BYTES`, the control plane's limit on a batch job's uploaded
    body. Read with int() it was no check: `20MB` started `aiaas serve` and made every
    /control route a 502 ("the function raised an error"); `-1` or 0 refused every upload."""
    return int(
        env_number(
            env, "AIAAS_CONTROL_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD, whole=True, positive=True
        )
    )


def shadow_cpus(env: Mapping[str, str]) -> frozenset[int] | None:
    """`AIAAS_SHADOW_CPUS`: the CPUs the local shadow replay process runs on ("3", "2-3",
    "0,2"), None (unset or blank) for wherever the scheduler puts it. Sharing the serving
    process's CPU, its replays cost callers' p99 2-3x even at idle priority; on another,
    less (docs/rollout.md). Each must be one the machine has; they may be outside the serving
    process's own (`taskset -c 0-2 aiaas serve` with AIAAS_SHADOW_CPUS=3)."""
    raw = env.get("AIAAS_SHADOW_CPUS", "").strip()
    if not raw:
        return None
    cpus: set[int] = set()
    try:
        for part in raw.split(","):
            first, _, last = part.strip().partition("-")
            low, high = int(first), int(last or first)
            if low < 0 or high < low:
                raise ValueError(part)
            cpus.update(range(low, high + 1))
    except ValueError:
        raise AiaasError(
            f"AIAAS_SHADOW_CPUS must list CPUs as 3, 2-3 or 0,2; got {raw!r}"
        ) from None
    count = os.cpu_count() or 1
    if max(cpus) >= count:
        raise AiaasError(
            f"AIAAS_SHADOW_CPUS names CPUs this machine does not have: "
            f"{sorted(c for c in cpus if c >= count)} (it has 0-{count - 1})"
        )
    return frozenset(cpus)


SHADOW_PRIORITIES = ("idle", "normal")


def shadow_priority(env: Mapping[str, str]) -> str:
    """`AIAAS_SHADOW_PRIORITY`: idle (the default: the replay process gets a CPU only when
    nothing else wants one, so under sustained load its copies wait or drop and the callers'
    latency is spared) or normal (it shares the CPUs fairly: shadow metrics keep up on a host
    with CPU to spare, or one whose own load would starve an idle-priority process for minutes;
    callers pay for it in latency)."""
    raw = env.get("AIAAS_SHADOW_PRIORITY", "").strip().lower() or "idle"
    if raw not in SHADOW_PRIORITIES:
        raise AiaasError(
            f"AIAAS_SHADOW_PRIORITY must be idle or normal; got {env['AIAAS_SHADOW_PRIORITY']!r}"
        )
    return raw


def download_max_seconds(env: Mapping[str, str] | None = None) -> float | None:
    """`AIAAS_DOWNLOAD_MAX_SECONDS`: how long a file's download outside an invocation may take
    (download_deadline.py); 0: no limit; None: unset (the default there)."""
    env = os.environ if env is None else env
    if not env.get("AIAAS_DOWNLOAD_MAX_SECONDS", "").strip():
        return None
    return env_number(env, "AIAAS_DOWNLOAD_MAX_SECONDS", 0.0)


def env_flag(env: Mapping[str, str], name: str) -> bool:
    """`name`'s switch in `env`: 1/true/yes/on or 0/false/no/off, any case (unset or blank:
    off); anything else is an error that names the variable, never read as off."""
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE or not raw:
        return False
    raise AiaasError(
        f"{name} must be true or false (1/0, yes/no, on/off); got {env.get(name, '').strip()!r}"
    )


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
