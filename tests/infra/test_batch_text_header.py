"""`aiaas batch` of a text model on a CSV whose texts are under the user's own column name.

The header hint told a text model's user "publish a version with --features body", which
publish refuses for a text model ("feature names need a model with one numeric input"). It
now names the text field and --text-field. Real path: the test transformer and its
tokenizer.json published by `aiaas publish --tokenizer`, scored by the real CLI; the advice is
then followed and works.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.cli.main import main
from tests.infra.test_publish_tokenizer import MODEL, publish, published_text_model


def test_a_text_models_header_hint_names_the_text_field_and_text_field_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = published_text_model(tmp_path)
    data = tmp_path / "body.csv"
    data.write_text("body\nwhere is my parcel\nplease reset my password\n")
    capsys.readouterr()
    code = main(["--store", built.store.uri, "batch", MODEL, str(data)])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.strip().endswith(
        f"model {MODEL}:1 reads text: text (it reads one text a row from column 'text': rename "
        "the column that holds the texts to text, or publish a version with --text-field body)"
    ), err
    assert "--features" not in err
    code, _, err = publish(
        built.store, built.model, "--labels", "billing,delivery,technical",
        "--tokenizer", str(built.tokenizer), "--text-field", "body",
    )  # fmt: skip
    assert code == 0, err
    assert main(["--store", built.store.uri, "batch", MODEL, str(data)]) == 0
