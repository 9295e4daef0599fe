"""`aiaas compare --data s3://bucket/prefix/KEY`: the file's URL under the model store.

A holdout uploaded beside the registry (`s3://hunt24/registry/data/holdout.csv`, its URL as
the console or `aws s3 ls` gives it) was refused as "invalid storage key
's3://hunt24/registry/data/holdout.csv'", with no word of what to give; the key alone
(`data/holdout.csv`) worked. The URL now reads as that key, and one outside the store says
what to give. S3 on moto's server; real ONNX models published by the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.s3store import S3Store
from infra.cli.main import EXIT_ERROR, main
from tests.infra.test_compare_plot_not_drawn import classifier


def test_a_url_under_the_store_reads_as_its_key(
    s3_store: S3Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = s3_store.uri
    for version in ("1", "2"):
        path = classifier(tmp_path / f"{version}.onnx", nan_below_zero=version == "2")
        argv = ["--store", uri, "publish", str(path), "--name", "clf", "--labels", "a,b,c"]
        assert main([*argv, "--features", "f0,f1"]) == 0
    s3_store.put_bytes("data/rows.csv", b"f0,f1\n1,2\n3,4\n-1,2\n")
    compare = ["--store", uri, "compare", "clf", "1", "2", "--no-progress", "--json"]
    capsys.readouterr()
    assert main([*compare, "--data", f"{uri}/data/rows.csv"]) == 0
    by_url = json.loads(capsys.readouterr().out)
    assert main([*compare, "--data", "data/rows.csv"]) == 0
    by_key = json.loads(capsys.readouterr().out)
    assert by_url["data"] == by_key["data"] == "data/rows.csv"
    assert (
        by_url["rows"]
        == by_key["rows"]
        == {
            "compared": 2,
            "failed": 1,
            "truncated": False,
            "refused": {"a": 0, "b": 1, "both": 0},
        }
    )
    # elsewhere: said what to give, not "invalid storage key"
    assert main([*compare, "--data", "s3://another-bucket/data/rows.csv"]) == EXIT_ERROR
    assert capsys.readouterr().err == (
        "aiaas compare: error: --data s3://another-bucket/data/rows.csv: a URL outside the "
        f"model store {uri}; give a file on disk (download it first) or a key in the store "
        f"(for {uri}/data/rows.csv: data/rows.csv)\n"
    )
