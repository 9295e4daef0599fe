"""What a publish checks of a version's files against a manifest that already lists them (a
pulled version): every listed file among those sent, each sent one as listed."""

from __future__ import annotations

from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ArtifactFile, ModelManifest


def check_listed(manifest: ModelManifest, found: set[str]) -> None:
    """BadRequest when the manifest already lists files (a pulled version) and one of them is
    not among those being published: checked before anything is sent."""
    missing = sorted({f.path for f in manifest.files} - found)
    if missing:
        raise BadRequest(
            f"the manifest of {manifest.name}:{manifest.version} lists {missing[0]}, which is "
            "not among the files being published"
        )


def checked_files(
    manifest: ModelManifest, found: tuple[ArtifactFile, ...]
) -> tuple[ArtifactFile, ...]:
    """The version's other files as sent; BadRequest when the manifest already lists files (a
    pulled version) and one differs."""
    listed = {f.path: f for f in manifest.files}
    for item in found:
        claimed = listed.get(item.path)
        if claimed is not None and (claimed.sha256, claimed.size) != (item.sha256, item.size):
            raise BadRequest(
                f"{item.path} of {manifest.name}:{manifest.version} has sha256 {item.sha256} "
                f"({item.size} bytes); its manifest says {claimed.sha256} ({claimed.size} bytes)"
            )
    return found
