"""`--version 008` beside `8`: both are version 8 (README: "`03` counts as 3"), and the bare
name then served whichever sorts last by text, not the one published last. Refused, naming
the twin. The real CLI on a real ONNX model."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory


@pytest.mark.parametrize(("first", "second"), [("8", "008"), ("03", "3")])
def test_a_version_of_an_existing_ones_number_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], first: str, second: str
) -> None:
    store = LocalStore(tmp_path / "store")
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "m", "--version"]
    assert main([*argv, first]) == 0
    capsys.readouterr()
    assert main([*argv, second]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"aiaas publish: error: m:{second} is version {int(second)}, as m:{first} already is; "
        "pick another number, or none to be given the next one\n"
    )
    assert sorted(store.list_dirs("models/m/versions")) == [first]
    assert main([*argv, "10"]) == 0  # another number is fine
