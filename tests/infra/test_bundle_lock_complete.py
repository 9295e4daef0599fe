"""functions/requirements.txt is the whole Lambda bundle: functions/lambda_bundle.py installs it
with `pip install --no-deps`, so a dependency missing from the lock is missing on Lambda. Here:
every dependency a bundled package declares is locked, or one of the few that serving never
imports, left out on purpose; and every function runs from a bundle built that way, with
nothing else on its path (a tabular and a tokenizer.json model predict, the control plane
answers, every handler of the template imports)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from email.parser import Parser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bench.bundle_size import python312
from bench.models import publish_mlp
from bench.predict_latency import event
from infra.cli.main import main as aiaas
from infra.template import functions, load_template
from tests import hf_transformer
from tests.infra.test_deploy_lock import lines

ROOT = Path(__file__).resolve().parents[2]
IN = ROOT / "functions" / "requirements.in"
# What bundled packages declare and the lock leaves out (functions/requirements.txt says why),
# with who declares it. A new declared dependency fails here until it is locked or listed.
LEFT_OUT = {
    "huggingface-hub": "tokenizers",  # only Tokenizer.from_pretrained (a Hub download)
    "protobuf": "onnxruntime",  # its offline tools (quantization, transformers, backend)
    "flatbuffers": "onnxruntime",  # ORT-format conversion
    "packaging": "onnxruntime",  # its offline tools
}
LAMBDA = {  # the environment markers of Lambda's python3.12 on arm64
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "extra": "",
}
TEXT_MODEL, TABULAR_MODEL = "tiny-bert", "bench-mlp"
TEXTS = ["Where is my parcel?", "please reset my password"]
SPECS = functions(load_template(ROOT / "template.yaml"))
# What Lambda's python3.12 runtime provides after /var/task: boto3 and what it needs (and
# the variables Lambda sets that the handlers' clients read).
LAMBDA_ENV = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}
LAMBDA_ENV["AWS_LAMBDA_LOG_LEVEL"] = "WARN"
RUNTIME = ("boto3", "botocore", "s3transfer", "dateutil", "six.py", "urllib3")
# Run by python3.12 (-I -S: no site-packages, no PYTHON* variables) with the bundle first on its
# path, then the runtime's boto3: import the handlers named, then hand the last one an event.
RUN = """
import importlib, json, sys
sys.path[:0], _ = [sys.argv[1]], sys.path.append(sys.argv[2])
*_, handler = [importlib.import_module(name).handler for name in sys.argv[4:]]
event = json.loads(sys.argv[3])
print(json.dumps(handler(event, None) if event is not None else None))
"""


def declared(bundle: Path) -> dict[str, set[str]]:
    """Each bundled distribution's dependencies on Lambda, without extras."""
    found: dict[str, set[str]] = {}
    for metadata in bundle.glob("*.dist-info/METADATA"):
        headers = Parser().parsestr(metadata.read_text())
        needs = {
            str(canonicalize_name(req.name))
            for req in map(Requirement, headers.get_all("Requires-Dist") or [])
            if req.marker is None or Marker(str(req.marker)).evaluate(LAMBDA)
        }
        found[canonicalize_name(headers["Name"])] = needs
    return found


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Lambda's boto3 (pure Python), from this venv: not in the bundle, as on Lambda."""
    import boto3

    site, folder = Path(boto3.__file__).parents[1], tmp_path_factory.mktemp("var-runtime")
    for name in RUNTIME:
        (folder / name).symlink_to(site / name)
    return folder


def run(bundle: Path, runtime: Path, body: Any, env: dict[str, str], *handlers: str) -> Any:
    modules = [handler.rsplit(".", 1)[0] for handler in handlers]
    done = subprocess.run(
        [python312(), "-I", "-S", "-c", RUN, str(bundle), str(runtime), json.dumps(body),
         *modules],
        env={**LAMBDA_ENV, **env}, cwd=bundle, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local store with a tabular MLP and a transformer published with its tokenizer.json."""
    root = tmp_path_factory.mktemp("models")
    publish_mlp(root / "store", TABULAR_MODEL)
    model = hf_transformer.transformer(root / "bert.onnx", positions=24)
    tokenizer = hf_transformer.tokenizer_json(root / "tokenizer.json")
    argv = ["--store", str(root / "store"), "publish", str(model), "--name", TEXT_MODEL]
    argv += ["--tokenizer", str(tokenizer), "--labels", ",".join(hf_transformer.LABELS)]
    promote = ["--store", str(root / "store"), "promote", TEXT_MODEL, "1", "--alias", "production"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert aiaas(argv) == 0 and aiaas(promote) == 0
    return root / "store"


def predict_env(store: Path, model: str) -> dict[str, str]:
    return {
        "AIAAS_STORE": str(store),
        "AIAAS_CACHE_DIR": str(store.parent / f"cache-{model}"),
        "AIAAS_MODEL": model,
        "AIAAS_MODEL_SELECTOR": "@production",
    }


@pytest.mark.slow
def test_every_declared_dependency_is_locked_or_left_out_on_purpose(x86_bundle: Path) -> None:
    needs = declared(x86_bundle)
    missing = {name: who for who, names in needs.items() for name in names - set(needs)}
    assert missing == LEFT_OUT
    # Nothing else ships either: every bundled distribution is requirements.in's or needed by one.
    reached: set[str] = set()
    todo = [str(canonicalize_name(Requirement(line).name)) for line in lines(IN)]
    while todo:
        name = todo.pop()
        if name not in reached and name not in LEFT_OUT:
            reached.add(name)
            todo.extend(needs.get(name, ()))
    assert reached == set(needs)


@pytest.mark.slow
def test_every_handler_of_the_template_imports_from_the_bundle(
    x86_bundle: Path, runtime: Path, store: Path
) -> None:
    handlers = sorted({spec.properties["Handler"] for spec in SPECS.values()})
    assert len(handlers) == 7, handlers
    env = {"AIAAS_STORE": str(store), **predict_env(store, TABULAR_MODEL)}
    assert run(x86_bundle, runtime, None, env, *handlers) is None


@pytest.mark.slow
@pytest.mark.parametrize("model", [TABULAR_MODEL, TEXT_MODEL])
def test_a_tabular_and_a_tokenizer_model_predict_from_the_bundle(
    x86_bundle: Path, runtime: Path, store: Path, model: str
) -> None:
    inputs = np.zeros((2, 64)).tolist() if model == TABULAR_MODEL else TEXTS
    body = json.dumps({"inputs": inputs}).encode()
    request = event("POST", f"/models/{model}/predict", body, {"content-type": "application/json"})
    handler = "functions.predict.handler.handler"
    answer = run(x86_bundle, runtime, request, predict_env(store, model), handler)
    assert answer["statusCode"] == 200, answer
    predictions = json.loads(answer["body"])["predictions"]
    assert len(predictions) == 2
    if model == TEXT_MODEL:
        assert {row["label"] for row in predictions} <= set(hf_transformer.LABELS)


@pytest.mark.slow
def test_the_control_plane_answers_from_the_bundle(
    x86_bundle: Path, runtime: Path, store: Path
) -> None:
    request = json.loads((ROOT / "events/control/models_list.json").read_text())
    handler = "functions.control.handler.handler"
    answer = run(x86_bundle, runtime, request, {"AIAAS_STORE": str(store)}, handler)
    assert answer["statusCode"] == 200, answer
    listed = [model["name"] for model in json.loads(answer["body"])["models"]]
    assert sorted(listed) == sorted([TABULAR_MODEL, TEXT_MODEL])


def test_the_bundle_ships_no_test_suites_nor_onnxruntime_s_offline_tools(x86_bundle: Path) -> None:
    """numpy's test suites and onnxruntime's quantizer, transformers optimizer and ORT-format
    tools (which import onnx, protobuf or flatbuffers: not in the bundle) were 17 MB of the
    bundle that nothing on Lambda runs; the tests above run every handler without them."""
    assert sorted(str(p.relative_to(x86_bundle)) for p in x86_bundle.glob("*/**/tests")) == []
    for tool in ("transformers", "quantization", "tools"):
        assert not (x86_bundle / "onnxruntime" / tool).exists(), tool
    assert (x86_bundle / "onnxruntime" / "capi").is_dir()
    assert (x86_bundle / "numpy" / "testing").is_dir()  # numpy's own import needs it
