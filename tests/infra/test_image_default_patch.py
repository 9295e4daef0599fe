"""The default patch of an image explanation cuts it into about 16 patches whatever its shape:
a thin image (a 2 x 400 strip, a 1 x 3000 line scan) was cut by sqrt(H * W / 16) alone into
58 and 215 patches, slower and noisier than asked; square images keep their size. Through
POST /models/{name}/explain of a published model of any image size."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from functions.predict.service import PredictService
from tests.functions.test_predict_events import body_of, http_event
from tests.infra.any_size_images import predict_services, publish


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> PredictService:
    root: Path = tmp_path_factory.mktemp("default-patch")
    publish(root)
    return predict_services(root)["anysize"]


def _explained(service: PredictService, height: int, width: int) -> dict:
    image = np.random.default_rng(height * width).random((3, height, width), np.float32)
    body = json.dumps({"inputs": [image.tolist()], "parameters": {"samples": 64}})
    response = service.handle(http_event("POST", "/models/anysize/explain", body))
    doc = body_of(response)
    assert response["statusCode"] == 200, doc
    return doc


@pytest.mark.parametrize(("height", "width", "patch"), [(2, 400, 25), (400, 2, 25), (1, 3000, 188)])
def test_a_thin_image_is_cut_into_about_16_patches(
    service: PredictService, height: int, width: int, patch: int
) -> None:
    doc = _explained(service, height, width)
    assert doc["parameters"]["patch"] == patch
    assert 9 <= len(doc["features"]) <= 16
    assert len(doc["features"]) == math.ceil(height / patch) * math.ceil(width / patch)


@pytest.mark.parametrize(
    ("height", "width", "patch", "count"),
    [(8, 8, 2, 16), (10, 10, 2, 25), (28, 28, 7, 16), (30, 30, 8, 16), (5, 90, 5, 18)],
)
def test_a_square_or_mildly_oblong_image_keeps_its_patch_size(
    service: PredictService, height: int, width: int, patch: int, count: int
) -> None:
    """sqrt(H * W / 16) as before wherever it gives at most 32 patches."""
    doc = _explained(service, height, width)
    assert (doc["parameters"]["patch"], len(doc["features"])) == (patch, count)
