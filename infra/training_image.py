"""Build and push the training image in AWS, with no local Docker.

    python -m infra.training_image --stack aiaas [--tag 2026-05-01] [--no-wait]

Zips what training/Dockerfile copies (pyproject.toml, README.md, functions/, training/ and the
Dockerfile itself; no caches) to `s3://<ArtifactsBucket>/build/training-source.zip`, then starts
the stack's CodeBuild project (TrainingImageBuild, deployed with Training=Enabled), which runs
`docker build -f training/Dockerfile` and pushes `<TrainingRepositoryUri>:<tag>`. Deploy with
the same TrainingImageTag for the job definition to run it.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.extras import install_hint

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "functions", "training")
DOCKERFILE = "training/Dockerfile"
SOURCE_KEY = "build/training-source.zip"
SKIP = ("__pycache__", ".pyc", ".pytest_cache")
DONE = {"SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT"}


def check_sources(root: Path = ROOT) -> None:
    """An installed aiaas (site-packages) has no pyproject.toml or training/Dockerfile: the
    build would fail in CodeBuild, minutes later, so it is refused here."""
    missing = [n for n in (*SOURCES, DOCKERFILE) if not (root / n).exists()]
    if missing:
        raise FileNotFoundError(
            f"{root} has no {', '.join(missing)}: run python -m infra.training_image from a "
            "clone of aiaas (the image is built from its sources)"
        )


def source_zip(root: Path = ROOT) -> bytes:
    """The build context as a zip (sorted, no byte-code), what the Dockerfile's COPYs need."""
    check_sources(root)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in SOURCES:
            path = root / name
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            for file in files:
                if file.is_file() and not any(part in str(file) for part in SKIP):
                    archive.write(file, file.relative_to(root).as_posix())
    return buffer.getvalue()


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    found = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in found}


def start(session: Any, outputs: dict[str, str], tag: str, root: Path = ROOT) -> tuple[str, str]:
    """Upload the source and start the build: (build id, image URI it will push)."""
    session.client("s3").put_object(
        Bucket=outputs["ArtifactsBucketName"], Key=SOURCE_KEY, Body=source_zip(root)
    )
    build = session.client("codebuild").start_build(
        projectName=outputs["TrainingImageBuildProject"],
        environmentVariablesOverride=[{"name": "IMAGE_TAG", "value": tag, "type": "PLAINTEXT"}],
    )["build"]
    return str(build["id"]), f"{outputs['TrainingRepositoryUri']}:{tag}"


def wait(codebuild: Any, build_id: str, poll_s: float = 15) -> str:
    while True:
        (build,) = codebuild.batch_get_builds(ids=[build_id])["builds"]
        if build["buildStatus"] in DONE:
            return str(build["buildStatus"])
        time.sleep(poll_s)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.training_image",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the usage example's line
    )
    parser.add_argument("--stack", default="aiaas", help="stack name (default %(default)s)")
    parser.add_argument("--tag", default="latest", help="image tag (default %(default)s)")
    parser.add_argument("--no-wait", action="store_true", help="return once the build started")
    args = parser.parse_args(argv)  # --help before boto3: it needs no extra
    try:
        check_sources()  # from a clone only; checked before anything reaches AWS
        import boto3
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        hint = install_hint(exc)
        if isinstance(exc, ModuleNotFoundError) and hint is None:
            raise
        print(f"python -m infra.training_image: error: {hint or exc}", file=sys.stderr)
        return 2
    return _build(boto3.Session(), args)


def _build(session: Any, args: argparse.Namespace) -> int:
    outputs = stack_outputs(session.client("cloudformation"), args.stack)
    if "TrainingImageBuildProject" not in outputs:
        print(f"stack {args.stack} builds no training image: deploy with Training=Enabled")
        return 1
    build_id, image = start(session, outputs, args.tag)
    print(f"building {image} (CodeBuild {build_id})", flush=True)
    if args.no_wait:
        return 0
    status = wait(session.client("codebuild"), build_id)
    print(f"{image}: {status}")
    return 0 if status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
