"""A tensor's spec (`TensorSpec`): one named input or output of a model, as its manifest lists
it; its stored form and its strict parsing (a wrong field is a `ManifestError` naming it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from functions.runtime import manifest_fields
from functions.runtime.errors import ManifestError
from functions.runtime.manifest_fields import choice, get, index_rows, mapping

# Element types the runtime accepts, spelled as numpy spells them ("string" is ONNX's tensor(string)).
DTYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "string",
)  # fmt: skip
# The prefixes of the numeric ones (`dtype.startswith(NUMERIC)`).
NUMERIC = ("float", "int", "uint")


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output: element type and shape, -1 for a dynamic dimension."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    # Reject NaN and +-inf in this input (float inputs only).
    finite: bool = False
    # Float inputs only, with `finite`: a missing value (null, an empty cell, NaN) is taken, as
    # the graph imputes it (publish reads a SimpleImputer); +-inf stays refused.
    gaps: bool = False
    description: str = ""
    # Outputs only: the graph gives one {class: probability} map per row (a ZipMap, as skl2onnx
    # exports by default); the runtime serves it as this float32 [N, len(map_keys)] tensor, one
    # column per key in this order. The keys are the graph's class values (int64 or string).
    map_keys: tuple[int, ...] | tuple[str, ...] = ()
    # Integer inputs only: the graph reads rows of a table this long with these values (an
    # nn.Embedding's Gather). ONNX's Gather reads a negative index from the table's end, where
    # torch refuses it, so values must be 0 to index_rows - 1; 0: not such an input.
    index_rows: int = 0
    # String inputs only: the category a missing value (JSON null, an empty CSV cell) is sent as,
    # read from the graph at publish: "nan" where skl2onnx exports a OneHotEncoder fit on NaN.
    missing: str | None = None
    # String inputs with `missing` only: the spellings pandas reads as a gap (`NA`, `None`,
    # `n/a`, ...) that the input's encoder learnt as categories of their own; a CSV cell so
    # written is that category, not the missing one (codecs/nulls.py: `cell_text`).
    na_categories: tuple[str, ...] = ()
    # String inputs only: blanks around a value are no part of it, and are stripped before the
    # graph sees it (" Nice" is "Nice"): a model `aiaas train` fitted on a table's text columns,
    # whose categories were read so (a CSV written `70, Lyon`).
    strip: bool = False
    # String inputs without `missing` only: an encoder of the input learnt the category "None"
    # (skl2onnx's spelling of a Python None in the frame it was fit on, and of the text "None"):
    # a null is still refused, its 422 saying to send "None" rather than "" (a hint, no answer
    # depends on it, so older readers that ignore it serve the version alike).
    none_category: bool = False

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def sequence(self) -> bool:
        """A rank-2 input with a dynamic second axis: a row is a sequence of any length (token
        ids for an integer one, as a GRU or LSTM over an embedding reads them), not an image
        nor a fixed set of columns; refusals say what to send in those terms."""
        return self.rank == 2 and self.shape[1] == -1


def batch_fixed_at(inputs: tuple[TensorSpec, ...], size: int) -> bool:
    """Whether every input of an axis fixes its first at `size`: a batch of `size` rows, where a
    [size] output is one score a row. One input of another first axis (a window [steps, 12]
    beside a GRU's h0 [2, 64]) says the [size] output answers one input with no batch axis."""
    firsts = [spec.shape[0] for spec in inputs if spec.rank]
    return bool(firsts) and all(first == size for first in firsts)


def spec_dict(spec: TensorSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["shape"] = list(spec.shape)
    if spec.map_keys:
        data["map_keys"] = list(spec.map_keys)
    else:
        del data["map_keys"]  # tensors' specs stay as they were
    if not spec.index_rows:
        del data["index_rows"]
    if spec.na_categories and spec.missing is not None:  # no missing category: no meaning
        data["na_categories"] = list(spec.na_categories)
    else:
        del data["na_categories"]
    for key, unset in (
        ("missing", None),
        ("strip", False),
        ("gaps", False),
        ("none_category", False),
    ):
        if data[key] == unset:
            del data[key]  # written only where set: older readers ignore them
    return data


def _map_keys(spec: Mapping[str, Any], where: str) -> tuple[int, ...] | tuple[str, ...]:
    keys = get(spec, "map_keys", list, where, [])
    if not keys:
        return ()
    path = f"{where}.map_keys"
    kind = str if isinstance(keys[0], str) else int
    if not all(isinstance(k, kind) and not isinstance(k, bool) for k in keys):
        raise ManifestError(f"manifest field '{path}' must be all integers or all strings")
    if len(set(keys)) != len(keys):
        raise ManifestError(f"manifest field '{path}' lists a key twice")
    if get(spec, "dtype", str, where) != "float32" or len(get(spec, "shape", list, where)) != 2:
        raise ManifestError(f"manifest field '{path}' is for float32 [N, classes] outputs only")
    return tuple(keys)


def _spec(data: object, where: str) -> TensorSpec:
    spec = mapping(data, where)
    shape = get(spec, "shape", list, where)
    for i, dim in enumerate(shape):
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < -1 or dim == 0:
            raise ManifestError(
                f"manifest field '{where}.shape[{i}]' must be a positive int or -1 (dynamic)"
            )
    dtype = choice(get(spec, "dtype", str, where), DTYPES, f"{where}.dtype")
    missing, strip = manifest_fields.string_fields(spec, where, dtype)
    na_categories = manifest_fields.na_categories(spec, where, missing)
    gaps = manifest_fields.float_gaps(spec, where, dtype)
    return TensorSpec(
        name=get(spec, "name", str, where),
        dtype=dtype,
        shape=tuple(shape),
        finite=get(spec, "finite", bool, where, False),
        description=get(spec, "description", str, where, ""),
        map_keys=_map_keys(spec, where),
        index_rows=index_rows(spec, where),
        missing=missing,
        na_categories=na_categories,
        strip=strip,
        gaps=gaps,
        none_category=manifest_fields.none_category(spec, where, dtype, missing),
    )


def parse_specs(data: Mapping[str, Any], key: str) -> tuple[TensorSpec, ...]:
    items = get(data, key, list, "")
    if not items:
        raise ManifestError(f"manifest field '{key}' must list at least one tensor")
    specs = tuple(_spec(item, f"{key}[{i}]") for i, item in enumerate(items))
    if len({spec.name for spec in specs}) != len(specs):
        raise ManifestError(f"manifest field '{key}' has duplicate tensor names")
    if key == "inputs" and any(spec.map_keys for spec in specs):
        raise ManifestError("manifest field 'inputs' has map_keys, which only outputs may have")
    return specs
