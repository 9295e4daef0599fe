"""A missing optional extra is named, once: by the CLI in one line, by the gateway as a 501.

The fresh-venv test (test_serving_install.py) checks the same against a real install without
extras; these run in the developers' venv, with torch blocked where a real import must fail.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infra.extras import EXTRA_OF, install_hint
from infra.local.functions import LocalFunction
from infra.local.gateway import Gateway, GatewayRequest
from infra.template import FunctionSpec, HttpRoute

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("module", "extra"),
    [("torch", "training"), ("torch.nn", "training"), ("boto3.s3.transfer", "aws"),
     ("botocore", "aws"), ("fastapi", "control"), ("pyarrow.parquet", "parquet")],
)  # fmt: skip
def test_a_missing_module_of_an_extra_names_the_extra(module: str, extra: str) -> None:
    hint = install_hint(ModuleNotFoundError(f"No module named {module!r}", name=module))
    assert hint is not None
    assert hint.endswith(f"pip install 'aiaas[{extra}]'")
    assert module.partition(".")[0] in hint


def test_the_hint_is_found_through_a_chain_of_causes() -> None:
    try:
        try:
            raise ModuleNotFoundError("No module named 'boto3'", name="boto3")
        except ModuleNotFoundError as missing:
            raise RuntimeError("the store could not be opened") from missing
    except RuntimeError as wrapped:
        assert install_hint(wrapped) == (
            "S3 and AWS access needs boto3, which is not installed: pip install 'aiaas[aws]'"
        )


def test_an_error_raised_from_none_keeps_its_own_words() -> None:
    # `raise BadRequest("--quantize needs ... 'aiaas[quantize]'") from None` chose its message
    # (and its extra): the import error it replaced is not its cause, so no hint from it.
    try:
        try:
            raise ModuleNotFoundError("No module named 'onnx'", name="onnx")
        except ModuleNotFoundError:
            raise RuntimeError("--quantize needs onnx: pip install 'aiaas[quantize]'") from None
    except RuntimeError as replaced:
        assert install_hint(replaced) is None


def test_publish_quantize_without_onnx_names_the_quantize_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # docs/install.md's extras table: `--quantize` needs `aiaas[quantize]` (onnx, +27 MiB). The CLI
    # said `aiaas[training]` (torch: GBs), the extra EXTRA_OF gives for onnx.
    from infra.cli.main import main
    from tests.onnx_factory import linear_classifier

    model = linear_classifier(tmp_path / "model.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx`: ModuleNotFoundError
    argv = ["--store", str(tmp_path / "store"), "publish", str(model), "--name", "m"]
    assert main([*argv, "--labels", "a,b,c", "--quantize", "fp16"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "aiaas publish: error: --quantize needs the onnx package, which is not installed: "
        "pip install 'aiaas[quantize]'"
    )


@pytest.mark.parametrize("name", ["functions.runtime.gone", "numpy", "onnxruntime", None])
def test_modules_that_no_extra_provides_get_no_hint(name: str | None) -> None:
    # A module of aiaas itself or of the base install missing is a broken install or a bug.
    assert install_hint(ModuleNotFoundError("No module", name=name)) is None
    assert install_hint(ValueError("not an import")) is None


def test_every_extra_named_exists_in_pyproject() -> None:
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {extra for extra, _ in EXTRA_OF.values()} <= set(extras)


@pytest.fixture(scope="module")
def handler_module(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("extras-handlers")
    (folder / "aiaas_extra_handlers.py").write_text(
        textwrap.dedent(
            """
            def needs_torch(event, context):
                raise ModuleNotFoundError("No module named 'torch'", name="torch")

            def broken(event, context):
                import functions.runtime.no_such_module  # a bug, not a missing extra
            """
        )
    )
    sys.path.insert(0, str(folder))
    return "aiaas_extra_handlers"


def gateway_for(module: str, attr: str) -> Gateway:
    spec = FunctionSpec(attr, f"{module}.{attr}", {}, [HttpRoute("GET", "/thing")])
    return Gateway({attr: LocalFunction(spec, {})})


def test_the_gateway_answers_501_naming_the_extra(handler_module: str) -> None:
    gateway = gateway_for(handler_module, "needs_torch")
    response = gateway.handle(GatewayRequest("GET", "/thing", "", [], b""))
    assert response.status == 501
    assert json.loads(response.body) == {
        "error": "not available in this installation: training needs torch, which is not "
        "installed: pip install 'aiaas[training]'"
    }


def test_a_function_whose_init_needs_a_missing_extra_is_one_info_line_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # `aiaas serve` on a base install: the control plane's init cannot import mangum. That is
    # the install, not a fault: one INFO line naming the extra (its routes answer 501), not a
    # WARNING on every start promising a retry that cannot succeed.
    (tmp_path / "aiaas_needs_mangum.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'mangum'\", name='mangum')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    gateway = gateway_for("aiaas_needs_mangum", "handler")
    with caplog.at_level(logging.INFO, logger="aiaas.gateway"):
        gateway.warm_up(others_after_s=0)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "aiaas.gateway"]
    assert lines == [
        (
            logging.INFO,
            "handler is off in this installation (its routes answer 501): the control plane "
            "needs mangum, which is not installed: pip install 'aiaas[control]'",
        )
    ]
    response = gateway.handle(GatewayRequest("GET", "/thing", "", [], b""))
    assert response.status == 501


def test_a_missing_module_of_aiaas_itself_stays_a_502_without_details(handler_module: str) -> None:
    gateway = gateway_for(handler_module, "broken")
    response = gateway.handle(GatewayRequest("GET", "/thing", "", [], b""))
    assert response.status == 502
    assert json.loads(response.body) == {"error": "the function raised an error"}


# As an install without torch fails: ModuleNotFoundError naming the module (tests/torchless.py's
# blocker raises a plain ImportError, which also means "a name torch lacks", not a missing extra).
TRAIN_WITHOUT_TORCH = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "torch":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoTorch())
    if sys.argv[1] == "training":  # `python -m training`, the training image's entry point
        from training.__main__ import main
    else:
        from infra.cli.main import main
    sys.exit(main(sys.argv[2:]))
    """
)


def without_torch(entry: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`entry` ("aiaas" or "training") run with `argv` where torch cannot be imported."""
    return subprocess.run(
        [sys.executable, "-c", TRAIN_WITHOUT_TORCH, entry, *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("verbose", [False, True])
def test_train_without_torch_is_one_line_naming_the_extra(tmp_path: Path, verbose: bool) -> None:
    spec = REPO / "training" / "specs" / "iris-logistic.yaml"
    argv = [*(["-v"] if verbose else []), "--store", str(tmp_path / "store"), "train", str(spec)]
    result = without_torch("aiaas", argv, tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "aiaas train: error: training needs torch, which is not installed: "
        "pip install 'aiaas[training]'"
    )
    assert ("Traceback" in result.stderr) is verbose
    if not verbose:
        assert result.stderr.strip() == last


def test_python_m_training_without_torch_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    spec = REPO / "training" / "specs" / "iris-logistic.yaml"
    result = without_torch("training", ["--store", str(tmp_path / "store"), str(spec)], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "training: error: training needs torch, which is not installed: "
        "pip install 'aiaas[training]'"
    )
