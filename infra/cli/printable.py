"""Text from a store (manifests, alias history) made safe to print to a terminal."""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with each control character escaped (ESC as `\\x1b`, a newline as `\\n`): it came
    from a store someone else may have written, where a newline forged a line of `aiaas
    versions` and an escape sequence recoloured or retitled the reader's terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def printable_lines(lines: list[str]) -> list[str]:
    return [printable(line) for line in lines]
