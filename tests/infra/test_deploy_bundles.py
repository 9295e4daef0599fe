"""The bundles `sam package` uploads (tests/infra/conftest.py runs sam build and sam package
against moto's S3 on loopback): every function's zip holds its handler and arm64 native
libraries, no training code, and fits Lambda's limit; the state machine definition is there."""

from __future__ import annotations

import io
import json
import zipfile
from functools import cache
from pathlib import Path

import boto3
import pytest

from functions.lambda_bundle import NOT_COMPILED
from tests.infra.cloudformation_offline import REGION
from tests.infra.conftest import Packaged
from tests.infra.test_deploy import s3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
EM_AARCH64 = 183  # ELF e_machine of arm64
PY312_MAGIC = (3531).to_bytes(2, "little") + b"\r\n"  # importlib.util.MAGIC_NUMBER of 3.12
FUNCTION = "AWS::Serverless::Function"


def location(uri: str) -> tuple[str, str]:
    assert uri.startswith("s3://"), f"not uploaded by sam package: {uri}"
    bucket, key = uri[len("s3://") :].split("/", 1)
    return bucket, key


@cache
def _bundle(endpoint: str, bucket: str, key: str) -> zipfile.ZipFile:
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return zipfile.ZipFile(io.BytesIO(body))


def elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF", "not an ELF file"
    return int.from_bytes(data[18:20], "little")


def test_every_function_points_at_an_uploaded_bundle_with_its_handler(packaged: Packaged) -> None:
    resources = packaged.template()["Resources"]
    functions = {k: r for k, r in resources.items() if r["Type"] == FUNCTION}
    assert {"Predictdigitsmlp", "Health", "BatchFunction", "ControlPlane"} <= set(functions)
    for logical, resource in functions.items():
        bucket, key = location(resource["Properties"]["CodeUri"])
        bundle = _bundle(packaged.server.endpoint, bucket, key)
        module = resource["Properties"]["Handler"].rsplit(".", 1)[0]
        assert f"{module.replace('.', '/')}.py" in bundle.namelist(), logical


def test_the_bundle_holds_arm64_native_libraries_and_no_training_code(packaged: Packaged) -> None:
    resources = packaged.template()["Resources"]
    bucket, key = location(resources["Predictdigitsmlp"]["Properties"]["CodeUri"])
    bundle = _bundle(packaged.server.endpoint, bucket, key)
    names = bundle.namelist()
    libraries = [n for n in names if n.endswith(".so") or ".so." in n]
    ort = [n for n in libraries if n.startswith("onnxruntime/capi/onnxruntime_pybind11_state")]
    assert ort and ort[0].endswith("cpython-312-aarch64-linux-gnu.so"), ort
    assert any(n.startswith("numpy/") for n in libraries)
    machines = {n: elf_machine(bundle.read(n)[:20]) for n in libraries}
    assert {n for n, m in machines.items() if m != EM_AARCH64} == set()
    unzipped = sum(info.file_size for info in bundle.infolist())
    assert unzipped < 250 * 1024 * 1024  # Lambda's limit for a zip package, unzipped
    tops = {n.split("/", 1)[0] for n in names}
    assert not tops & {"training", "tests", "torch", "bench", "infra", "boto3"}, tops


def test_every_module_ships_compiled_for_lambdas_python(packaged: Packaged) -> None:
    """Lambda's /var/task is read-only: a module without its .pyc is compiled on every cold
    start. functions/lambda_bundle.py compiles all but tests, as 3.12 checked-hash .pyc."""
    resources = packaged.template()["Resources"]
    bucket, key = location(resources["Predictdigitsmlp"]["Properties"]["CodeUri"])
    bundle = _bundle(packaged.server.endpoint, bucket, key)
    names = set(bundle.namelist())
    sources = [n for n in names if n.endswith(".py") and not NOT_COMPILED.search("/" + n)]
    assert len(sources) > 1000 and "functions/predict/handler.py" in sources
    missing = [n for n in sources if compiled(n) not in names]
    assert missing == [], missing[:10]
    for name in ("functions/predict/handler.py", "numpy/__init__.py", "onnxruntime/__init__.py"):
        head = bundle.read(compiled(name))[:8]
        assert head[:4] == PY312_MAGIC, name  # what Lambda's python3.12 loads
        assert int.from_bytes(head[4:8], "little") == 0b11, name  # hash-based, checked
    assert not any(n.endswith(".cpython-311.pyc") for n in names)  # no caches of the builder's
    assert not {"functions/Makefile", "functions/lambda_bundle.py"} & names


def compiled(source: str) -> str:
    folder, _, file = source.rpartition("/")
    return f"{folder}/__pycache__/{file[:-3]}.cpython-312.pyc".lstrip("/")


def test_the_state_machine_definition_is_uploaded(packaged: Packaged) -> None:
    definition = packaged.template()["Resources"]["BatchStateMachine"]["Properties"]
    uri = definition["DefinitionUri"]
    body = s3(packaged).get_object(Bucket=uri["Bucket"], Key=uri["Key"])["Body"].read()
    assert json.loads(body) == json.loads((ROOT / "infra/statemachines/batch.asl.json").read_text())
