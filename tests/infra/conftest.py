"""The template as `sam build` and `sam package` leave it, once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.template import load_template
from tests.infra.sam_cli import SKIP_REASON, Sam, sam_cli
from tests.s3server import MotoServer

PACKAGE_BUCKET = "aiaas-deploy-artifacts"


@dataclass(frozen=True)
class Packaged:
    """`sam package`'s output template, and the moto server holding what it uploaded."""

    server: MotoServer
    bucket: str
    path: Path
    build_log: str

    def template(self) -> dict[str, Any]:
        return load_template(self.path)


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Packaged]:
    """`sam build` then `sam package` to moto's S3 on loopback, as `make package` runs them."""
    if sam_cli() is None:
        pytest.skip(SKIP_REASON)
    work = tmp_path_factory.mktemp("deploy")
    server = MotoServer().start(work / "moto.log")
    try:
        boto3.client("s3", endpoint_url=server.endpoint).create_bucket(Bucket=PACKAGE_BUCKET)
        build_log = Sam().run("build")
        out = work / "packaged.yaml"
        Sam().run(
            "package",
            "--s3-bucket",
            PACKAGE_BUCKET,
            "--output-template-file",
            str(out),
            env={"AWS_ENDPOINT_URL_S3": server.endpoint},
        )
        yield Packaged(server, PACKAGE_BUCKET, out, build_log)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def x86_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle `sam build` makes (functions/lambda_bundle.py), built for this machine so it
    can run: built once per session for the tests that run it."""
    from bench.bundle_size import build

    bundle = tmp_path_factory.mktemp("x86-bundle") / "bundle"
    build(bundle, "x86_64")
    return bundle
