"""Fonts for every PNG aiaas draws (the model card's plots, `explain`/`compare`/`monitor`'s).

matplotlib draws with DejaVu Sans, which has no Chinese, Japanese or Korean glyphs (nor Thai,
Devanagari, ...): a feature or class named 销售额 was drawn as boxes, with a warning a glyph
(three lines of matplotlib's UserWarning for one name) that said nothing of what to do. A font
installed on the machine that has them is now used for those characters (matplotlib >= 3.6
falls back glyph by glyph through `font.family`), and characters no installed font has are
said once a process, in one line naming them and a font to install (and matplotlib's font
list to delete: it reads that list, not the system's fonts, so a font installed since is
otherwise never seen).
"""

from __future__ import annotations

import functools
import logging
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Fonts that cover scripts DejaVu Sans lacks, as Linux distributions, macOS and Windows name
# them; those installed follow the default in `font.family`, in this order.
FALLBACKS = (
    "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR",
    "Noto Sans SC", "Noto Sans JP", "Noto Sans KR", "Source Han Sans SC", "Source Han Sans",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "Microsoft YaHei",
    "SimHei", "Yu Gothic", "Meiryo", "Malgun Gothic", "PingFang SC", "Hiragino Sans",
    "Apple SD Gothic Neo", "Noto Sans Thai", "Noto Sans Devanagari", "Noto Sans Arabic",
    "Noto Sans Hebrew", "Arial Unicode MS",
)  # fmt: skip


_SAID: set[str] = set()  # the characters said to lack a font


def legible(plt: Any) -> Any:
    """`plt` (matplotlib.pyplot) drawing with the default sans-serif font, then every
    installed FALLBACKS font for the characters it lacks; matplotlib's warning a glyph it
    lacks left to `save`'s one line."""
    from matplotlib import font_manager

    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    plt.rcParams["font.family"] = ["sans-serif", *(f for f in FALLBACKS if f in installed)]
    # Names are drawn as written: a class `$50k-$100k` was typeset as TeX math (`50k-100k` in
    # italics, its dollars gone), and a name `$\foo$` stopped publish, explain and compare with
    # a mathtext traceback. No aiaas plot writes math.
    plt.rcParams["text.parse_math"] = False
    warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
    return plt


def save(figure: Any, path: Path | str, **options: Any) -> None:
    """`figure.savefig(path, **options)`; the characters of its texts that no font it draws
    with has (drawn as boxes) said in one line."""
    from matplotlib import get_cachedir, rcParams
    from matplotlib.text import Text

    figure.savefig(path, **options)
    written = dict.fromkeys(c for t in figure.findobj(Text) for c in t.get_text() if c.strip())
    have = set().union(*(_glyphs(family) for family in rcParams["font.family"]))
    missing = [c for c in written if ord(c) not in have and c not in _SAID]
    _SAID.update(missing)  # once a process: a card of four plots of one name said it four times
    if missing:
        shown = "".join(missing[:12]) + ("..." if len(missing) > 12 else "")
        log.warning(
            "%s: %d character(s) no installed font has are drawn as boxes (%s): install a font "
            "that has them (Chinese, Japanese, Korean: Debian/Ubuntu `apt install "
            "fonts-noto-cjk`, Fedora `dnf install google-noto-sans-cjk-fonts`), then delete "
            "matplotlib's list of fonts (%s/fontlist-*.json), which it reads instead of "
            "looking again",
            Path(path).name, len(missing), shown, get_cachedir(),
        )  # fmt: skip


@functools.cache
def _glyphs(family: str) -> frozenset[int]:
    """The code points the font matplotlib draws `family` with has."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    found = font_manager.findfont(font_manager.FontProperties(family=[family]))
    return frozenset(FT2Font(found).get_charmap())
