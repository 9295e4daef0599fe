"""A CSV export's captured texts that read back as a missing value.

A request's text `"NA"`, `"null"` or `""` (any spelling pandas reads as NaN) for an input whose
OneHotEncoder learnt a missing category was served as that text: a category the model never
saw. A CSV cell cannot tell that text from a gap: `aiaas batch`, `aiaas compare` and pandas read
it back as the missing value (`nulls.cell_text`), the missing category's answer, so a CSV
`capture export` scored again gave those rows another label than the one served, with success.
A JSONL export keeps them as texts (a null stays null): the export says so, counting them.
"""

from __future__ import annotations

from collections.abc import Iterable

from functions.runtime.capture.rows import Row, columns_of
from functions.runtime.codecs.nulls import category_gap
from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelManifest


def gap_columns(manifest: ModelManifest) -> dict[str, frozenset[str]]:
    """The CSV columns (as `rows_of` names them) of string inputs with a missing category, each
    with the gap spellings its encoder learnt as categories of their own (`na_categories`: a
    cell so written reads back as that category, as it was served)."""
    found: dict[str, frozenset[str]] = {}
    for spec in manifest.inputs:
        if spec.missing is None:
            continue
        kept = frozenset(spec.na_categories)
        if manifest.features and len(manifest.inputs) == 1:
            found.update(dict.fromkeys(manifest.features, kept))
            continue
        try:
            found.update(dict.fromkeys(columns_of(spec), kept))
        except BadRequest:  # rows of dynamic shape: no CSV export
            continue
    return found


class GapCells:
    """Counts, by column, the captured texts a CSV cell would read back as a missing value."""

    def __init__(self) -> None:
        self.columns: dict[str, dict[str, frozenset[str]]] = {}  # by version
        self.counts: dict[str, int] = {}

    def clear(self) -> None:
        self.counts.clear()

    def see(self, manifest: ModelManifest, rows: Iterable[Row]) -> None:
        columns = self.columns.get(manifest.version)
        if columns is None:
            columns = self.columns[manifest.version] = gap_columns(manifest)
        if not columns:
            return
        for row in rows:
            for column, kept in columns.items():
                value = row.get(column)
                if type(value) is str and category_gap(value) and value not in kept:
                    self.counts[column] = self.counts.get(column, 0) + 1

    def warning(self, name: str) -> str | None:
        if not self.counts:
            return None
        total = sum(self.counts.values())
        where = ", ".join(f"{c} ({n})" for c, n in sorted(self.counts.items()))
        return (
            f"warning: {total} captured {'text is' if total == 1 else 'texts are'} spelled as "
            'a missing value ("", NA, null, '
            f"... as pandas reads one) in inputs whose encoder learnt a missing category: {where}; "
            "they were served as those texts (a category the model never saw), but aiaas batch, "
            "compare and pandas read such a CSV cell as the missing value, another answer: "
            f"export to JSONL to keep them (aiaas capture export {name} --out FILE.jsonl)"
        )
