"""A raw text sent under the ids input's name in a record (leftovers6 2).

`{"instances": [{"input_ids": "where is my parcel"}]}` to a transformer that also reads an
attention mask was told "missing input 'attention_mask'": the caller had sent a text, not ids,
and a mask is filled from a text. The 422 now says where a text goes (the text field, by name,
or `inputs` as a list of strings), as docs/text.md says. An OIP `BYTES` tensor named
`input_ids` is a text (the mask filled from it) and answers. Real HTTP (`aiaas serve`, httpx).
"""

from __future__ import annotations

import httpx
import pytest

from tests.infra.test_hf_text_mixed_inputs import MODEL, error_of, http, server, store

__all__ = ["http", "server", "store"]  # the fixtures this module's tests use

WHERE = (
    "instances[0] holds a text under 'input_ids', the model's token ids input: send a text in "
    'the text field \'text\' ({"instances": [{"text": "..."}]}) or under "inputs" as a list of '
    'strings ({"inputs": ["...", ...]})'
)
TEXT = "where is my parcel"


@pytest.mark.parametrize("sent", [TEXT, [TEXT]])
def test_a_text_under_the_ids_name_in_a_record_says_where_text_goes(
    http: httpx.Client, sent: object
) -> None:
    body = {"instances": [{"input_ids": sent}]}
    assert error_of(http.post(f"/models/{MODEL}/predict", json=body)) == (422, WHERE)
    # Ids without their mask are still told the mask is missing.
    body = {"instances": [{"input_ids": [2, 3]}]}
    assert error_of(http.post(f"/models/{MODEL}/predict", json=body)) == (
        422,
        "instances[0] is missing input 'attention_mask'",
    )


def test_where_the_text_goes_answers_and_oip_bytes_under_the_ids_name_too(
    http: httpx.Client,
) -> None:
    field = http.post(f"/models/{MODEL}/predict", json={"instances": [{"text": TEXT}]})
    listed = http.post(f"/models/{MODEL}/predict", json={"inputs": [TEXT]})
    assert field.status_code == listed.status_code == 200, (field.text, listed.text)
    logits = listed.json()["outputs"]["logits"]
    assert field.json()["outputs"]["logits"] == logits
    for shape in ([1], [1, 1]):
        tensor = {"name": "input_ids", "datatype": "BYTES", "shape": shape, "data": [TEXT]}
        answer = http.post(f"/v2/models/{MODEL}/infer", json={"inputs": [tensor]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == logits[0]
