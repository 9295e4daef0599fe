"""tritonclient, unchanged, asks a real `aiaas serve` for class strings (`class_count`, Triton's
classification extension): binary and JSON outputs, a ZipMap and a plain probability tensor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton  # a dev dependency: a missing client fails, never skips
from tritonclient.utils import InferenceServerException

from tests.functions.test_predict_v2_classification import (
    TENSOR,
    ZIPMAP,
    expected_classes,
    parse_classes,
    publish_classifiers,
)
from tests.infra.test_serve import start_serve
from tests.sklearn_models import Exported

ROWS = 6  # as expected_classes answers
SCORES = {ZIPMAP: "output_probability", TENSOR: "probabilities"}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Exported]]:
    root = tmp_path_factory.mktemp("serve-classification")
    return root, publish_classifiers(root)


@pytest.fixture(scope="module")
def client(
    published: tuple[Path, dict[str, Exported]],
) -> Iterator[triton.InferenceServerClient]:
    for server in start_serve(published[0] / "store"):
        client = triton.InferenceServerClient(
            f"127.0.0.1:{server.port}", connection_timeout=10, network_timeout=30
        )
        yield client
        client.close()


def infer(
    client: triton.InferenceServerClient, model: str, x: np.ndarray, *outputs: Any
) -> triton.InferResult:
    tensor = triton.InferInput("X", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    return client.infer(model, [tensor], outputs=list(outputs))


def test_the_server_lists_the_extension(client: triton.InferenceServerClient) -> None:
    assert "classification" in client.get_server_metadata()["extensions"]


@pytest.mark.parametrize("model", [ZIPMAP, TENSOR])
@pytest.mark.parametrize("binary", [True, False])
def test_class_count_answers_score_index_label(
    client: triton.InferenceServerClient,
    published: tuple[Path, dict[str, Exported]],
    model: str,
    binary: bool,
) -> None:
    exported = published[1][model]
    wanted = triton.InferRequestedOutput(SCORES[model], binary_data=binary, class_count=3)
    result = infer(client, model, exported.x_test[:ROWS], wanted)
    output = result.get_output(SCORES[model])
    assert (output["datatype"], output["shape"]) == ("BYTES", [ROWS, 3])
    table = result.as_numpy(SCORES[model])
    assert table.dtype == np.object_ and table.shape == (ROWS, 3)
    got = [[parse_classes(e) for e in row] for row in table.tolist()]
    want = expected_classes(exported, 3)
    assert [[(i, label) for _, i, label in row] for row in got] == [
        [(i, label) for _, i, label in row] for row in want
    ]
    np.testing.assert_allclose(
        [[s for s, _, _ in row] for row in got], [[s for s, _, _ in row] for row in want], atol=2e-6
    )
    assert [row[0][2] for row in got] == exported.expected[:ROWS]


def test_other_outputs_answer_as_they_are(
    client: triton.InferenceServerClient, published: tuple[Path, dict[str, Exported]]
) -> None:
    exported = published[1][ZIPMAP]
    result = infer(
        client,
        ZIPMAP,
        exported.x_test[:ROWS],
        triton.InferRequestedOutput("output_label"),
        triton.InferRequestedOutput("output_probability", class_count=1),
    )
    assert [str(v) for v in result.as_numpy("output_label")] == exported.expected[:ROWS]
    best = [parse_classes(e)[2] for e in result.as_numpy("output_probability").ravel()]
    assert best == exported.expected[:ROWS]


@pytest.mark.parametrize(
    ("output", "count", "message"),
    [
        ("output_probability", -2, "parameter 'classification' (class_count) must be an integer"),
        ("output_label", 2, "output 'output_label' holds no class scores to rank"),
    ],
)
def test_bad_class_count_requests_are_400s(
    client: triton.InferenceServerClient,
    published: tuple[Path, dict[str, Exported]],
    output: str,
    count: int,
    message: str,
) -> None:
    x = published[1][ZIPMAP].x_test[:1]
    wanted = triton.InferRequestedOutput(output, class_count=count)
    with pytest.raises(InferenceServerException) as refused:
        infer(client, ZIPMAP, x, wanted)
    assert refused.value.status() == "400"
    assert message in refused.value.message()
