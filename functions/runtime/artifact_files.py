"""Which files make a version, for publishing: the model's external data and the extras.

ONNX keeps weights over 2 GB (and any the exporter chose to) in external data files named
inside the model, relative to its folder. Publishing lists each with its size and sha256 in
the manifest, so serving fetches and verifies all of them. Reading the names needs the `onnx`
package (publish-time only; the serving side never imports this module).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from functions.runtime.cache import sha256_file
from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ArtifactFile, artifact_path


def external_data_names(model_path: Path) -> list[str]:
    """The external data files `model_path` references, in first-use order (none without onnx
    installed: onnxruntime then names a missing file when the model is first read)."""
    try:
        import onnx
        from onnx.external_data_helper import _get_all_tensors, uses_external_data
    except ImportError:
        return []
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(model_path), load_external_data=False)
    except DecodeError as exc:
        raise BadRequest(
            f"{model_path} is not an ONNX model ({exc}); publish the .onnx file your exporter wrote"
        ) from exc
    found: dict[str, None] = {}
    for tensor in _get_all_tensors(proto):
        if uses_external_data(tensor):
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            found[location] = None
    return list(found)


def describe_files(model_path: Path, extra_files: Mapping[str, Path]) -> tuple[ArtifactFile, ...]:
    """The manifest's `files` for a model and the extras stored beside it; BadRequest naming a
    missing or misnamed file before anything is uploaded."""
    wanted: dict[str, tuple[Path, str]] = {}
    for name in external_data_names(model_path):
        local = model_path.parent / name
        if not _valid(name) or not local.is_file():
            raise BadRequest(
                f"{model_path} keeps weights in external data file {name!r}, which is not "
                f"beside it ({local} is missing); publish the model with all its data files"
            )
        wanted[name] = (local, "weights")
    for rel, local in extra_files.items():
        if rel in wanted:
            continue  # a pulled version lists its data files among the files beside the model
        if not _valid(rel):
            raise BadRequest(f"invalid extra file name {rel!r}")
        wanted[rel] = (Path(local), "extra")
    with ThreadPoolExecutor(max_workers=4) as pool:  # hashlib releases the GIL on big reads
        hashes = list(pool.map(lambda item: sha256_file(item[0]), wanted.values()))
    return tuple(
        ArtifactFile(rel, local.stat().st_size, sha, role)
        for (rel, (local, role)), sha in zip(wanted.items(), hashes, strict=True)
    )


def _valid(rel: str) -> bool:
    try:
        artifact_path(rel)
    except ValueError:
        return False
    return True
