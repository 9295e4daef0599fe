"""The 400 for a request body that is not JSON, with a hint where the cause is a common one."""

from __future__ import annotations

import re

from functions.runtime.errors import BadRequest

# Python's json.dumps (so `requests.post(json=...)` and httpx) writes NaN and infinities as
# these bare words, which JSON does not have; the parser's own message only gives a position.
# They stay refused: bodies are kept as sent (data capture) and read again by strict parsers
# (shadow replay, capture comparison), and JSON's missing value, null, does the same job.
_NON_FINITE = re.compile(rb"(?<![\"\w])-?(?:NaN|Infinity)(?![\"\w])")


# An image file's first bytes: what `curl --data-binary @photo.jpg` and `requests.post(
# data=open(f, "rb"))` send; its 0xff or 0x89 was only called "not UTF-8".
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
)
# `curl -F file=@photo.png` and `requests.post(files=...)`: a boundary line, then the part's
# Content-Disposition header.
MULTIPART = re.compile(rb"--[^\r\n]{1,200}\r?\nContent-Disposition: *form-data", re.IGNORECASE)
PIXELS = (
    "models take pixel values as JSON (nested lists of numbers, or OIP tensors), not an encoded "
    "image: decode it first (numpy.asarray(PIL.Image.open(file)))"
)


def not_json(exc: Exception, body: bytes | memoryview) -> BadRequest:
    """The error for `body`, which the JSON parser refused with `exc` (only called then)."""
    if sent := _file_sent(bytes(body[:512])):
        return BadRequest(f"request body is {sent}")
    try:
        bytes(body).decode("utf-8")
    except UnicodeDecodeError as bad:  # orjson said "str is not valid UTF-8: surrogates not
        # allowed: line 1 column 1 (char 0)" of a Latin-1 byte anywhere in the body
        return BadRequest(
            f"request body is not UTF-8 text (byte {bad.start + 1} is 0x{bad.object[bad.start]:02x});"
            " JSON is sent as UTF-8"
        )
    hint = ""
    if _NON_FINITE.search(bytes(body)):
        hint = (
            " (NaN and Infinity are not JSON: send null for a missing value, as pandas' "
            "to_json writes it, which an input that takes missing values reads as NaN (one "
            "its graph imputes, as aiaas show says, or of a model published with "
            "--allow-nonfinite); OIP binary tensors carry infinities)"
        )
    return BadRequest(f"request body is not valid JSON: {exc}{hint}")


def _file_sent(head: bytes) -> str:
    """What a body that starts with `head` is and what to send instead, where it is a file
    uploaded as it is (an image, a multipart form) rather than JSON; "" otherwise."""
    image = next((kind for magic, kind in _IMAGE_MAGIC if head.startswith(magic)), None)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        image = "a WebP image"
    elif head[:2] == b"BM" and head[6:10] == bytes(4):  # its size, then 4 reserved zero bytes
        image = "a BMP image"
    if image is not None:
        return f"{image}; {PIXELS}"
    if MULTIPART.match(head):
        return (
            "a multipart/form-data upload (curl -F, requests' files=): send the JSON itself as "
            "the body (curl --data-binary @body.json, requests' json=), an image as its pixel "
            "values: decode it first (numpy.asarray(PIL.Image.open(file)))"
        )
    return ""
