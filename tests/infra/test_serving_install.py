"""`pip install aiaas` with no extras, into a fresh venv, serves a published model.

The package is installed as a user would install it (pip, from a copy of the source tree, so
the checkout gains no build/), with no torch, no boto3 and no FastAPI; every command runs from
that venv's `aiaas` script with no PYTHONPATH and outside the checkout, so nothing of the repo
(template.yaml included) is in reach. The model is made here with onnx.helper (the fresh venv
has no onnx) and only the file is handed over.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from infra.local.gateway import GatewayRequest, build_event
from tests import onnx_factory
from tests.s3server import free_port, stop_process, wait_answering

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "functions", "infra", "training")
MODEL = "tiny"
LABELS = ("a", "b", "c")
ROWS = np.array([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, 2.0], [0.5, -2.0, 1.0, 0.25]], np.float32)


@dataclass(frozen=True)
class Install:
    root: Path
    venv: Path
    store: Path
    model_file: Path
    wheel: Path

    @property
    def aiaas(self) -> str:
        return str(self.venv / "bin" / "aiaas")

    def env(self) -> dict[str, str]:
        """The user's shell: this venv first on PATH, nothing pointing into the checkout."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "VIRTUAL_ENV", "AIAAS_", "AWS_"))
        }
        return env | {
            "PATH": f"{self.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
            "AIAAS_STORE": str(self.store),
            "AIAAS_CACHE_DIR": str(self.root / "cache"),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.aiaas, *args],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _venv_python() -> str:
    return shutil.which("python3.11") or sys.executable


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Install:
    root = tmp_path_factory.mktemp("serving-install")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    venv = root / "venv"
    # The fresh venv without a pip of its own (ensurepip: ~9 CPU-s, and pip is no part of
    # what is tested): this venv's pip installs into it (`pip --python`).
    subprocess.run(
        [_venv_python(), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    pip = [sys.executable, "-m", "pip", "--no-input"]
    # Not the tests' PYTHONPATH: a checkout where `pip install .` once ran holds an
    # aiaas.egg-info, which pip then takes for an installed aiaas and skips the wheel.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    # The wheel docs/install.md says to hand around, then installed as a user installs it (pip install
    # of the source tree builds the same wheel first).
    built = [*pip, "wheel", "--quiet", "--no-deps", "-w", str(root / "dist"), str(source)]
    done = subprocess.run(built, capture_output=True, text=True, timeout=600, env=clean)
    assert done.returncode == 0, done.stderr[-3000:]
    wheel = next((root / "dist").glob("aiaas-*.whl"))
    # --no-compile: each module is compiled when first imported (the venv is writable), not
    # all of numpy's, onnxruntime's and their tests' up front (~14 CPU-s, most never run)
    done = subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "--quiet", "--no-compile",
         str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    model_file = onnx_factory.linear_classifier(root / "tiny.onnx", features=4, classes=3)
    return Install(root, venv, root / "store", model_file, wheel)


@pytest.fixture(scope="module")
def published(installed: Install) -> Install:
    labels = ",".join(LABELS)
    result = installed.run(
        "publish", str(installed.model_file), "--name", MODEL, "--labels", labels,
        "--alias", "production",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"published {MODEL}:1" in result.stdout
    return installed


def reference(installed: Install) -> np.ndarray:
    """The model's own answer: onnxruntime on the file, in this (the developers') venv."""
    session = ort.InferenceSession(str(installed.model_file), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["logits"], {"x": ROWS})[0])


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def test_the_install_has_no_extra_and_no_template(installed: Install) -> None:
    python = str(installed.venv / "bin" / "python")
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        env=installed.env(),
    )
    packages = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "aiaas" in packages
    assert not packages & {"torch", "boto3", "botocore", "fastapi", "mangum", "onnx", "pyarrow"}
    assert not (site_packages(installed.venv) / "template.yaml").exists()


def test_the_wheel_holds_the_packages_and_the_data_the_commands_read(installed: Install) -> None:
    """No tests, caches or stray data; the license; the demo specs and data `aiaas train` reads, the state
    machines and the per-model template the CLI writes; the `aiaas` entry point."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        files = {i.filename: i.file_size for i in wheel.infolist()}
        entry_points = wheel.read("aiaas-0.1.0.dist-info/entry_points.txt").decode()
    tops = {name.split("/")[0] for name in files}
    assert tops == {"functions", "infra", "training", "aiaas-0.1.0.dist-info"}
    assert not [n for n in files if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert "aiaas = infra.cli.launch:main" in entry_points  # SIGTERM taken first (early_stop.py)
    # pyproject's `license = "Apache-2.0"` names it; the text itself travels with the wheel
    assert files.get("aiaas-0.1.0.dist-info/licenses/LICENSE", 0) > 10_000
    shipped = {n for n in files if not n.endswith(".py") and not n.startswith("aiaas-")}
    wanted = [
        *(REPO / "training" / "specs").glob("*.yaml"),
        *(p for p in (REPO / "training" / "data").iterdir() if p.suffix in (".csv", ".npz")),
        *(REPO / "infra" / "statemachines").glob("*.asl.json"),
        REPO / "infra" / "model_resources.yaml",
    ]
    assert {str(p.relative_to(REPO)) for p in wanted} <= shipped
    assert max(files.values()) < 200_000, "a large file in the wheel"


@dataclass
class Served:
    base: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def served(published: Install) -> Iterator[Served]:
    port = free_port()
    log = published.root / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [published.aiaas, "serve", "--port", str(port)],
            cwd=published.root,
            env=published.env(),
            stdout=out,
            stderr=out,
        )
    server = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        stop_process(process, grace=10)


def _wait_ready(server: Served, timeout: float = 60.0) -> None:
    port = int(server.base.rsplit(":", 1)[1])
    url = f"{server.base}/v2/health/ready"
    wait_answering(server.process, port, url, timeout=timeout, log=server.log)


def test_serve_answers_simple_json_with_the_models_own_outputs(
    served: Served, published: Install
) -> None:
    answer = httpx.post(
        f"{served.base}/models/{MODEL}/predict", json={"inputs": ROWS.tolist()}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    want = reference(published)
    np.testing.assert_allclose(body["outputs"]["logits"], want, rtol=1e-5, atol=1e-5)
    assert [row["label"] for row in body["predictions"]] == [LABELS[i] for i in want.argmax(1)]
    assert (body["model"], body["version"]) == (MODEL, "1")


def test_serve_answers_the_open_inference_protocol(served: Served, published: Install) -> None:
    request = {"inputs": [{"name": "x", "shape": list(ROWS.shape), "datatype": "FP32",
                           "data": ROWS.ravel().tolist()}]}  # fmt: skip
    answer = httpx.post(f"{served.base}/v2/models/{MODEL}/infer", json=request, timeout=30)
    assert answer.status_code == 200, answer.text
    (output,) = [o for o in answer.json()["outputs"] if o["name"] == "logits"]
    got = np.reshape(output["data"], output["shape"])
    np.testing.assert_allclose(got, reference(published), rtol=1e-5, atol=1e-5)


def test_the_control_plane_names_its_extra(served: Served) -> None:
    answer = httpx.get(f"{served.base}/control/models", timeout=30)
    assert answer.status_code == 501
    assert "pip install 'aiaas[control]'" in answer.json()["error"]


def test_registry_commands_run(published: Install) -> None:
    for args in (("models",), ("show", MODEL), ("promote", MODEL, "1", "--alias", "staging")):
        result = published.run(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert MODEL in result.stdout, args
    versions = published.run("versions", MODEL)
    assert versions.returncode == 0, versions.stderr
    assert "staging" in versions.stdout and "production" in versions.stdout


def test_batch_scores_a_csv(published: Install) -> None:
    rows = published.root / "rows.csv"
    header = ",".join(f"x_{i}" for i in range(ROWS.shape[1]))
    rows.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in ROWS.tolist()) + "\n")
    result = published.run("batch", MODEL, str(rows))
    assert result.returncode == 0, result.stderr
    assert f"scored {len(ROWS)} of {len(ROWS)} rows" in result.stdout
    assert "0 failed" in result.stdout


def test_invoke_runs_the_predict_function(published: Install) -> None:
    request = GatewayRequest(
        "POST",
        f"/models/{MODEL}/predict",
        "",
        [("content-type", "application/json")],
        json.dumps({"inputs": ROWS.tolist()}).encode(),
    )
    event = build_event(request, "POST", f"/models/{MODEL}/predict", {})
    (published.root / "event.json").write_text(json.dumps(event))
    result = published.run("invoke", "Predicttiny", "-e", str(published.root / "event.json"))
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200
    logits = json.loads(response["body"])["outputs"]["logits"]
    np.testing.assert_allclose(logits, reference(published), rtol=1e-5, atol=1e-5)


def test_the_readmes_golden_event_path_outside_a_clone_says_where_events_are(
    installed: Install,
) -> None:
    """`aiaas invoke Health -e events/health_live.json` (README, --help) run where an installed
    aiaas has no events/ folder: one line saying where the golden events are, and `-`."""
    result = installed.run("invoke", "Health", "-e", "events/health_live.json")
    assert result.returncode == 1 and result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("aiaas invoke: error: cannot read event events/")
    assert "come with the aiaas source" in line and "'-' to read an event from stdin" in line


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("infra.model_fit", ("--store", "STORE")),  # docs/large_models.md, before deploying
        ("infra.model_settings", ()),
        ("infra.model_resources", ("--check",)),
    ],
)
def test_the_deploy_tools_read_the_template_of_the_folder_they_run_in(
    installed: Install, tmp_path: Path, tool: str, args: tuple[str, ...]
) -> None:
    """`python -m infra.model_fit --store URI` with an installed aiaas: its default template was
    site-packages/template.yaml, which no wheel holds, a 30-line traceback wherever it ran
    (hunt_install 4). It reads the working directory's (the SAM project's), and without one
    says in one line how to name it."""
    argv = [str(installed.venv / "bin" / "python"), "-m", tool]
    argv += [str(installed.store) if a == "STORE" else a for a in args]

    def run(cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, cwd=cwd, env=installed.env(), capture_output=True, text=True, timeout=120
        )

    (tmp_path / "elsewhere").mkdir()
    missing = run(tmp_path / "elsewhere")
    assert missing.returncode == 1 and missing.stdout == ""
    line = missing.stderr.strip()
    assert "\n" not in line, line
    assert line.startswith(f"python -m {tool}: error: ") and "template.yaml" in line
    assert "--template FILE" in line
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(REPO / "template.yaml", project / "template.yaml")
    found = run(project)
    assert found.returncode == 0, found.stderr
    assert "Traceback" not in found.stderr


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        # README's path, outside the checkout: the package's own copy of the demo spec.
        (("train", "training/specs/iris-logistic.yaml"), "training"),
        (("pull", f"{MODEL}@production", "--from", "s3://bucket/registry"), "aws"),
        (("--store", "s3://bucket/registry", "models"), "aws"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(
    published: Install, args: tuple[str, ...], extra: str
) -> None:
    result = published.run(*args)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert f"pip install 'aiaas[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr
    verbose = published.run("-v", *args)
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr
    assert f"pip install 'aiaas[{extra}]'" in verbose.stderr.splitlines()[-1]


def test_the_installed_script_stops_cleanly_while_it_imports(
    installed: Install, tmp_path: Path
) -> None:
    """The console script as pip wrote it (a pod's `aiaas serve`): SIGTERM as soon as its
    handler is set, the CLI's modules still importing, is `aiaas serve: stopped`, exit 0."""
    from tests.infra.test_cli_fatal_lines import imported_onnxruntime, json_lines, sigterm_caught

    env = {**installed.env(), "AIAAS_LOG_FORMAT": "json"}
    command = [installed.aiaas, "--store", str(tmp_path), "serve", "--port", str(free_port())]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not sigterm_caught(process.pid):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.001)
    assert not imported_onnxruntime(process.pid), "the handler came after the imports"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, (out, err)
    assert [line["message"] for line in json_lines(out, err)] == ["aiaas serve: stopped"]
