"""A version's model card (`card/card.md`, written by `aiaas train`) and the plots it shows:
what `aiaas show` points at, for a client that has only the API."""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import re

from fastapi import APIRouter, Response

from functions.control.context import Plane
from functions.control.schemas import ERRORS
from functions.runtime import names
from functions.runtime.errors import IntegrityError, InvalidName, NotFound
from functions.runtime.refs import version_prefix

router = APIRouter(prefix="/control/models", tags=["models"], responses=ERRORS)

CARD = "card.md"
CARD_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
CARD_FILE_RULE = "1-100 characters of A-Z, a-z, 0-9, '.', '_', '-', not starting with '.'"
# A card is read, never run: a file a browser would render (HTML, SVG) runs no script and
# reaches nothing from the API's origin.
CARD_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
TEXT = {"schema": {"type": "string"}}
FILE = {"schema": {"type": "string", "format": "binary"}}


@router.get(
    "/{name}/versions/{version}/card",
    summary="A version's model card (Markdown)",
    response_class=Response,
    responses={200: {"content": {"text/markdown": TEXT}}},
)
def card(name: str, version: str, plane: Plane) -> Response:
    return card_file(name, version, CARD, plane)


@router.get(
    "/{name}/versions/{version}/card/{file}",
    summary="A file of the model card: a plot it links to",
    response_class=Response,
    # Its type is its name's (card_file): without content here a client generated from the
    # document read the 200 as bodiless and handed its caller nothing (journey15 hunt).
    responses={200: {"content": {"image/png": FILE, "text/markdown": TEXT, "*/*": FILE}}},
)
def card_file(name: str, version: str, file: str, plane: Plane) -> Response:
    name, version = names.model_name(name), names.version_name(version)
    if not CARD_FILE.fullmatch(file) or ".." in file:  # becomes part of a store key
        raise InvalidName(f"invalid card file name {file[:80]!r}: use {CARD_FILE_RULE}")
    manifest = plane.registry.manifest(name, version)  # 404 for an unknown model or version
    # Only the files the manifest lists, as it lists them: any other object under the
    # version's card/ (a store writer's, a half-done publish's) or one changed since was
    # served from the API's own origin as whatever its name said (text/html, image/svg+xml).
    cards = {f.path: f for f in manifest.files if f.path.startswith("card/")}
    listed, data = cards.get(f"card/{file}"), None
    if listed is not None:
        with contextlib.suppress(NotFound):
            data = plane.store.get_bytes(f"{version_prefix(name, version)}/card/{file}")
    if listed is None or data is None:
        what = "model card" if file == CARD else f"card file {file!r}"
        key = f"{version_prefix(name, version)}/card/{file}"
        if not manifest.files and plane.store.exists(key):
            raise NotFound(unlisted_card(name, version, what))
        said = f"its card files: {', '.join(cards)}" if cards else "`aiaas train` writes one"
        raise NotFound(f"model {name}:{version} has no {what} ({said})")
    if hashlib.sha256(data).hexdigest() != listed.sha256:
        raise IntegrityError(
            f"{name}:{version} card/{file} differs from its manifest's sha256",
            public_message=f"model {name}:{version}'s card/{file} failed its integrity check",
        )
    kind = "text/markdown" if file.endswith(".md") else mimetypes.guess_type(file)[0]
    media = kind or "application/octet-stream"
    if media.startswith("text/"):
        media += "; charset=utf-8"
    return Response(data, media_type=media, headers=CARD_HEADERS)


def unlisted_card(name: str, version: str, what: str) -> str:
    """A version published before 2026-11-30 (88147da): its manifest lists no files, so no
    sha256 to check its card against; the owner reads it from the store instead."""
    return (
        f"model {name}:{version} was published before manifests listed a version's files, so "
        f"its {what} has no sha256 to check and is not served here; `aiaas show "
        f"{name}:{version}` prints where it is in the store"
    )
