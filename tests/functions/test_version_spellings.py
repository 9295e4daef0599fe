"""`02` where `2` is published: every entry point refuses it as the same rule (versions are
matched as written, docs/registry.md) and names the spelling that exists. Each said only
"version '02' of model 'iris' not found" while `aiaas versions` listed 2, and none acted on
another version. The CLI, the control plane and the predict service on the directory store and
on S3 (moto server), with a real ONNX model."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.predict.service import service_from_env
from functions.runtime.store import ObjectStore
from infra.cli.main import main
from tests.functions.test_control_models import MODEL, publish_versions

from .test_predict_events import http_event

HINT = "versions are matched as written, and version 2 of 'iris' is iris:2: name it as written"
NOT_FOUND = f"version '02' of model 'iris' not found; {HINT}"
ALIAS = f"/control/models/{MODEL}/aliases/production"


def test_every_entry_point_refuses_02_naming_2(
    store: ObjectStore, classifier_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = publish_versions(store, classifier_onnx, "1", "2", "3")
    registry.set_alias(MODEL, "production", "2", actor="ci")
    registry.set_alias(MODEL, "production", "3", actor="ci")
    data = tmp_path / "rows.csv"
    data.write_text("f0,f1,f2,f3\n1,2,3,4\n")
    cli = {
        ("promote", MODEL, "02"): NOT_FOUND,
        ("promote", MODEL, "02", "--weight", "0.1"): NOT_FOUND,
        ("shadow", MODEL, "02"): NOT_FOUND,
        ("rollout", MODEL, "02"): NOT_FOUND,
        ("compare", MODEL, "1", "02", "--data", str(data)): NOT_FOUND,
        ("show", f"{MODEL}:02"): NOT_FOUND,
        ("rollback", MODEL, "--to", "02"): (
            "alias 'production' of model 'iris' never pointed at version '02' (it pointed at "
            f"2); {HINT}; to move it to a new version, promote that version"
        ),
    }
    for argv, said in cli.items():
        assert main(["--store", store.uri, *argv]) == 1, argv
        err = capsys.readouterr().err
        assert err == f"aiaas {argv[0]}: error: {said}\n", argv
    client = TestClient(create_app(store))
    put = client.put(ALIAS, json={"version": "02"})
    assert (put.status_code, put.json()) == (404, {"error": NOT_FOUND})
    back = client.post(f"{ALIAS}/rollback", params={"to": "02"})
    assert back.status_code == 409
    assert HINT in back.json()["error"]
    assert client.get(ALIAS).json()["version"] == "3"  # nothing moved
    service = service_from_env(
        {
            "AIAAS_STORE": store.uri,
            "AIAAS_CACHE_DIR": str(tmp_path / "cache"),
            "AIAAS_MODEL": MODEL,
            "AIAAS_DISABLE_METRICS": "1",
            "AIAAS_DRIFT_FLUSH_SECONDS": "0",
        }
    )
    body = '{"inputs": [[1, 2, 3, 4]]}'
    for path in (f"/models/{MODEL}/versions/02/predict", f"/v2/models/{MODEL}/versions/02/infer"):
        sent = (
            body
            if "predict" in path
            else (
                '{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", '
                '"data": [1, 2, 3, 4]}]}'
            )
        )
        answer = service.handle(http_event("POST", path, sent))
        assert (answer["statusCode"], answer["body"]) == (404, f'{{"error":"{NOT_FOUND}"}}'), path
    assert (
        service.handle(http_event("POST", f"/models/{MODEL}/versions/2/predict", body))[
            "statusCode"
        ]
        == 200
    )


def test_a_name_or_a_number_no_other_spelling_holds_is_the_plain_404(
    store: ObjectStore, classifier_onnx: Path
) -> None:
    publish_versions(store, classifier_onnx, "1", "2")
    client = TestClient(create_app(store))
    for version in ("9", "v2", "002x"):
        put = client.put(ALIAS, json={"version": version})
        assert (put.status_code, put.json()) == (
            404,
            {"error": f"version {version!r} of model 'iris' not found"},
        )
