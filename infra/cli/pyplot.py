"""matplotlib for the CLI's PNGs (`explain --png`, `compare --png`, `monitor`'s drift PNG), from
the `card` extra: imported only when a PNG is asked for, so other commands never load it, and
asked for before the work, so a base install hears of the missing extra at once, not after the
table it then fails to draw (stdout printed, exit 1). `monitor`'s PNG by default (not asked for
by `--png`) is best-effort: without the extra it prints its table and a line saying so."""

from __future__ import annotations

from typing import Any

from functions.runtime.errors import BadRequest
from training.fonts import legible


def pyplot(what: str = "--png", hint: str = "") -> Any:
    """matplotlib.pyplot on the Agg backend; a one-line BadRequest naming the extra without it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BadRequest(
            f"{what} needs matplotlib, which is not installed: pip install 'aiaas[card]'{hint}"
        ) from None
    return legible(plt)
