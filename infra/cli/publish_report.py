"""What `aiaas publish` prints of the version it published (text, or one JSON document with
--json): its notes, the card's metrics in a line, and the newest versions published from the
same model file (`same_file`, read before the new version exists)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from functions.runtime.artifact_files import files_to_publish
from functions.runtime.errors import AiaasError
from functions.runtime.file_hashes import sha256_file
from functions.runtime.manifest import ModelManifest
from functions.runtime.manifest_schema import requirements
from functions.runtime.metric_text import metrics_text
from infra.cli.output_change import outputs_only
from infra.cli.publish_card import CARD, rows_read
from infra.cli.publish_earlier import Earlier
from infra.cli.publish_options import Prepared

SAME_FILE_CHECKED = 20  # the newest versions a publish compares its model file with


def report(
    args: argparse.Namespace,
    store: str,
    manifest: ModelManifest,
    notes: tuple[str, ...],
    same: list[str],
    alias: str | None,
    *,
    again: bool = False,
) -> None:
    name, version = manifest.name, manifest.version
    if same:
        notes = (*notes, f"note: the same model file as {name}:{same[-1]}, published again")
    if needs := requirements(manifest):  # docs/registry.md
        notes = (
            *notes,
            f"note: its manifest requires {', '.join(needs)} (schema_version 2): "
            "functions of aiaas before 2026-12-06 refuse it (503); upgrade them first",
        )
    if args.json:
        doc = {
            "store": store,
            "name": name,
            "version": version,
            "sha256": manifest.file.sha256,
            "same_file_as": same,  # the newest 20 versions with this sha256, oldest first
            "alias": alias,
            "notes": list(notes),
            "card": CARD,  # in the version, beside the model
            "metrics": manifest.metrics,
            "already_published": again,  # the same files were there: nothing was written
        }
        print(json.dumps(doc, indent=2))
        return
    done = "already published" if again else "published"
    print(f"{done} {name}:{version} to {store} (sha256 {manifest.file.sha256[:12]})")
    for note in notes:
        print(f"  {note}")
    held_out = held_out_text(manifest, again=again)
    print(f"  card: {CARD} ({held_out}); `aiaas show {name}:{version}` prints its path")
    if alias:
        print(f"{name}@{alias} -> {version}")


def held_out_text(manifest: ModelManifest, *, again: bool = False) -> str:
    """The card's metrics in a line; without them, how a publish adds them (not to a version
    published already: it stays as it is, so a retry with --data was told to pass --data)."""
    held_out = manifest.metrics.get("held_out")
    if not held_out and outputs_only(manifest):
        return "no metrics: its output cannot be scored against labels"
    if not held_out and again:
        return "no metrics: the version was published without --data"
    if not held_out:
        return "no metrics: --data FILE --target COLUMN adds them"
    rows = rows_read(held_out["rows"], held_out.get("rows_in_file"))
    left = held_out.get("rows_not_finite")
    left_out = f"; {left} more left out: a NaN or infinite answer" if left else ""
    return f"{metrics_text(held_out)} on {rows} of {held_out['data']}{left_out}"


def same_file(
    earlier: Earlier, sha256: str, weights: Callable[[], dict[str, str]] = dict
) -> list[str]:
    """Of the newest `SAME_FILE_CHECKED` versions, those whose manifests vouch for a file with
    this sha256 and the same external weights (`weights`: path -> sha256 of the files beside
    the model, hashed only once a version's model file matches: a torch export keeps its
    weights in `model.onnx.data`, so a version of other weights beside the same graph was
    "the same model file, published again"). Publishing it again still makes a new version (that is what was asked), but
    an unnoticed duplicate looks like a retrained model; only the manifests are read, never a
    model file, and only the newest: a GET a version made a CI's publish of version 1,501 read
    1,500 manifests (11 s on moto), the duplicate likeliest the last. The notes' reads (the
    newest manifest, what the bare name serves) are not made again."""
    same: list[str] = []
    ours: dict[str, str] | None = None
    for version in earlier.versions()[-SAME_FILE_CHECKED:]:
        try:
            manifest = earlier.manifest(version)
            if manifest.file.sha256 != sha256:
                continue
            ours = weights() if ours is None else ours
            if {f.path: f.sha256 for f in manifest.weight_files} == ours:
                same.append(version)
        except AiaasError:  # a broken manifest is `aiaas show`'s to report, not publish's
            continue
    return same


def weights_beside(prepared: Prepared) -> dict[str, str]:
    """The sha256 of each external weights file the model loads, by its path in the version."""
    wanted = files_to_publish(prepared.model, prepared.extra_files)
    return {rel: sha256_file(path) for rel, (path, role) in wanted.items() if role == "weights"}
