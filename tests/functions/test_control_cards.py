"""A version's model card through the control plane's Lambda handler (HTTP API v2.0 events),
over both stores: `aiaas show` points at card/card.md in the store; an API client reads it, and
the plots it links to, at /control/models/{name}/versions/{version}/card[/{file}]."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from functions.control.app import create_app
from functions.control.cards_api import CARD_FILE_RULE
from functions.control.handler import _PathAsGiven
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from infra.local.gateway import GatewayRequest, build_event
from tests import onnx_factory
from tests.publishing import module_store

CARD = "# iris:1\n\nAccuracy 0.97 on the holdout. ![confusion](confusion.png)\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
VERSION = "/control/models/iris/versions"
RULE = CARD_FILE_RULE


@pytest.fixture
def handler(store: ObjectStore, classifier_onnx: Path, tmp_path: Path) -> Any:
    return carded(store, classifier_onnx, tmp_path)


@pytest.fixture(scope="module", params=["local", "s3"])
def refusing(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`handler`, made once per store for the 12 refused card reads (GETs: nothing written)."""
    work = tmp_path_factory.mktemp("refused-cards")
    onnx = onnx_factory.linear_classifier(work / "onnx" / "linear.onnx")
    return carded(module_store(request, work), onnx, work)


def carded(store: ObjectStore, classifier_onnx: Path, work: Path) -> Any:
    """iris 1 with a card (its Markdown and a plot) and iris 2 without, behind the handler."""
    (work / "card.md").write_text(CARD)
    (work / "confusion.png").write_bytes(PNG)
    registry = Registry(store)
    card = {"card/card.md": work / "card.md", "card/confusion.png": work / "confusion.png"}
    registry.publish(onnx_factory.manifest_for(classifier_onnx, "iris", "1"), classifier_onnx, card)
    registry.publish(onnx_factory.manifest_for(classifier_onnx, "iris", "2"), classifier_onnx)
    return _PathAsGiven(create_app(store), lifespan="off")


def get(handler: Any, path: str) -> tuple[int, str, bytes]:
    event = build_event(GatewayRequest("GET", path, "", [], b""), "ANY", "/control/{proxy+}", {})
    answer = handler(event, None)
    body = answer["body"]
    data = base64.b64decode(body) if answer["isBase64Encoded"] else body.encode()
    return answer["statusCode"], answer["headers"]["content-type"], data


def test_the_card_is_served_as_markdown_and_its_plots_as_they_are(handler: Any) -> None:
    assert get(handler, f"{VERSION}/1/card") == (
        200,
        "text/markdown; charset=utf-8",
        CARD.encode(),
    )
    assert get(handler, f"{VERSION}/1/card/confusion.png") == (200, "image/png", PNG)


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        (
            f"{VERSION}/2/card",
            404,
            "model iris:2 has no model card (`aiaas train` writes one)",
        ),
        (
            f"{VERSION}/1/card/roc.png",
            404,
            "model iris:1 has no card file 'roc.png' (its card files: card/card.md, "
            "card/confusion.png)",
        ),
        (f"{VERSION}/9/card", 404, "version '9' of model 'iris' not found"),
        ("/control/models/nope/versions/1/card", 404, "version '1' of model 'nope' not found"),
        (f"{VERSION}/1/card/.hidden", 400, f"invalid card file name '.hidden': use {RULE}"),
        (f"{VERSION}/1/card/%2e%2e", 400, f"invalid card file name '..': use {RULE}"),
    ],
)
def test_a_missing_or_hostile_card_file_is_a_4xx_naming_it(
    refusing: Any, path: str, status: int, error: str
) -> None:
    answer = get(refusing, path)
    assert answer[:2] == (status, "application/json")
    assert orjson.loads(answer[2]) == {"error": error}


def test_the_document_says_what_each_card_answer_is(handler: Any) -> None:
    """A plot's 200 had no content in /openapi.json, so a client generated from it read the
    answer as bodiless and gave its caller nothing (journey15 hunt); each type now listed."""
    status, _, raw = get(handler, "/openapi.json")
    assert status == 200
    routes = orjson.loads(raw)["paths"]
    for path, file in (("/card", "card"), ("/card/{file}", "card/confusion.png")):
        content = routes["/control/models/{name}/versions/{version}" + path]["get"]["responses"]
        _, kind, _ = get(handler, f"{VERSION}/1/{file}")
        assert kind.split(";")[0] in content["200"]["content"], (path, kind)
    assert set(content["200"]["content"]) == {"image/png", "text/markdown", "*/*"}
