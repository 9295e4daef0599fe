"""A DataFrame column's own name for the model input skl2onnx made of it.

skl2onnx exports a pandas DataFrame with one input per column and names each input after its
column made C-like: every character but letters, digits, '_' and '+' becomes '_', and a name
that starts with a digit gets a leading '_' ("petal length (cm)" -> "petal_length__cm_", what
scikit-learn's own `load_iris(as_frame=True)` holds). The graph keeps no trace of the column's
own name, so the training CSV and `DataFrame.to_dict("records")` named none of the model's
inputs and were refused. A record key or CSV column stands for an input when its name is the
input's, or else when skl2onnx's renaming of it is.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

_NOT_WORD = re.compile(r"[^\w+]")  # skl2onnx's Topology._generate_unique_name


def exported_name(column: str) -> str:
    """The input name skl2onnx gives a DataFrame column named `column`."""
    name = _NOT_WORD.sub("_", column)
    # Not re.match("[0-9]", ...): its pattern looked up per call was half the time a record's
    # 300,000 stray fields took to refuse.
    return "_" + name if "0" <= name[:1] <= "9" else name


def column_for(inputs: Collection[str], names: Iterable[str]) -> dict[str, str]:
    """{input: the name among `names` that stands for it} for each of `inputs` that no name
    matches exactly but exactly one renames to (two that rename alike stand for none)."""
    present = list(names)
    exact = set(present)
    found: dict[str, list[str]] = {}
    # Renaming keeps a name's length, or adds a leading "_": a name of any other length stands
    # for no input, and is not renamed (a record of 300,000 stray fields took a second).
    lengths = {len(i) for i in inputs} | {len(i) - 1 for i in inputs}
    for name in present:
        if len(name) not in lengths:
            continue
        renamed = exported_name(name)
        if name not in inputs and renamed in inputs and renamed not in exact:
            found.setdefault(renamed, []).append(name)
    return {key: columns[0] for key, columns in found.items() if len(columns) == 1}


def by_input(record: dict[str, object], inputs: Collection[str]) -> dict[str, object]:
    """`record` with a DataFrame column's key renamed to the input it stands for; the record
    itself when it names every input (other keys, an id, are the caller's) or none renames."""
    if all(name in record for name in inputs):
        return record
    renamed = column_for(inputs, record)
    if not renamed:
        return record
    keys = {column: key for key, column in renamed.items()}
    return {keys.get(key, key): value for key, value in record.items()}


def collision(
    inputs: Collection[str], names: Iterable[str], fix: str = "send each under its input name"
) -> str:
    """For names sent that skl2onnx renames alike where the model has an input of that name for
    each ('income (€)' and 'income ($)' both 'income____': inputs 'income____', 'income____1'),
    a sentence saying so for a refusal: which column is which input is the order of the fitted
    DataFrame's columns, which no name sent tells (matched by name, each stood for none and
    the refusal guessed a misspelling); "" where no names collide so."""
    groups: dict[str, list[str]] = {}
    for name in names:
        if name not in inputs:
            groups.setdefault(exported_name(name), []).append(name)
    for base, sent in groups.items():
        made = [i for i in inputs if i == base or (i.startswith(base) and i[len(base) :].isdigit())]
        if len(sent) > 1 and len(made) > 1:
            made.sort(key=lambda i: int(i[len(base) :] or -1))
            return (
                f"{_together(sent)} {'both' if len(sent) == 2 else 'all'} become {base!r} as "
                f"skl2onnx names a DataFrame's columns: the model's inputs {_together(made)} are "
                "those columns in the order of the DataFrame it was fitted on, which their names "
                f"cannot tell apart; {fix}"
            )
    return ""


def _together(names: list[str]) -> str:
    """'a' and 'b'; 'a', 'b' and 'c'."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
