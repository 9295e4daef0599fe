"""`python -m infra.training_image` as docs/deploy.md runs it, where it cannot work: --help on
a base install (no boto3), the command without boto3, and from an installed copy of aiaas
(site-packages holds no pyproject.toml or Dockerfile to build the image from)."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import pytest

from infra.training_image import main, source_zip


def test_help_needs_no_boto3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "    python -m infra.training_image --stack aiaas [--tag 2026-05-01] [--no-wait]" in (
        out.splitlines()
    )


def test_without_boto3_it_names_the_extra_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    assert main(["--stack", "aiaas"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "python -m infra.training_image: error: S3 and AWS access needs boto3, which is not "
        "installed: pip install 'aiaas[aws]'"
    ]


def test_an_installed_copy_without_the_sources_is_refused(tmp_path: Path) -> None:
    # What site-packages holds: the packages, not pyproject.toml, README.md or the Dockerfile.
    (tmp_path / "functions").mkdir()
    (tmp_path / "training").mkdir()
    with pytest.raises(FileNotFoundError) as refused:
        source_zip(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path} has no pyproject.toml, README.md, training/Dockerfile: run python -m "
        "infra.training_image from a clone of aiaas (the image is built from its sources)"
    )


def test_the_clone_zips_what_the_dockerfile_copies() -> None:
    names = set(zipfile.ZipFile(io.BytesIO(source_zip())).namelist())
    assert {"pyproject.toml", "README.md", "training/Dockerfile"} <= names
