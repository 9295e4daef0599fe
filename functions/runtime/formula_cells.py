"""Text a spreadsheet (Excel, LibreOffice, Google Sheets) would run as a formula (OWASP "CSV
Injection", CWE-1236): `aiaas capture export` neutralises such cells (callers' text), and
publish and training warn of class labels so written (the publisher's own text, which batch
writes into its CSV output, `pred_label`, byte for byte). A warning, not a refusal: labels such
as "-ve" / "+ve" are common, and refusing them would refuse users' own models over how a
spreadsheet might show a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# A cell so started may run as a formula; a plain number (-1.5, +3, -2e-5) is a number, no
# formula. OWASP ASVS 1.2.10 adds NUL, which some readers drop before looking at the next one.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")
FIRST = frozenset(FORMULA_START)
STARTS = "=, +, -, @, tab, CR or NUL"
PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def is_formula(value: object) -> bool:
    """Whether a spreadsheet would read text `value` as a formula: numbers, and texts that are
    plain numbers ("-1.5"), are not; a captured number is written as the number it is."""
    return (
        isinstance(value, str)
        and value.startswith(FORMULA_START)
        and PLAIN_NUMBER.fullmatch(value) is None
    )


def formula_label_warning(labels: Iterable[str]) -> str | None:
    """What to know of these class labels when a spreadsheet would run one as a formula (the
    first so named), or None when none would."""
    found = [label for label in labels if is_formula(label)]
    if not found:
        return None
    return (
        f"class label {found[0]!r} starts with {STARTS}: a spreadsheet opening batch output "
        "(its pred_label column) would run it as a formula (CWE-1236); if that output is "
        "opened in one, rename the class (a plain number such as -1 is fine)"
        + (f"; {len(found)} labels are so: {', '.join(map(repr, found))}" if len(found) > 1 else "")
    )
