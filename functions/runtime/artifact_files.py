"""Which files make a version: the model's external data and the extras.

ONNX keeps weights over 2 GB (and any the exporter chose to) in external data files named
inside the model, relative to its folder. Publishing lists each with its size and sha256 in
the manifest, so serving fetches and verifies all of them. The names are read by walking the
model's protobuf fields over a memory map (`onnx.load` would parse and copy every weight of a
1 GB single-file model: ~2.4 s and 1 GB of memory here, where the walk takes milliseconds).
Serving walks them again before loading (`unlisted_external_data`): onnxruntime reads a plain
name from beside the model (the artifact cache's folder) or, for a model loaded from memory,
from the working directory, so a model naming a file its manifest does not list could answer
that file's bytes as weights.
"""

from __future__ import annotations

import mmap
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from functions.runtime.errors import BadRequest
from functions.runtime.file_hashes import sha256_file
from functions.runtime.manifest import MANIFEST_FILE, MODEL_FILE, ArtifactFile, artifact_path
from functions.runtime.protowire import LEN, Buffer, fields
from functions.runtime.version_files import BACKGROUND_FILE, BASELINE_FILE

# Field numbers from onnx.proto (tests check them against onnx's own descriptors).
MODEL_GRAPH, MODEL_FUNCTIONS = 7, 25
GRAPH_NODE, GRAPH_INITIALIZER, FUNCTION_NODE = 1, 5, 7
NODE_ATTRIBUTE = 5
GRAPH_SPARSE_INITIALIZER, SPARSE_VALUES, SPARSE_INDICES = 15, 1, 2
ATTRIBUTE_T, ATTRIBUTE_G, ATTRIBUTE_TENSORS, ATTRIBUTE_GRAPHS = 5, 6, 10, 11
ATTRIBUTE_SPARSE_TENSOR, ATTRIBUTE_SPARSE_TENSORS = 22, 23
TENSOR_NAME, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION, EXTERNAL = 8, 13, 14, 1


def external_data_names(model_path: Path) -> list[str]:
    """The external data files `model_path` references, in the order its tensors name them
    (initializers and attribute tensors, in subgraphs and functions too, as onnx finds them)."""
    with model_path.open("rb") as handle:
        if handle.seek(0, 2) == 0:
            return []
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _names(buf, str(model_path))


def unlisted_external_data(model: Path | bytes, listed: Iterable[str]) -> list[str]:
    """The external data files `model` (a file, or its bytes) names beyond `listed`."""
    allowed = set(listed)
    if isinstance(model, Path):
        named = external_data_names(model)
    else:
        named = _names(model, "the model") if model else []
    return [name for name in named if name not in allowed]


def nested_external_data(model: Buffer) -> list[str]:
    """The external data files `model` names from tensors of its subgraphs and functions (and
    sparse ones). onnxruntime reads those from a file even for a model it was given as bytes
    with its weights in memory (the main graph's initializers and Constant nodes it takes from
    there): from the working directory, so such a model must not load from memory."""
    try:
        found = dict.fromkeys(e.location for e in _locations(model, nested_only=True) if e)
    except (IndexError, ValueError):
        return []  # not a model: `unlisted_external_data` has refused it already
    return list(found)


def _names(buf: Buffer, where: str) -> list[str]:
    return list(dict.fromkeys(extent.location for extent in _extents(buf, where)))


def _extents(buf: Buffer, where: str) -> list[Extent]:
    try:
        return [extent for extent in _locations(buf) if extent is not None]
    except (IndexError, ValueError) as exc:
        raise BadRequest(
            f"{where} is not an ONNX model ({exc}); publish the .onnx file your exporter wrote"
        ) from None


def short_data_file(model_path: Path) -> None:
    """BadRequest naming a tensor whose bytes lie past the end of its data file (a truncated
    copy), checked from the offsets and lengths the model names: onnxruntime's own refusal
    came as 'not an ONNX model onnxruntime can load', after a red log line of its own. A
    missing file or a model that is no ONNX is left to the other checks."""
    with model_path.open("rb") as handle:
        if handle.seek(0, 2) == 0:
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            extents = _extents(buf, str(model_path))
    sizes: dict[str, int] = {}
    for extent in extents:
        if extent.location not in sizes:
            try:
                sizes[extent.location] = (model_path.parent / extent.location).stat().st_size
            except (OSError, ValueError):
                sizes[extent.location] = -1  # missing or unreadable: said elsewhere
        size, end = sizes[extent.location], extent.offset + (extent.length or 0)
        if 0 <= size < end or (extent.length is None and 0 <= size <= extent.offset):
            raise BadRequest(
                f"{model_path} keeps weights for {extent.tensor!r} at bytes {extent.offset}-"
                f"{max(end, extent.offset + 1)} of {extent.location!r}, which has only {size} "
                "bytes (a truncated copy?); publish the model with its complete data files"
            )


def files_to_publish(
    model_path: Path, extra_files: Mapping[str, Path]
) -> dict[str, tuple[Path, str]]:
    """Each file beside the model, by its path in the version: (local file, role); BadRequest
    naming a missing or misnamed file before anything is uploaded."""
    wanted: dict[str, tuple[Path, str]] = {}
    for name in external_data_names(model_path):
        local = model_path.parent / name
        _check_data_name(model_path, name)
        if not local.is_file():
            raise BadRequest(
                f"{model_path} keeps weights in external data file {name!r}, which is not "
                f"beside it ({local} is missing); publish the model with all its data files"
            )
        if any(part.startswith(".") for part in name.split("/")):
            raise BadRequest(
                f"{model_path} names a hidden file {name!r} as external data: refused, as a model "
                "from elsewhere could name files such as .env to have them uploaded as weights; "
                "if the weights really are there, rename the file and save the model again"
            )
        # Beside the model, links followed: in its folder, or where the model file itself
        # lives (a Hugging Face cache links both from snapshots/REV/ to the repo's blobs/).
        homes = (model_path.parent, model_path.resolve().parent)
        if not any(_inside(local, home) for home in homes):
            raise BadRequest(
                f"{model_path} names {name!r} as external data, a link to "
                f"{local.resolve()} outside the model's folder: refused, as a model from "
                "elsewhere could link to files such as ~/.aws/credentials to have them uploaded "
                "as weights; if the weights really are there, copy them beside the model"
            )
        wanted[name] = (local, "weights")
    for rel, local in extra_files.items():
        if rel in wanted and _same_file(wanted[rel][0], Path(local)):
            continue  # a pulled version lists its data files among the files beside the model
        if rel in wanted:
            raise BadRequest(
                f"the model keeps its weights in {rel!r}, the name this version's {rel} "
                "file takes: the two would overwrite each other; save the model's external "
                "data under another name (onnx.save_model(..., location='model.onnx.data'))"
            )
        if not _valid(rel):
            raise BadRequest(f"invalid extra file name {rel!r}")
        wanted[rel] = (Path(local), "extra")
    return wanted


def describe_files(model_path: Path, extra_files: Mapping[str, Path]) -> tuple[ArtifactFile, ...]:
    """The manifest's `files` as publishing lists them (sizes, sha256), for a run folder's own
    manifest written before (or without) publishing."""
    return tuple(
        ArtifactFile(rel, local.stat().st_size, sha256_file(local), role)
        for rel, (local, role) in files_to_publish(model_path, extra_files).items()
    )


@dataclass(frozen=True)
class Extent:
    """Where one tensor's data lies outside the model: its file, and bytes as the model says."""

    location: str
    tensor: str
    offset: int
    length: int | None  # None: not said, onnxruntime reads what the tensor's shape needs


# Files written into a version's folder after publishing (`aiaas baseline`, the card's): weights
# under one of these names would block them, or be read as them (explain, monitor).
WRITTEN_LATER = (BACKGROUND_FILE, BASELINE_FILE)
CARD_FOLDER = "card/"


def _check_data_name(model_path: Path, name: str) -> None:
    """BadRequest when an external data location cannot be a file of the version: a path out
    of the model's folder (`../x.bin`, absolute) or one of the version's own files."""
    if name in WRITTEN_LATER or name.startswith(CARD_FOLDER):
        what = name if name in WRITTEN_LATER else CARD_FOLDER
        raise BadRequest(
            f"{model_path} names {name!r} as its external data file, a name the version's own "
            f"{what} takes once written (by `aiaas baseline` or the card); save the weights "
            "under another name ('model.onnx.data')"
        )
    if _valid(name):
        return
    if name in (MODEL_FILE, MANIFEST_FILE):
        raise BadRequest(
            f"{model_path} names {name!r} as its external data file, a name the version's own "
            f"{name} takes; save the weights under another name ('model.onnx.data')"
        )
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or _outside(parts):
        raise BadRequest(
            f"{model_path} keeps weights in external data file {name!r}, outside the model's "
            "folder (a version holds only files beside its model): save the model with its data "
            "files beside it (onnx.save_model(..., location='model.onnx.data'))"
        )
    plain = posixpath.normpath("/".join(parts))
    raise BadRequest(
        f"{model_path} names its external data file {name!r}, not as a plain relative name ('.', "
        "'..', '//' or '\\' in it); a version keeps each file under one plain name, so save "
        f"the model naming it so (onnx.save_model(..., location={plain!r}))"
    )


def _outside(parts: list[str]) -> bool:
    """Whether a path of `parts`, '..' taken as going up, leaves its folder at some point."""
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 0 if part in ("", ".") else 1
        if depth < 0:
            return True
    return False


def _inside(local: Path, folder: Path) -> bool:
    """Whether `local`, its links followed, is a file under `folder` (itself resolved)."""
    return local.resolve().is_relative_to(folder.resolve())


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _valid(rel: str) -> bool:
    try:
        artifact_path(rel)
    except ValueError:
        return False
    return True


def _locations(buf: Buffer, *, nested_only: bool = False) -> Iterator[Extent | None]:
    """Every tensor's external data file; `nested_only`: not the main graph's initializers'."""
    for number, wire, start, end, _ in fields(buf, 0, len(buf)):
        if wire == LEN and number == MODEL_GRAPH:
            top = None if nested_only else GRAPH_INITIALIZER
            yield from _graph(buf, start, end, GRAPH_NODE, top, nested_only=nested_only)
        elif wire == LEN and number == MODEL_FUNCTIONS:
            yield from _graph(buf, start, end, FUNCTION_NODE, None)


def _graph(
    buf: Buffer, start: int, end: int, node: int, init: int | None, *, nested_only: bool = False
) -> Iterator[Extent | None]:
    """`nested_only` (the main graph): its subgraphs' tensors and its sparse ones, not its
    initializers and node attribute tensors, which onnxruntime takes from memory."""
    sparse = init is not None or nested_only
    for number, wire, a, b, _ in fields(buf, start, end):
        if wire == LEN and number == init:
            yield _location(buf, a, b)
        elif wire == LEN and number == GRAPH_SPARSE_INITIALIZER and sparse:
            yield from _sparse(buf, a, b)
        elif wire == LEN and number == node:
            for field, kind, c, d, _ in fields(buf, a, b):
                if kind == LEN and field == NODE_ATTRIBUTE:
                    yield from _attribute(buf, c, d, tensors=not nested_only)


def _attribute(
    buf: Buffer, start: int, end: int, *, tensors: bool = True
) -> Iterator[Extent | None]:
    for number, wire, a, b, _ in fields(buf, start, end):
        if wire == LEN and number in (ATTRIBUTE_T, ATTRIBUTE_TENSORS) and tensors:
            yield _location(buf, a, b)
        elif wire == LEN and number in (ATTRIBUTE_SPARSE_TENSOR, ATTRIBUTE_SPARSE_TENSORS):
            yield from _sparse(buf, a, b)
        elif wire == LEN and number in (ATTRIBUTE_G, ATTRIBUTE_GRAPHS):
            yield from _graph(buf, a, b, GRAPH_NODE, GRAPH_INITIALIZER)


def _sparse(buf: Buffer, start: int, end: int) -> Iterator[Extent | None]:
    """A sparse tensor's values and indices: tensors that may keep their data outside too."""
    for number, wire, a, b, _ in fields(buf, start, end):
        if wire == LEN and number in (SPARSE_VALUES, SPARSE_INDICES):
            yield _location(buf, a, b)


def _location(buf: Buffer, start: int, end: int) -> Extent | None:
    """Where a tensor keeps its data outside the model, None when its data is inside it."""
    external, name, where = False, "", {}
    for number, wire, a, b, _ in fields(buf, start, end):
        if number == TENSOR_DATA_LOCATION and wire == 0:
            external = a == EXTERNAL
        elif number == TENSOR_NAME and wire == LEN:
            name = bytes(buf[a:b]).decode(errors="replace")
        elif number == TENSOR_EXTERNAL_DATA and wire == LEN:
            entry = {item.number: bytes(buf[item.start : item.end]) for item in fields(buf, a, b)}
            where[entry.get(1, b"").decode(errors="replace")] = entry.get(2, b"").decode()
    if not external:
        return None
    offset, length = (where.get(key, "") for key in ("offset", "length"))
    return Extent(
        where.get("location", ""),
        name,
        int(offset) if offset.isdigit() else 0,
        int(length) if length.isdigit() else None,
    )
