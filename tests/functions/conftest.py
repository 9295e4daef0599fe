"""The control plane's test client most of its tests start from: versions 1-3 of MODEL
published, production on 1 (a module that needs another start defines its own `client`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.store import ObjectStore
from tests.functions.test_control_models import MODEL, publish_versions


@pytest.fixture
def client(store: ObjectStore, classifier_onnx: Path) -> TestClient:
    registry = publish_versions(store, classifier_onnx, "1", "2", "3")
    registry.set_alias(MODEL, "production", "1", actor="ci")
    return TestClient(create_app(store))
