"""Configuration is read once, at the entry points, and never written to steer other code."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from functions.predict.service import service_from_env
from functions.runtime.batch.settings import BatchSettings
from functions.runtime.errors import AiaasError
from functions.runtime.settings import RuntimeSettings, S3Settings, shadow_cpus

REPO = Path(__file__).resolve().parents[2]

# The modules that may read the environment: the two settings modules, and the predict
# function's entry (its handler module, `service_from_env`, Powertools' service name and the
# metrics switches) and the control plane's upload limit, both read at container init.
READERS = {
    "functions/runtime/settings.py",
    "functions/runtime/batch/settings.py",
    "functions/predict/handler.py",
    "functions/predict/service.py",
    "functions/predict/telemetry.py",
    "functions/drift/handler.py",  # the drift job's window and threshold, at container init
    "functions/rollout/handler.py",  # the CloudWatch namespace, at container init
    "functions/shadow/handler.py",  # the store, at container init
    "functions/shadow/process.py",  # the local replay process's main: the store it inherits
    "functions/control/batch_api.py",
    "functions/control/rollouts_api.py",  # the rollout state machine's ARN, at container init
    "functions/runtime/batch/parallel.py",  # hands its own environment to worker processes
}


def test_only_the_settings_and_entry_modules_read_the_environment() -> None:
    readers = {
        str(path.relative_to(REPO))
        for path in (REPO / "functions").rglob("*.py")
        if re.search(r"os\.environ|os\.getenv", path.read_text())
    }
    assert readers <= READERS, sorted(readers - READERS)


def test_nothing_under_functions_writes_the_environment() -> None:
    writes = re.compile(
        r"os\.environ(\[[^]]+\]\s*=|\.(update|setdefault|pop)\(|\.__setitem__)|putenv"
    )
    writers = [
        str(path.relative_to(REPO))
        for path in (REPO / "functions").rglob("*.py")
        if writes.search(path.read_text())
    ]
    assert writers == []


def test_runtime_settings_from_an_environment() -> None:
    settings = RuntimeSettings.from_env(
        {
            "AIAAS_STORE": "s3://bucket/registry",
            "AIAAS_CACHE_DIR": "/var/cache/aiaas",
            "AIAAS_ALIAS_TTL": "2.5",
            "AIAAS_ORT_THREADS": "3",
            "AIAAS_MAX_BATCH": "64",
            "AIAAS_MAX_RUN_SECONDS": "1.5",
            "AIAAS_S3_MAX_ATTEMPTS": "2",
            "AIAAS_S3_READ_TIMEOUT": "1.5",
            "AIAAS_ACTOR": "ci",
        }
    )
    assert settings == RuntimeSettings(
        store="s3://bucket/registry",
        cache_dir=Path("/var/cache/aiaas"),
        alias_ttl=2.5,
        ort_threads=3,
        max_batch=64,
        max_run_seconds=1.5,
        s3=S3Settings(max_attempts=2, connect_timeout_s=5.0, read_timeout_s=1.5),
        actor="ci",
    )
    defaults = RuntimeSettings.from_env({"USER": "someone"})
    assert (defaults.store, defaults.alias_ttl, defaults.ort_threads) == (".aiaas/store", 60.0, 0)
    assert defaults.actor == "someone"


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("AIAAS_ALIAS_TTL", "soon"),
        ("AIAAS_MAX_BATCH", "-4"),
        ("AIAAS_MAX_RUN_SECONDS", "inf"),
        ("AIAAS_S3_MAX_ATTEMPTS", "2.5"),
        # Each of these started a serve: nan and inf as TTLs, and botocore's own words (or, for
        # a timeout of 0, urllib3's traceback) at the first S3 call, never naming the variable.
        ("AIAAS_ALIAS_TTL", "nan"),
        ("AIAAS_ALIAS_TTL", "inf"),
        ("AIAAS_S3_MAX_ATTEMPTS", "0"),
        ("AIAAS_S3_CONNECT_TIMEOUT", "0"),
        ("AIAAS_S3_READ_TIMEOUT", "nan"),
    ],
)
def test_a_bad_setting_names_itself(name: str, raw: str) -> None:
    with pytest.raises(AiaasError, match=f"{name} must be .*; got '{re.escape(raw)}'"):
        RuntimeSettings.from_env({name: raw})


@pytest.mark.parametrize("raw", ["", " "])
def test_an_empty_store_names_itself_and_unset_is_the_default(raw: str) -> None:
    """`AIAAS_STORE=$REGISTRY` with REGISTRY unset meant `.aiaas/store`: a CI job published
    into its own workspace and exited 0."""
    with pytest.raises(AiaasError, match=r"^AIAAS_STORE is set but empty"):
        RuntimeSettings.from_env({"AIAAS_STORE": raw})
    assert RuntimeSettings.from_env({}).store == ".aiaas/store"


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("AIAAS_MAX_PAYLOAD_BYTES", "6MB"),
        ("AIAAS_MAX_PAYLOAD_BYTES", "-1"),
        ("AIAAS_DRIFT_FLUSH_SECONDS", "soon"),
    ],
)
def test_a_bad_predict_function_setting_names_itself(tmp_path: Path, name: str, raw: str) -> None:
    # docs/configuration.md: "a bad value is an error that names the variable"; these two were
    # a bare int()/float() ValueError ("invalid literal for int() with base 10: '6MB'").
    env = {"AIAAS_MODEL": "iris", "AIAAS_STORE": str(tmp_path), name: raw}
    with pytest.raises(AiaasError, match=f"{name} must be .*; got '{re.escape(raw)}'"):
        service_from_env(env)


def test_batch_settings_from_an_environment() -> None:
    settings = BatchSettings.from_env(
        {"AIAAS_BATCH_CHUNK_ROWS": "100", "AIAAS_BATCH_WORKERS": "3", "AIAAS_ORT_THREADS": "2"}
    )
    assert (settings.chunk_rows, settings.workers, settings.worker_ort_threads) == (100, 3, 2)
    assert settings.with_chunk_rows(None) is settings
    with pytest.raises(AiaasError, match="chunk rows must be positive"):
        settings.with_chunk_rows(0)


def test_local_batch_runs_and_their_line_from_an_environment() -> None:
    """`aiaas serve`'s own runs on a directory store: 1 at a time and 100 waiting, unless set."""
    assert (BatchSettings.from_env({}).local_runs, BatchSettings.from_env({}).local_queue) == (
        1,
        100,
    )
    env = {"AIAAS_BATCH_LOCAL_RUNS": "2", "AIAAS_BATCH_LOCAL_QUEUE": "0"}  # 0: the default
    assert (BatchSettings.from_env(env).local_runs, BatchSettings.from_env(env).local_queue) == (
        2,
        100,
    )
    with pytest.raises(AiaasError) as refused:
        BatchSettings.from_env({"AIAAS_BATCH_LOCAL_QUEUE": "-1"})
    assert refused.value.message == (
        "AIAAS_BATCH_LOCAL_QUEUE must be a whole number, 0 or more (0 or unset: the default); "
        "got '-1'"
    )


def test_shadow_cpus_are_a_cpu_list_this_process_may_use() -> None:
    usable = sorted(os.sched_getaffinity(0))
    low, high = usable[0], usable[-1]
    assert shadow_cpus({}) is None and shadow_cpus({"AIAAS_SHADOW_CPUS": " "}) is None
    assert shadow_cpus({"AIAAS_SHADOW_CPUS": str(high)}) == {high}
    assert shadow_cpus({"AIAAS_SHADOW_CPUS": f"{low}-{high}"}) == set(range(low, high + 1))
    assert shadow_cpus({"AIAAS_SHADOW_CPUS": f" {low} , {high} "}) == {low, high}
    for bad in ("one", "2-1", "-1", "1,", "1.5"):
        with pytest.raises(AiaasError, match="must list CPUs as 3, 2-3 or 0,2"):
            shadow_cpus({"AIAAS_SHADOW_CPUS": bad})
    # Outside this process's own CPUs is the point (the server on some, the replay on others).
    os.sched_setaffinity(0, {low})
    try:
        assert shadow_cpus({"AIAAS_SHADOW_CPUS": str(high)}) == {high}
    finally:
        os.sched_setaffinity(0, usable)
    missing = os.cpu_count() or 1
    with pytest.raises(AiaasError, match=rf"does not have: \[{missing}\] \(it has 0-"):
        shadow_cpus({"AIAAS_SHADOW_CPUS": f"{low},{missing}"})
