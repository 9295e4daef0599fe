"""A verified model held in memory rather than in the cache directory (`ModelInMemory`): the
model file's bytes and each external data file's, fetched and checked with nothing written to
disk. What onnxruntime loads is one of these or a path (`ModelSource`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from functions.runtime.errors import ModelUnavailable
from functions.runtime.manifest import MODEL_FILE, ModelManifest
from functions.runtime.transfer import MemorySink, Sink

# (manifest, the file's path in the version, its size, its sha256, where its bytes go): the
# cache's verified fetch of one file (ArtifactCache._transfer).
Transfer = Callable[[ModelManifest, str, int, str, Sink], None]


@dataclass
class ModelInMemory:
    """A verified model held in memory: the model file's bytes and each external data file."""

    model: bytes
    weights: dict[str, memoryview] = field(default_factory=dict)
    sinks: list[MemorySink] = field(default_factory=list)

    def release(self) -> None:
        """Give the buffers back (onnxruntime has copied what it needs once a session exists)."""
        for view in self.weights.values():
            with contextlib.suppress(BufferError):  # still exported: freed with its holder
                view.release()
        self.weights.clear()
        for sink in self.sinks:
            sink.release()
        self.sinks.clear()


ModelSource = Path | ModelInMemory  # what onnxruntime loads: a path, or bytes in memory


def fetch_into_memory(manifest: ModelManifest, transfer: Transfer) -> ModelInMemory:
    """The verified model and its external data in memory: nothing written to disk."""
    loaded = ModelInMemory(b"")
    try:
        model = _into_memory(
            manifest, MODEL_FILE, manifest.file.size, manifest.file.sha256, transfer
        )
        loaded.model = bytes(model.view())  # onnxruntime takes the model itself as bytes
        model.release()
        for item in manifest.weight_files:
            sink = _into_memory(manifest, item.path, item.size, item.sha256, transfer)
            loaded.sinks.append(sink)
            loaded.weights[item.path] = sink.view()
    except BaseException:
        loaded.release()
        raise
    return loaded


def _into_memory(
    manifest: ModelManifest, rel: str, size: int, sha: str, transfer: Transfer
) -> MemorySink:
    try:
        sink = MemorySink(size)
    except OSError as exc:  # a manifest (edited in the store?) declaring more than there is
        ref = f"{manifest.name}:{manifest.version}"
        raise ModelUnavailable(
            f"{ref}: its manifest gives {rel} as {size} bytes, more memory than this "
            f"process can take ({exc.strerror}); publish the version again",
            public_message=f"model {ref} cannot be loaded",
        ) from None
    try:
        transfer(manifest, rel, size, sha, sink)
    except BaseException:
        sink.release()
        raise
    return sink
