"""/explain of an image model of any height and width, sent an image of one colour: such a model
is explained against each image's own mean colour, which for it is the image itself, so every
attribution was 0 and the base value the prediction, answered 200 (a caller read "no pixel
matters"). It is a 422 naming the image, as a window whose steps are all the same is; an image
whose pixels differ is explained. Real torch export, `aiaas publish`, real HTTP from a real
`aiaas serve`, on the simple and the OIP explain routes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.any_size_images import publish
from tests.infra.test_serve import start_serve


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    return publish(tmp_path_factory.mktemp("one-colour"))


@pytest.fixture(scope="module")
def base(store: LocalStore) -> Iterator[str]:
    for server in start_serve(store.root):
        yield server.base


def _simple(base: str, images: np.ndarray) -> httpx.Response:
    body = {"inputs": images.tolist(), "parameters": {"samples": 100, "patch": 4}}
    return httpx.post(f"{base}/models/anysize/explain", json=body, timeout=60)


def _oip(base: str, images: np.ndarray) -> httpx.Response:
    tensor = {"name": "x", "shape": list(images.shape), "datatype": "FP32"}
    body = {
        "inputs": [{**tensor, "data": images.ravel().tolist()}],
        "parameters": {"samples": 100, "patch": 4},
    }
    return httpx.post(f"{base}/v2/models/anysize/explain", json=body, timeout=60)


@pytest.mark.parametrize("send", [_simple, _oip])
def test_an_image_of_one_colour_is_refused_not_explained_as_all_zeros(
    base: str, send: Callable[[str, np.ndarray], httpx.Response]
) -> None:
    red = np.zeros((1, 3, 8, 8), np.float32)
    red[:, 0] = 0.8  # every pixel (0.8, 0, 0)
    answer = send(base, red)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error.startswith("image 0 cannot be explained: it is one colour"), error
    assert "own mean colour, which for it is the image itself (every attribution 0" in error

    varied = np.random.default_rng(4).random((1, 3, 8, 8), np.float32)
    answer = send(base, np.concatenate([varied, red]))  # a one-colour image among others
    assert answer.status_code == 422 and "image 1 cannot be explained" in answer.text

    one_channel = red.copy()
    one_channel[0, 1] = varied[0, 1]  # green differs from pixel to pixel: explained
    for image in (varied, one_channel):
        answer = send(base, image)
        assert answer.status_code == 200, answer.text
        doc = answer.json()
        if "explanations" in doc:
            got = np.asarray(doc["explanations"][0]["attributions"])
        else:
            (got,) = [np.asarray(t["data"]) for t in doc["outputs"] if t["name"] == "attributions"]
        assert np.abs(got).max() > 1e-4


def test_the_cli_says_which_image_of_a_file_is_one_colour(
    store: LocalStore, tmp_path: Path
) -> None:
    """`aiaas explain --file`: the one-colour image is an error line naming its own row (its
    request's "image 0" said as the file's), the others are explained."""
    images = np.random.default_rng(5).random((3, 3, 8, 8), np.float32)
    images[1] = 0.5  # grey, every pixel
    np.save(tmp_path / "images.npy", images)
    out = tmp_path / "why.jsonl"
    args = ["--store", store.uri, "explain", "anysize", "--file", str(tmp_path / "images.npy")]
    main([*args, "--samples", "100", "--out", str(out)])
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["row"] for line in lines] == [0, 1, 2]
    assert "error" not in lines[0] and "error" not in lines[2]
    assert lines[1]["error"].startswith("image 1 cannot be explained: it is one colour")
