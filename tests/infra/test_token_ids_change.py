"""A text model's new version whose tokenizer reads token ids as other tokens is said, at
publish, promote and rollout (hunt_journey6 1).

docs/text.md keeps token ids working for clients that tokenize themselves with `GET
/models/{name}/tokenizer`. A retrain with a new vocabulary answers raw text right (each version
tokenizes with its own), but such a client's ids are other tokens in the new version: a BPE
retrain of a WordPiece model was published, canaried, rolled out and promoted without a word,
while 73 of 200 ids rows got another label with a 200. Real parts: the test transformer and
WordPiece tokenizer.json files published by the real CLI, the ids made by the `tokenizers`
library and answered by the real predict handler.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tokenizers import Tokenizer

from functions.control.app import create_app
from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.cli.rollout_commands import _NoMetrics
from tests import hf_transformer
from tests.infra.test_capture_export_cells import capture
from tests.infra.test_publish_tokenizer import MODEL, publish, published_text_model

LABELS = ",".join(hf_transformer.LABELS)


def _reordered(path: Path) -> Path:
    """The same vocabulary (so the same embedding fits it), its words in reverse order."""
    words = list(dict.fromkeys(hf_transformer.WORDS))[::-1]
    tokens = [*hf_transformer.SPECIALS, *words, *hf_transformer.PIECES]
    return hf_transformer.tokenizer_json(path, tokens)


def _cli(store_uri: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--store", store_uri, *argv])
    return code, out.getvalue(), err.getvalue()


def test_a_version_reading_ids_as_other_tokens_is_said(tmp_path: Path) -> None:
    built = published_text_model(tmp_path)  # version 1, its tokenizer in the vocabulary's order
    assert _cli(built.store.uri, "promote", MODEL, "1")[0] == 0
    assert "reads token ids" not in built.published
    other = _reordered(tmp_path / "reordered" / "tokenizer.json")
    code, out, err = publish(
        built.store, built.model, "--labels", LABELS, "--tokenizer", str(other)
    )
    assert code == 0, err
    where = hf_transformer.vocabulary().index("where")
    assert (
        f"warning: this version of {MODEL} reads token ids as other tokens than {MODEL}:1 "
        f'("where" is {where} there, ' in out
    ), out
    assert "GET /models/tiny-bert/tokenizer" in out and "send raw text" in out

    # The harm said: version 1's ids (from its tokenizer route's document) answered by 2.
    tokenizer = Tokenizer.from_file(str(built.tokenizer))
    encoded = tokenizer.encode("where is my parcel")
    ids = {"inputs": {"input_ids": [encoded.ids], "attention_mask": [encoded.attention_mask]}}
    ids["inputs"]["token_type_ids"] = [encoded.type_ids]
    registry = Registry(built.store)
    text = {"inputs": ["where is my parcel"]}
    one, two = (
        capture(registry, tmp_path, MODEL, [ids, text], route=f"/models/{{}}/versions/{v}/predict")
        for v in ("1", "2")
    )
    assert one[0]["outputs"] == one[1]["outputs"]  # 1 reads its own ids as the text
    assert two[0]["outputs"] != two[1]["outputs"]  # 2 reads 1's ids as another text

    code, out, err = _cli(built.store.uri, "promote", MODEL, "2", "--weight", "0.5")
    assert code == 0, err
    assert f"warning: version 2 of {MODEL} reads token ids as other tokens than {MODEL}:1" in err
    assert json.dumps("where") in err


def test_the_same_ids_are_not_said(tmp_path: Path) -> None:
    """The same tokenizer again (an int8 variant, a retrain on the same vocabulary): no word."""
    built = published_text_model(tmp_path)
    assert _cli(built.store.uri, "promote", MODEL, "1")[0] == 0
    same = hf_transformer.tokenizer_json(tmp_path / "same" / "tokenizer.json")
    code, out, err = publish(built.store, built.model, "--labels", LABELS, "--tokenizer", str(same))
    assert code == 0, err
    assert "reads token ids" not in out + err
    code, out, err = _cli(built.store.uri, "promote", MODEL, "2", "--weight", "0.5")
    assert code == 0, err
    assert "reads token ids" not in out + err


def _two_vocabularies(tmp_path: Path, *promote: str) -> LocalStore:
    """Version 1 (the vocabulary's order) and 2 (reordered) of MODEL; `promote` the version
    production is given before 2 is published, if any. The store."""
    built = published_text_model(tmp_path)
    for version in promote:
        assert _cli(built.store.uri, "promote", MODEL, version)[0] == 0
    other = _reordered(tmp_path / "reordered" / "tokenizer.json")
    code, _, err = publish(built.store, built.model, "--labels", LABELS, "--tokenizer", str(other))
    assert code == 0, err
    return built.store


def _warned(err: str, to: str, base: str) -> bool:
    return (
        f"warning: version {to} of {MODEL} reads token ids as other tokens than {MODEL}:{base}"
        in err
    )


def test_a_rollback_after_a_warned_promote_says_it_too(tmp_path: Path) -> None:
    """A rollback, during an incident, moves the clients that re-fetched 2's tokenizer after
    the promote's warning back to 1: it said nothing (rev12 2)."""
    uri = _two_vocabularies(tmp_path, "1").uri
    code, _, err = _cli(uri, "promote", MODEL, "2")
    assert code == 0 and _warned(err, "2", "1"), err
    code, out, err = _cli(uri, "rollback", MODEL)
    assert code == 0, err
    assert "rolled back from 2" in out and _warned(err, "1", "2"), out + err


def test_a_first_promote_moving_the_bare_name_off_the_newest_says_it(tmp_path: Path) -> None:
    """No production: the bare name serves the newest, 2; promoting 1 moves its callers."""
    uri = _two_vocabularies(tmp_path).uri
    code, out, err = _cli(uri, "promote", MODEL, "1")
    assert code == 0, err
    assert _warned(err, "1", "2"), out + err
    code, _, err = _cli(uri, "promote", MODEL, "1", "--alias", "staging")  # no callers before
    assert code == 0 and "reads token ids" not in err, err


def test_a_promote_back_to_the_base_ending_a_canary_says_it(tmp_path: Path) -> None:
    uri = _two_vocabularies(tmp_path, "1").uri
    code, _, err = _cli(uri, "promote", MODEL, "2", "--weight", "0.5")
    assert code == 0 and _warned(err, "2", "1"), err
    code, out, err = _cli(uri, "promote", MODEL, "1")  # the keyed callers on 2 move to 1
    assert code == 0, err
    assert _warned(err, "1", "2") and not _warned(err, "2", "1"), out + err


def test_a_rollout_aborted_says_the_move_back(tmp_path: Path) -> None:
    """An abort (or a rollout rolled back) moves the candidate's callers back to the baseline."""
    store = _two_vocabularies(tmp_path, "1")
    plan = RolloutPlan(steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01)
    RolloutEngine(Registry(store), _NoMetrics()).start(
        MODEL, "2", plan, alias="production", actor="alice"
    )
    code, out, err = _cli(store.uri, "rollout", "abort", MODEL)
    assert code == 0, err
    assert "aborted" in out and _warned(err, "1", "2"), out + err


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """The keys read from every directory store (the CLI opens its own), each counted: whole
    (`get_bytes`) or from their start (`open_read`: a file the manifest lists, checked against
    its sha256 as it is read)."""
    keys: collections.Counter[str] = collections.Counter()
    read, read_from = LocalStore.get_bytes, LocalStore.open_read

    def get_bytes(self: LocalStore, key: str, *args: Any, **kwargs: Any) -> bytes:
        keys[key] += 1
        return read(self, key, *args, **kwargs)

    def open_read(self: LocalStore, key: str, start: int = 0, end: int | None = None) -> Any:
        keys[key] += start == 0
        return read_from(self, key, start, end)

    monkeypatch.setattr(LocalStore, "get_bytes", get_bytes)
    monkeypatch.setattr(LocalStore, "open_read", open_read)
    return keys


def _tokenizers_read(reads: collections.Counter[str]) -> list[str]:
    return [key for key in reads if key.endswith("/tokenizer.json")]


def reads_of_tokenizers(reads: collections.Counter[str]) -> dict[str, int]:
    return {key: count for key, count in reads.items() if key.endswith("/tokenizer.json")}


def test_the_same_tokenizer_file_is_not_downloaded_to_compare(
    tmp_path: Path, reads: collections.Counter[str]
) -> None:
    """Every publish of a text model downloaded and parsed the served version's tokenizer
    (~1.5 s and a GET for a 6 MB one), the same file too; and promote read both versions'
    (rev12 5). The manifests record each file's sha256: equal, nothing is read."""
    built = published_text_model(tmp_path)
    assert _cli(built.store.uri, "promote", MODEL, "1")[0] == 0
    same = hf_transformer.tokenizer_json(tmp_path / "same" / "tokenizer.json")
    reads.clear()
    code, out, err = publish(built.store, built.model, "--labels", LABELS, "--tokenizer", str(same))
    assert code == 0 and "reads token ids" not in out + err, err
    assert _tokenizers_read(reads) == [], reads
    code, _, err = _cli(built.store.uri, "promote", MODEL, "2")
    assert code == 0 and "reads token ids" not in err, err
    # Read once, by the move's check of the files it sends callers to (move_checked.py), not
    # by the comparison, which would read 1's too.
    assert reads_of_tokenizers(reads) == {f"models/{MODEL}/versions/2/tokenizer.json": 1}, reads
    # Another file is still read and compared: the warning stands where ids moved.
    other = _reordered(tmp_path / "reordered" / "tokenizer.json")
    code, out, err = publish(
        built.store, built.model, "--labels", LABELS, "--tokenizer", str(other)
    )
    assert code == 0 and _tokenizers_read(reads) == [f"models/{MODEL}/versions/2/tokenizer.json"]
    assert "reads token ids as other tokens than" in out, out


def test_a_version_that_takes_no_text_reads_no_tokenizer(
    tmp_path: Path, reads: collections.Counter[str]
) -> None:
    """The same transformer published without --tokenizer takes token ids, no text: the
    served version's tokenizer was still downloaded and parsed, for nothing to compare."""
    built = published_text_model(tmp_path)
    assert _cli(built.store.uri, "promote", MODEL, "1")[0] == 0
    reads.clear()
    code, _, err = publish(built.store, built.model, "--labels", LABELS)
    assert code == 0, err
    assert _tokenizers_read(reads) == [], reads
    code, _, err = _cli(built.store.uri, "promote", MODEL, "2")
    assert code == 0 and _tokenizers_read(reads) == [], reads


def test_the_control_plane_says_it_in_the_moves_warnings(
    tmp_path: Path, reads: collections.Counter[str]
) -> None:
    """`PUT /control/.../aliases/production` and its rollback moved every caller across the
    new vocabulary without a word (`warnings` said only a feature order), where the CLI says
    it. The same tokenizer file on both sides is not read to compare."""
    store = _two_vocabularies(tmp_path, "1")
    client = TestClient(create_app(store))
    url = f"/control/models/{MODEL}/aliases/production"
    reads.clear()
    answer = client.put(url, json={"version": "2"})
    assert answer.status_code == 200, answer.text
    said = answer.json()["warnings"]
    assert len(said) == 1 and said[0].startswith(
        f"version 2 of {MODEL} reads token ids as other tokens than {MODEL}:1 ("
    ), said
    assert "send raw text" in said[0]
    assert len(_tokenizers_read(reads)) == 2  # both versions' files differ: both read
    back = client.post(f"{url}/rollback", json={})
    assert back.status_code == 200, back.text
    assert back.json()["warnings"][0].startswith(f"version 1 of {MODEL} reads token ids")
    # Version 3: version 2's tokenizer file again; a move 2 -> 3 reads no tokenizer.
    other = tmp_path / "reordered" / "tokenizer.json"
    code, _, err = publish(
        store, tmp_path / "model.onnx", "--labels", LABELS, "--tokenizer", str(other)
    )
    assert code == 0, err
    assert client.put(url, json={"version": "2"}).status_code == 200
    reads.clear()
    answer = client.put(url, json={"version": "3"})
    assert answer.status_code == 200 and answer.json()["warnings"] is None, answer.text
    # Only 3's, once: the move's check of its files (move_checked.py); the comparison read none.
    assert reads_of_tokenizers(reads) == {f"models/{MODEL}/versions/3/tokenizer.json": 1}, reads
