"""Strings aiaas did not write, put into a model card's Markdown as the text they are.

A card is read where Markdown is rendered (a repository, a wiki, a model portal), and most of
what it shows comes from elsewhere: class names and tensor names from the ONNX file (a
skl2onnx model's string classes, its producer name), feature and column names, the data
file's name, the description. Written raw, an ONNX producer name holding line breaks forged a
"Held-out metrics" section and opened an HTML comment that hid the real one; class names put
`<script>`, images and links into the card, and a `|` split a table's row. Here every such
string reads as itself: no line breaks, no HTML, no Markdown syntax.
"""

from __future__ import annotations

import re
import unicodedata

# What starts or ends inline Markdown, escaped with a backslash: emphasis, code, tables,
# strikethrough, and a `]` that would close a link, an image or a reference (`](`, `][`,
# `]:`); `_` only where it can open or close emphasis (`sepal_length` and a shape `[-1, 4]`
# stay as they are).
_PUNCTUATION = re.compile(r"[\\`*|~]|\](?=[(\[:])|(?<![^\W_])_|_(?![^\W_])")
# HTML: a tag (`<`), and an `&` that would read as a character reference (`&lt;` shown as <).
_HTML = re.compile(r"<|&(?=#?\w+;)")
_BLOCK_START = re.compile(r"^(\s*)([#+=>-]|\d+[.)])")  # a heading, list or rule at a line start
# GitHub-flavoured Markdown links a bare URL (`https://...`, `ftp://...`) and `www.` address
# (its "extended autolinks"); a backslash before the scheme's `:` or after `www` is read as the
# character alone, and the name is plain text (an e-mail address is still linked: GFM finds
# those in text after escapes are read, so only a visible change would break them).
_AUTOLINK = re.compile(r":(?=//)|(?<![^\W_])(?i:www)(\.)")


# Bidirectional overrides and isolates: they reorder what is shown after them.
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _visible(text: str) -> str:
    """Line breaks, other control characters and bidi overrides as their escapes (`\\n`,
    `\\u202e`): one line, read in the order it is written."""
    return "".join(
        c.encode("unicode_escape").decode("ascii")
        if c in _BIDI or unicodedata.category(c) in {"Cc", "Zl", "Zp"}
        else c
        for c in text
    )


def md_text(value: object) -> str:
    """`value` as plain inline Markdown text (a table cell too): it renders as written."""
    text = _PUNCTUATION.sub(lambda m: "\\" + m[0], _visible(str(value)))
    text = _AUTOLINK.sub(lambda m: m[0][:-1] + "\\" + m[0][-1], text)
    return _HTML.sub(lambda m: "&lt;" if m[0] == "<" else "&amp;", text)


def md_code(value: object) -> str:
    """`value` as a code span (HTML in it is shown, not read), fenced by more backticks than
    it holds in a row; not for a table's cell (GFM splits cells at a `|` in a code span)."""
    text = _visible(str(value))
    runs = [len(run) for run in re.findall("`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_paragraphs(value: str) -> list[str]:
    """A description as the lines of Markdown text it is: its line breaks kept, each line
    plain text that starts no heading, list, rule or code block."""
    lines = []
    for line in value.strip().splitlines():
        line = md_text(line.strip())
        lines.append(_BLOCK_START.sub(lambda m: m[1] + m[2][:-1] + "\\" + m[2][-1], line))
    return lines
