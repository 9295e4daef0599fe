"""A version's model card (`card/card.md`, written by `aiaas train`) and the plots it shows:
what `aiaas show` points at, for a client that has only the API."""

from __future__ import annotations

import mimetypes
import re

from fastapi import APIRouter, Response

from functions.control.context import Plane
from functions.control.schemas import ERRORS
from functions.runtime import names
from functions.runtime.errors import InvalidName, NotFound
from functions.runtime.refs import version_prefix

router = APIRouter(prefix="/control/models", tags=["models"], responses=ERRORS)

CARD = "card.md"
CARD_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
CARD_FILE_RULE = "1-100 characters of A-Z, a-z, 0-9, '.', '_', '-', not starting with '.'"


@router.get(
    "/{name}/versions/{version}/card",
    summary="A version's model card (Markdown)",
    response_class=Response,
    responses={200: {"content": {"text/markdown": {}}}},
)
def card(name: str, version: str, plane: Plane) -> Response:
    return card_file(name, version, CARD, plane)


@router.get(
    "/{name}/versions/{version}/card/{file}",
    summary="A file of the model card: a plot it links to",
    response_class=Response,
)
def card_file(name: str, version: str, file: str, plane: Plane) -> Response:
    name, version = names.model_name(name), names.version_name(version)
    if not CARD_FILE.fullmatch(file) or ".." in file:  # becomes part of a store key
        raise InvalidName(f"invalid card file name {file[:80]!r}: use {CARD_FILE_RULE}")
    manifest = plane.registry.manifest(name, version)  # 404 for an unknown model or version
    try:
        data = plane.store.get_bytes(f"{version_prefix(name, version)}/card/{file}")
    except NotFound:
        what = "model card" if file == CARD else f"card file {file!r}"
        cards = [f.path for f in manifest.files if f.path.startswith("card/")]
        said = f"its card files: {', '.join(cards)}" if cards else "`aiaas train` writes one"
        raise NotFound(f"model {name}:{version} has no {what} ({said})") from None
    kind = "text/markdown" if file.endswith(".md") else mimetypes.guess_type(file)[0]
    media = kind or "application/octet-stream"
    if media.startswith("text/"):
        media += "; charset=utf-8"
    return Response(data, media_type=media, headers={"X-Content-Type-Options": "nosniff"})
