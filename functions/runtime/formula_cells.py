"""Text a spreadsheet (Excel, LibreOffice, Google Sheets) would run as a formula (OWASP "CSV
Injection", CWE-1236): `aiaas capture export` neutralises such cells, and publish refuses class
labels so written, since batch writes labels into CSV output (`pred_label`) byte for byte.
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


def formula_label_problem(labels: Iterable[str]) -> str | None:
    """Why these class labels cannot be published (the first that a spreadsheet would run as
    a formula, named), or None when all are safe."""
    found = [label for label in labels if is_formula(label)]
    if not found:
        return None
    return (
        f"class label {found[0]!r} starts with {STARTS}: a spreadsheet opening batch output "
        "(its pred_label column) would run it as a formula (CWE-1236); rename the class "
        "(a plain number such as -1 is fine)"
        + (f"; {len(found)} labels are so: {', '.join(map(repr, found))}" if len(found) > 1 else "")
    )
