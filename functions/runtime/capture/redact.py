"""The deny-list applied to a request body before it is captured: denied values never reach
the store.

Where a denied name is removed (a field is named, not searched for, at these places only):
- a top-level key of the body (`{"email": ..., "inputs": ...}`);
- a key of each record (`{"instances": [{"email": ..., "age": 3}]}`) and of the `inputs`
  object (named inputs, or columns by feature name);
- an OIP input tensor of that name (`{"inputs": [{"name": "email", ...}]}`), and a key of the
  OIP request's `parameters` and of each tensor's (where a caller's metadata goes);
- a feature sent by position (`{"inputs": [[...]]}`, OIP `data` of the feature input): its
  value is replaced by null, so the other features keep their places.
- a text model's texts sent without their field's name (`{"inputs": ["..."]}`, `instances` of
  strings, its ids input given as text, an OIP BYTES tensor of that input) when the deny-list
  names its text field or that input: each text becomes null. Only records were redacted, and
  a model's own documented form captured every text whole under a deny-list of `text`.
Values nested deeper are kept: a deny-list names fields, it does not scan free text.
The answer is captured too: what it echoes of the request (an OIP `id`) is removed there by
functions/predict/capture.py.
"""

from __future__ import annotations

from typing import Any

from functions.runtime.manifest import ModelManifest
from functions.runtime.text_input import text_input


class Redactor:
    """Removes the denied fields of one version's requests (its feature names known)."""

    def __init__(self, deny: frozenset[str], manifest: ModelManifest) -> None:
        self.deny = deny
        features = manifest.features
        self.columns = [i for i, name in enumerate(features) if name in deny]
        self.width = len(features)
        self.feature_input = manifest.inputs[0].name if features else None
        text = text_input(manifest)
        # The input a text model reads text for, where its texts are denied (None: kept); its
        # field and its input name the same texts, so denying one denies both.
        self.text_input = text.input if text and {text.field, text.input} & deny else None
        self.text_names: frozenset[str] = frozenset()  # OIP tensors of texts: kept, nulled
        if text and self.text_input:
            self.text_names = frozenset({text.field, text.input})
            self.deny = deny | self.text_names

    def __call__(self, body: Any) -> Any:
        if not self.deny or not isinstance(body, dict):
            return body
        body = {k: v for k, v in body.items() if k not in self.deny}
        if isinstance(body.get("parameters"), dict):
            body["parameters"] = self._keys(body["parameters"])
        if "instances" in body:
            body["instances"] = self._rows(body["instances"])
        inputs = body.get("inputs")
        if isinstance(inputs, dict):
            body["inputs"] = {k: self._rows(v) for k, v in inputs.items() if k not in self.deny}
        elif isinstance(inputs, list) and inputs and isinstance(inputs[0], dict):
            # The text input's tensor is kept, its data nulled (`_texts`): its rows keep their
            # places, and the export has a row (an empty text) for each.
            kept = self.text_names
            body["inputs"] = [
                self._tensor(t) for t in inputs if _name(t) not in self.deny or _name(t) in kept
            ]
        elif isinstance(inputs, list):
            body["inputs"] = self._rows(inputs)
        if self.text_input is not None:
            self._texts(body)
        return body

    def _texts(self, body: dict[str, Any]) -> None:
        """A text model's texts (or their token ids), sent by position, as nulls: its field or
        input is denied. Each row keeps its place; an OIP tensor of the input, its length."""
        inputs = body.get("inputs")
        if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict):
            body["inputs"] = [
                {**t, "data": _nulled(t["data"])}
                if _name(t) in self.text_names and "data" in t
                else t
                for t in inputs
            ]
        elif inputs is not None and not isinstance(inputs, dict):
            body["inputs"] = _nulled(inputs)  # records' and inputs' names: removed above
        if isinstance(body.get("instances"), list):
            body["instances"] = [r if isinstance(r, dict) else None for r in body["instances"]]

    def _rows(self, rows: Any) -> Any:
        """Records lose denied keys; positional rows of the features lose denied values."""
        if not isinstance(rows, list):
            return rows
        out = []
        for row in rows:
            if isinstance(row, dict):
                row = {k: v for k, v in row.items() if k not in self.deny}
                if self.columns and self.feature_input in row:
                    # A record of the feature input holds a positional row (`{"instances":
                    # [{"x": [...]}]}`): its denied values were captured as sent.
                    value = row[self.feature_input]
                    if isinstance(value, list) and not any(isinstance(v, dict) for v in value):
                        row[self.feature_input] = self._rows(value)  # no records: one level
                    elif self.width == 1 and not isinstance(value, dict):
                        row[self.feature_input] = None  # a one-feature row's one value
            elif self.columns and self.width == 1 and not isinstance(row, list):
                # A one-feature model's column sent flat (`{"inputs": [v1, v2]}`, `instances`
                # of values): each value is a row of that feature. Rows of two or more were
                # captured as sent.
                row = None
            elif self.columns and isinstance(row, list) and len(row) == self.width:
                row = list(row)
                for column in self.columns:
                    row[column] = None
            out.append(row)
        if self.columns and len(out) == self.width and not isinstance(out[0], list | dict):
            for column in self.columns:  # one row sent without its batch axis
                out[column] = None
        return out

    def _keys(self, found: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in found.items() if k not in self.deny}

    def _tensor(self, tensor: dict[str, Any]) -> dict[str, Any]:
        if isinstance(tensor.get("parameters"), dict):
            tensor = {**tensor, "parameters": self._keys(tensor["parameters"])}
        data = tensor.get("data")
        if tensor.get("name") != self.feature_input or not self.columns or data is None:
            return tensor
        if isinstance(data, list) and any(isinstance(item, list) for item in data):
            # The codec reads `data` row-major whatever its nesting ([[1, 2], [3, 4]] for a row
            # of 4, one value a row, rows run together): flattened the same way, the denied
            # columns are where it finds them. Rows only were nulled, and those kept them.
            data = _flat(data)
        if isinstance(data, list) and self.width and len(data) % self.width == 0:
            data = list(data)  # row-major: feature j of row i is data[i * width + j]
            for start in range(0, len(data), self.width):
                for column in self.columns:
                    data[start + column] = None
            return {**tensor, "data": data}
        return tensor


def _nulled(value: Any) -> Any:
    """`value` (a text, a list of texts or of token id rows, OIP data flat or nested) with each
    row, or each value of a nested one, replaced by None."""
    if not isinstance(value, list):
        return None
    return [[None] * len(v) if isinstance(v, list) else None for v in value]


def _name(tensor: Any) -> Any:
    return tensor.get("name") if isinstance(tensor, dict) else None


def _flat(data: list[Any]) -> list[Any]:
    """Nested lists as one row-major list (iteratively: the codec bounds their size)."""
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out
