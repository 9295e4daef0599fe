"""`aiaas publish`: an ONNX file (any exporter's) as a new immutable model version."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from functions.runtime import names
from functions.runtime.artifact_files import files_to_publish
from functions.runtime.errors import AiaasError, BadRequest, VersionExists
from functions.runtime.explain.patches import WINDOW_AXES, WINDOW_FIELD, window_problem
from functions.runtime.fixed_batch import fixed_batch_note
from functions.runtime.formula_cells import formula_label_warning
from functions.runtime.graph_classes import GraphClasses
from functions.runtime.manifest import (
    SCORE_ACTIVATIONS,
    TASKS,
    ModelManifest,
    Postprocessing,
    TensorSpec,
    check_features,
)
from functions.runtime.manifest_fields import check_labels
from functions.runtime.publish_alias import point_alias_at_published
from functions.runtime.publishing import NUMBER_TRIES, check_no_twin
from functions.runtime.reason_flag import add_reason, alias_reason
from functions.runtime.registry import Registry
from functions.runtime.store import open_store
from functions.runtime.tensor_spec import NUMERIC
from functions.runtime.tree_inputs import missing_value_notes
from functions.runtime.window_axis import input_features_axis
from infra.cli.file_args import require_file
from infra.cli.model_files import require_data_files, stage
from infra.cli.output_change import outputs_only
from infra.cli.publish_again import published_alike, refuse_taken
from infra.cli.publish_card import Scored, card_files
from infra.cli.publish_classifier import ClassifierOptions, classifier_setup
from infra.cli.publish_earlier import Earlier
from infra.cli.publish_label_indexes import checked_label_indexes
from infra.cli.publish_lookalike import refuse_lookalike
from infra.cli.publish_options import Prepared, add_publish_options, apply_publish_options
from infra.cli.publish_probe_checks import checked_by_own_labels, checked_by_probe
from infra.cli.publish_report import report, same_file, weights_beside
from infra.cli.publish_unlabelled import unlabelled_note
from infra.cli.publish_variant_check import check_half_source_loads
from infra.cli.row_progress import BYTES, Progress, add_flag
from infra.cli.stop_signals import answered, stopped_by_signals
from infra.cli.vectorizer_parity import checked_tokens
from infra.cli.vectorizer_tokens import vectorizer_tokens_note
from training.run_folders import temp_work_folder


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "publish",
        help="publish an ONNX file as a new model version",
        description=(
            "Publish any ONNX model: inputs and outputs are read from the graph. For classifiers "
            "exported with their classes (skl2onnx, with or without ZipMap), labels, the scores "
            "output and the activation are read from the graph too; the options override them."
        ),
    )
    p.add_argument("model", type=Path, help="path to model.onnx")
    p.add_argument("--name", required=True, help="model name (a-z, 0-9, '-', '_', '.')")
    p.add_argument(
        "--version",
        help="version to publish, e.g. 7, ci-903, 2024-06-01 (default: one more than the highest "
        "numeric version; named versions are not counted, and a bare NAME never picks one while "
        "a number exists)",
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        help="default: classification when --labels is given or the graph names its classes, "
        "else other",
    )
    p.add_argument(
        "--features",
        help="comma-separated feature (column) names of the model's one [N, F] input, in order: "
        "callers may then send records and CSV/JSONL columns by name",
    )
    p.add_argument(
        "--window-features",
        choices=tuple(WINDOW_AXES),
        help="the model's one input [N, A, B] is a window of features over time, its features "
        "the row's last side ([N, steps, features]: a GRU's) or first ([N, features, steps]: a "
        "1-D CNN's): explanations cut it into runs of steps of one feature, not square patches "
        "of a greyscale picture, and one of any length drifts per feature (a fixed one is "
        "binned value by value either way); needed where both sides are fixed and 8 or more, "
        "as [N, 100, 12], or for over 64 features beside any length",
    )
    p.add_argument(
        "--labels",
        help="comma-separated class labels, one per class in the model's order (default: read "
        "from the graph, e.g. a ZipMap's classes); a list of the wrong length is refused",
    )
    p.add_argument(
        "--scores-output",
        help="classifier output holding class scores or probabilities (default: the ZipMap "
        "output, else the float output with one column per class; never a label output)",
    )
    p.add_argument(
        "--label-output",
        help="the model's own int64/string label output, which batch does not repeat beside "
        "its label column (default: read from the graph)",
    )
    p.add_argument(
        "--activation",
        choices=SCORE_ACTIVATIONS,
        help="how the scores become probabilities (default: none when the exporter outputs "
        "probabilities, as skl2onnx does or a final Softmax, else softmax)",
    )
    p.add_argument("--alias", help="point this alias at the new version (e.g. production)")
    add_reason(p, "--alias points at the new version")
    p.add_argument("--allow-nonfinite", action="store_true", help="accept NaN/inf in float inputs")
    p.add_argument("--description", default="", help="one line about the model")
    p.add_argument(
        "--json", action="store_true", help="print one JSON document (for scripts) instead"
    )
    add_publish_options(p)
    add_flag(p, "an upload")
    p.set_defaults(func=cmd_publish)


def cmd_publish(args: argparse.Namespace) -> int:
    # Every step works in this private folder, removed however the publish ends: nothing is
    # ever written beside the user's model (model_files.py says what would be).
    # Held while it lives: a SIGKILLed publish's folder is removed by the next publish or pull.
    with temp_work_folder("aiaas-publish-") as work:
        given: Path = args.model
        require_file(given)
        if given.stat().st_size == 0:  # onnxruntime: "No graph was found in the protobuf"
            raise BadRequest(
                f"{given} is empty (0 bytes): the export that wrote it failed or was cut short "
                "(skl2onnx's to_onnx raising inside open(..., 'wb').write(...) leaves such a "
                "file); export it again"
            )
        require_data_files(given)  # named here: onnxruntime's own failure says less
        path = stage(given, Path(work) / "given")
        # SIGTERM and SIGHUP unwind as Ctrl-C does: the files sent so far are removed
        with _naming(given, path), stopped_by_signals():
            return _publish(args, path, Path(work))


@contextlib.contextmanager
def _naming(given: Path, staged: Path) -> Iterator[None]:
    """An error about the staged copy names the user's file: the copy is not theirs to find."""
    try:
        yield
    except BadRequest as exc:
        exc.message = exc.message.replace(str(staged.parent), str(given.parent))
        exc.args = (exc.message,)
        raise


def _task(labels: tuple[str, ...], graph: GraphClasses) -> str:
    """The task `--task` leaves out: classification with classes (given or in the graph),
    regression for an ai.onnx.ml regressor's values, else other. Labels for a regressor's values
    are refused: served as one binary score, a value of 152.1 answered "b" at 1.0."""
    if labels and graph.regression_outputs and not graph.labels:
        outputs = ", ".join(repr(name) for name in sorted(graph.regression_outputs))
        raise BadRequest(
            f"--labels names classes, but output {outputs} comes from a regressor operator (its "
            "values, not class scores): publish without --labels (task regression), or say "
            "--task classification if it does hold a class score"
        )
    if labels or graph.labels:
        return "classification"
    return "regression" if graph.regression_outputs else "other"


def _publish(args: argparse.Namespace, path: Path, work: Path) -> int:
    reg = Registry(open_store(args.store))
    name = names.model_name(args.name)
    # Checked before anything is written: a bad alias must not leave a published version behind.
    alias = names.alias_name(args.alias) if args.alias else None
    reason = alias_reason(args, alias)
    if args.version:  # `008` beside `8`, or another model's version, refused before any work
        pinned = names.new_version_name(args.version)
        check_no_twin(reg.store, name, pinned)
        text = args.tokenizer is not None
        refuse_taken(reg, name, pinned, path, quantize=args.quantize, text=text)
    refuse_lookalike(reg, name)  # `my-model` beside `my_model`: one function would serve both
    labels = tuple(label.strip() for label in args.labels.split(",")) if args.labels else ()
    if any(not label for label in labels):
        raise BadRequest("--labels has an empty label; use a,b,c")
    try:  # `a,a,b`: two classes answering one label, refused as `--features a,a,b` is
        check_labels(labels)
    except ValueError as exc:
        raise BadRequest(f"--labels: {exc}") from None
    # onnxruntime takes ~160 ms to import: `models`, `show`, `promote` and `--help` never need it.
    from functions.runtime.introspect import read_signature

    check_half_source_loads(path)  # in a child process: onnxruntime may crash, not refuse
    signature = read_signature(
        path,
        finite_inputs=not args.allow_nonfinite,
        part_checksums=reg.store.takes_part_checksums,
    )
    features = _features(args.features, signature.inputs)
    task = args.task or _task(labels, signature.classes)
    post: Postprocessing | None = None
    notes: tuple[str, ...] = ()
    if task == "regression" and not args.task:
        notes = ("task regression (the graph's outputs come from a regressor operator)",)
    if task == "classification":
        options = ClassifierOptions(labels, args.scores_output, args.label_output, args.activation)
        setup = classifier_setup(
            *(signature.outputs, signature.classes, options, signature.probe, signature.inputs),
            rows_apart=signature.rows_apart,
        )
        setup = checked_label_indexes(setup, signature.probe)
        setup = checked_by_own_labels(setup, signature.classes, signature.probe)
        setup = checked_by_probe(setup, signature.classes, signature.probe, options)
        labels, post, notes = setup.labels, setup.postprocessing, setup.notes
    own = signature.classes.labels  # scikit-learn's y, which a held-out file holds: compare
    renamed = {"graph_classes": list(own)} if post and own and own != labels else {}
    version = names.new_version_name(args.version) if args.version else reg.next_version(name)
    manifest = ModelManifest(
        name=name,
        version=version,
        task=task,
        inputs=signature.inputs,
        outputs=signature.outputs,
        file=signature.file,
        labels=labels,
        features=features,
        postprocessing=post,
        preprocessing=_window(args.window_features, signature.inputs),
        description=args.description,
        extras=renamed,
    )
    # --tokenizer, --quantize, and the vocabulary a model trained here carries
    prepared = apply_publish_options(args, manifest, path, work, signature.metadata)
    missing = missing_value_notes(signature.imputed, signature.routed, signature.one_way)
    notes = (*notes, *missing, *prepared.notes)
    notes = (*notes, *_picture_note(prepared.manifest))
    words = vectorizer_tokens_note(path, signature.file.producer)  # reads other words than sklearn
    if words is not None:
        notes = (*notes, words)
    # a token_pattern of the user's own, read by RE2: refused where --data's words differ
    notes = (
        *notes,
        *checked_tokens(path, signature.file.producer, prepared.manifest, args.data, args.target),
    )
    fixed = fixed_batch_note(prepared.manifest)  # said now, not at the first refused request
    if fixed is not None:
        notes = (*notes, fixed)
    formula = formula_label_warning(prepared.manifest.labels)  # batch writes labels into CSV
    if formula is not None:
        notes = (*notes, f"warning: {formula}")
    scored = _scored(args, prepared, work / "card")
    if scored is not None:
        prepared = replace(prepared, manifest=replace(prepared.manifest, metrics=scored.metrics))
    earlier = Earlier(reg, name)  # each manifest read once, by the notes and same_file
    unlabelled = unlabelled_note(earlier, prepared.manifest, prepared.extra_files, not args.task)
    notes = (*notes, *unlabelled)
    card = _Card(prepared, scored, notes, work / "card")
    stored = published_alike(reg, prepared) if args.version else None
    if stored is not None:  # a retried job: nothing to write, the alias still to set
        return _published_already(args, reg, stored, notes, alias, reason)
    same = same_file(  # before this version exists
        earlier, prepared.manifest.file.sha256, lambda: weights_beside(prepared)
    )
    numbered, show = not args.version, not args.no_progress
    try:
        manifest = _publish_numbered(reg, prepared.manifest, card, numbered=numbered, show=show)
    except VersionExists:
        # --version V run twice at once (a CI job and its retry): the other run won with the
        # same files, and this one is done as a retry after it is.
        stored = published_alike(reg, prepared) if args.version else None
        if stored is None:
            raise
        return _published_already(args, reg, stored, notes, alias, reason)
    answered()  # published: a stop signal now must not say "interrupted" (a retry publishes twice)
    refused = None
    try:
        if alias:
            point_alias_at_published(reg, name, alias, manifest.version, reason)
    except AiaasError as exc:  # the version exists: reported (--json too), then the error
        refused = exc
    report(args, reg.store.uri, manifest, notes, same, alias if refused is None else None)
    if refused is not None:
        raise refused
    return 0


def _published_already(
    args: argparse.Namespace,
    reg: Registry,
    stored: ModelManifest,
    notes: tuple[str, ...],
    alias: str | None,
    reason: str | None,
) -> int:
    """`stored`, published from the same files: nothing to write, the alias still to set."""
    if alias:
        point_alias_at_published(reg, stored.name, alias, stored.version, reason)
    answered()
    note = "already published from the same files; nothing written"
    if args.data is not None and not stored.metrics.get("held_out") and not outputs_only(stored):
        note += "; it was published without --data, and its card stays without metrics"
    report(args, reg.store.uri, stored, (*notes, note), [], alias, again=True)
    return 0


def _scored(args: argparse.Namespace, prepared: Prepared, folder: Path) -> Scored | None:
    """With --data: the published file's held-out metrics and plots (else None, as where
    --quantize --data compared the outputs of a model that cannot be scored against labels)."""
    if args.data is None or outputs_only(prepared.manifest):
        return None
    from infra.cli.publish_scoring import score

    return score(prepared.manifest, prepared.model, args.data, args.target, folder)


@dataclass(frozen=True)
class _Card:
    prepared: Prepared
    scored: Scored | None
    notes: tuple[str, ...]
    folder: Path

    def files(self, manifest: ModelManifest) -> dict[str, Path]:
        """Every file of `manifest`'s version beside the model: the options' and the card,
        which names the version (so it is written again when the number moves on)."""
        model, extra = self.prepared.model, self.prepared.extra_files
        others = files_to_publish(model, extra)
        card = card_files(manifest, self.scored, self.notes, others, self.folder)
        return {**extra, **card}


def _publish_numbered(
    reg: Registry, manifest: ModelManifest, card: _Card, *, numbered: bool, show: bool
) -> ModelManifest:
    """Publish; a number picked for the user (no --version) that another publisher claimed
    between reading it and publishing is replaced by the next free one, as a later run
    would have picked. An explicit --version that is taken stays an error."""
    for attempt in range(1, NUMBER_TRIES + 1):
        try:
            model, files = card.prepared.model, card.files(manifest)
            # Every byte publishing sends: the model, its external data, the files beside it.
            beside = files_to_publish(model, files).values()
            total = model.stat().st_size + sum(local.stat().st_size for local, _ in beside)
            what = f"{manifest.name}:{manifest.version}"
            with Progress(what, total, verb="sent", unit=BYTES, show=show) as sent:
                reg.publish(manifest, model, files, sent.add, on_written=answered)
            return manifest
        except VersionExists:
            if not numbered or attempt == NUMBER_TRIES:
                raise
            manifest = replace(manifest, version=reg.next_version(manifest.name))
    raise AssertionError("unreachable")


def _window(side: str | None, inputs: tuple[TensorSpec, ...]) -> dict[str, str]:
    """The manifest's preprocessing recording `--window-features` (patches.declared_window
    reads it back; older readers keep cutting the row as an image), refused where the model's
    row cannot be a window."""
    if side is None:
        return {}
    if len(inputs) != 1 or not inputs[0].dtype.startswith(NUMERIC):
        shapes = ", ".join(f"{spec.name} {spec.dtype} {list(spec.shape)}" for spec in inputs)
        raise BadRequest(
            f"--window-features needs a model of one numeric input [N, steps, features]; it "
            f"has {shapes}"
        )
    problem = window_problem(inputs[0].shape[1:], side)
    if problem is not None:
        raise BadRequest(f"--window-features {side}: {problem}")
    return {WINDOW_FIELD: side}


def _picture_note(manifest: ModelManifest) -> tuple[str, ...]:
    """Said where an undeclared [N, A, B] row, fixed and 8 or more on both sides and not square,
    will be read as a greyscale picture: an LSTM over [N, 50, 12] published without
    --window-features was explained in 6x6 squares lumping sensors, and publish said nothing
    (only `aiaas explain`, afterwards, noted it)."""
    row = manifest.inputs[0].shape[1:] if len(manifest.inputs) == 1 else ()
    if len(row) != 2 or -1 in row or row[0] == row[1] or input_features_axis(manifest) is not None:
        return ()
    return (
        f"input '{manifest.inputs[0].name}' {list(manifest.inputs[0].shape)} is read as a "
        f"{row[0]}x{row[1]} greyscale picture (explained in square patches, drift binned value "
        "by value); a window of features over time? publish it with --window-features last "
        "([N, steps, features]) or first ([N, features, steps])",
    )


def _features(raw: str | None, inputs: tuple[TensorSpec, ...]) -> tuple[str, ...]:
    if not raw:
        return ()
    try:
        return check_features(tuple(name.strip() for name in raw.split(",")), inputs)
    except ValueError as exc:
        raise BadRequest(f"--features: {exc}") from None
