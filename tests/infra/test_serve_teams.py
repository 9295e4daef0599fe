"""Several teams on one `aiaas serve` (docs/serve.md, "Several teams on one server"): a token
is not tied to a model, and `--models` limits the predict routes, not the control plane. These
pin what the docs tell a platform team, so a change to either is a change to the docs too."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import build_parser, main
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve

TEAM_A, TEAM_B = "team-a-model", "team-b-model"
TOKENS = ("team-a-token", "team-b-token")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("teams")
    registry = Registry(LocalStore(root / "store"))
    for seed, name in enumerate((TEAM_A, TEAM_B)):
        for version in ("1", "2"):
            path = onnx_factory.linear_classifier(
                root / f"{name}-{version}.onnx", features=4, classes=2, seed=seed * 2 + int(version)
            )
            registry.publish(onnx_factory.manifest_for(path, name, version), path)
        registry.set_alias(name, "production", "1")
    tokens = root / "tokens.txt"
    tokens.write_text("\n".join(TOKENS) + "\n")
    auth = {"Authorization": f"Bearer {TOKENS[0]}"}
    # team A's own server, with its own models and both teams' tokens in its file
    yield from start_serve(
        root / "store", "--token-file", str(tokens), "--models", TEAM_A, headers=auth
    )


def test_every_token_opens_every_model_served(server: ServeProcess) -> None:
    row = {"inputs": [[1.0, 2.0, 3.0, 4.0]]}
    for token in TOKENS:
        auth = {"Authorization": f"Bearer {token}"}
        answer = httpx.post(f"{server.base}/models/{TEAM_A}/predict", json=row, headers=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == TEAM_A
    refused = httpx.post(f"{server.base}/models/{TEAM_A}/predict", json=row)
    assert refused.status_code == 401


def test_models_limits_the_predict_routes_not_the_control_plane(server: ServeProcess) -> None:
    auth = {"Authorization": f"Bearer {TOKENS[0]}"}
    row = {"inputs": [[1.0, 2.0, 3.0, 4.0]]}
    other = httpx.post(f"{server.base}/models/{TEAM_B}/predict", json=row, headers=auth)
    assert other.status_code == 404
    assert "is served here" in other.json()["error"]
    # ... but this server's control plane moves team B's alias all the same, as the docs say
    moved = httpx.put(
        f"{server.base}/control/models/{TEAM_B}/aliases/production",
        json={"version": "2"},
        headers=auth,
    )
    assert moved.status_code == 200, moved.text
    record = moved.json()
    assert record["version"] == "2"
    # and records no team: any token's holder is the same principal
    assert record["updated_by"].startswith("bearer-token-holder@")
    assert Registry(LocalStore(server.store)).alias(TEAM_B, "production") == "2"


@pytest.mark.parametrize(
    ("models", "said"),
    [
        ("team-a-model, team-b-model,", "has an empty name (a trailing or doubled comma?)"),
        (",", "has an empty name"),
        (" ", "name at least one model (leave --models out to serve every model"),
        ("team-a-model,a/b", "'a/b' is no model name: use 1-64 characters"),
        ("Team A", "'Team A' is no model name"),
    ],
)
def test_a_models_list_with_a_bad_entry_is_a_usage_error(
    models: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--models a,b,` served a route `POST /models//predict` whose init failed at every
    # request with "AIAAS_MODEL is not set"; `a/b` a route `/models/a/b/predict`.
    with pytest.raises(SystemExit) as stop:
        main(["serve", "--models", models])
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("aiaas serve: error: argument --models: ")
    assert said in last


def test_a_models_list_is_stripped_and_each_name_kept_once() -> None:
    argv = ["serve", "--models", " team-a-model , team-b-model,team-a-model"]
    assert build_parser(argv).parse_args(argv).models == [TEAM_A, TEAM_B]
