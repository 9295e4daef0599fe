"""The training job spec (YAML or JSON): what to train, on what data, how, and where it goes.

`load_spec(path)` returns a validated, frozen `JobSpec` with every default filled in; any
problem is a `SpecError` naming the field. `JobSpec.to_dict()` is what the manifest records.
`find_spec(path)` is the file a user names, the demo specs shipped in the package included.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from functions.runtime import names
from functions.runtime.errors import InvalidName
from functions.runtime.metric_text import stored_key
from training.errors import SpecError
from training.recipes import CATALOG
from training.spec_fields import Fields
from training.spec_opset import max_opset
from training.spec_text import parse_text

# The demo specs, shipped in the package (package data) so an installed aiaas runs them anywhere.
BUNDLED_SPECS = Path(__file__).resolve().parent / "specs"
TASKS = ("classification", "regression")
FORMATS = ("auto", "csv", "npz", "parquet")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "step", "onecycle")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "amp")  # CUDA only: the CPU always trains in float32
EXPORTERS = ("dynamo", "torchscript")
# Metrics early stopping may watch, per task; "loss" is the validation loss.
MONITORS = {
    "classification": ("accuracy", "macro_f1", "f1", "loss"),
    "regression": ("r2", "rmse", "mae", "loss"),
}


@dataclass(frozen=True)
class DatasetSpec:
    path: str
    format: str = "auto"
    target: str | None = None
    features: tuple[str, ...] | None = None
    # Columns dropped before the features are taken (ids, free text, columns that leak the target).
    exclude: tuple[str, ...] = ()
    text_column: str | None = None
    input_shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class RecipeSpec:
    name: str
    params: dict[str, Any]


@dataclass(frozen=True)
class ScheduleSpec:
    name: str = "constant"
    step_size: int = 10
    gamma: float = 0.5


@dataclass(frozen=True)
class EarlyStopping:
    patience: int
    monitor: str
    min_delta: float = 0.0


@dataclass(frozen=True)
class ExportSpec:
    opset: int = 18
    exporter: str = "dynamo"
    parity_tolerance: float = 1e-4
    parity_rows: int = 256
    quantize: bool = False
    # Percentage points of the primary metric (accuracy or R2 x 100) int8 may lose.
    max_metric_drop: float = 1.0
    # "speed": int8 must also not be slower than float32; "size": smaller is enough.
    quantize_for: str = "speed"
    # The card's feature importance step's budget; 0: no importance plot (a big model's CI job).
    importance_seconds: float = 20.0


@dataclass(frozen=True)
class JobSpec:
    """A validated training job."""

    name: str
    task: str
    dataset: DatasetSpec
    recipe: RecipeSpec
    description: str = ""
    version: str | None = None
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    schedule: ScheduleSpec = ScheduleSpec()
    seed: int = 0
    validation_split: float = 0.15
    test_split: float = 0.15
    early_stopping: EarlyStopping | None = None
    device: str = "auto"
    precision: str = "auto"
    cpu_threads: int = 0
    export: ExportSpec = ExportSpec()
    alias: str | None = None
    # Classification: "balanced" (each class's loss weighted by rows / (classes x its rows in
    # the training split)), or {label: weight} (labels not named weigh 1); None: all weigh 1.
    class_weight: str | dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_spec(path: str | Path) -> Path:
    """The spec file as given; else, for `training/specs/NAME` (as README and `--help` write
    the demo specs) run where no such file is, such as outside a clone with aiaas installed
    from a wheel, the package's own copy of that spec."""
    given = Path(path)
    bundled = BUNDLED_SPECS / given.name
    # os.path's, not Path's: those raised for a name too long (a traceback, from an argparse
    # type); load_spec says what is wrong with the path.
    if (
        not os.path.exists(given)  # noqa: PTH110 - never raises
        and given.parts[:-1] == ("training", "specs")
        and os.path.isfile(bundled)  # noqa: PTH113
    ):
        return bundled
    return given


def load_spec(path: Path) -> JobSpec:
    """Read and validate a YAML (or JSON) job spec file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        demos = ", ".join(f"training/specs/{p.name}" for p in sorted(BUNDLED_SPECS.glob("*.yaml")))
        raise SpecError(
            f"cannot read spec {path}: No such file or directory (the demo specs: {demos})"
        ) from None
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:  # a binary file, a UTF-16 one: not a traceback
        raise SpecError(
            f"spec {path} is not UTF-8 text (byte {exc.start + 1}); give a YAML or JSON job spec"
        ) from None
    return parse_spec(parse_text(path, text))


def parse_spec(data: object) -> JobSpec:
    """Validate a spec already parsed into Python objects."""
    top = Fields(data)
    name = _name(top, "name", names.model_name)
    task = top.choice("task", TASKS)
    recipe = _recipe(top.section("recipe"), task)
    spec = JobSpec(
        name=name,
        task=task,
        recipe=recipe,
        dataset=_dataset(top.section("dataset"), CATALOG[recipe.name].kind),
        description=top.text("description", ""),
        version=_name(top, "version", names.new_version_name, required=False),
        epochs=top.integer("epochs", 10, minimum=1),
        batch_size=top.integer("batch_size", 64, minimum=1),
        learning_rate=top.number("learning_rate", 1e-3, positive=True),
        optimizer=top.choice("optimizer", OPTIMIZERS, "adamw"),
        weight_decay=top.number("weight_decay", 0.0, minimum=0.0),
        schedule=_schedule(top),
        seed=top.integer("seed", 0, minimum=0, maximum=2**32 - 1),  # numpy's limit
        validation_split=top.number("validation_split", 0.15, positive=True, below=1.0),
        test_split=top.number("test_split", 0.15, positive=True, below=1.0),
        early_stopping=_early_stopping(top, task),
        device=top.choice("device", DEVICES, "auto"),
        precision=top.choice("precision", PRECISIONS, "auto"),
        cpu_threads=top.integer("cpu_threads", 0, minimum=0),
        export=_export(top.section("export", {})),
        alias=_publish_alias(top.section("publish", {})),
        class_weight=_class_weight(top, task),
    )
    top.done()
    if spec.validation_split + spec.test_split >= 0.9:
        raise SpecError("spec fields 'validation_split' + 'test_split' must leave >= 10% to train")
    if spec.device == "cpu" and spec.precision == "amp":
        raise SpecError(
            "spec field 'precision' is 'amp' but 'device' is 'cpu': mixed precision is for CUDA "
            "GPUs, the CPU trains in float32; drop 'precision' or use 'device: auto'"
        )
    return spec


def _name(top: Fields, key: str, check: Any, *, required: bool = True) -> Any:
    value = top.text(key) if required else top.text(key, None)
    if value is None:
        return None
    try:
        return check(value)
    except InvalidName as exc:
        raise SpecError(f"spec field '{key}': {exc.message}") from exc


def _recipe(fields: Fields, task: str) -> RecipeSpec:
    name = fields.choice("name", sorted(CATALOG))
    info = CATALOG[name]
    if task not in info.tasks:
        raise SpecError(
            f"spec field 'recipe.name': {name!r} does not do {task}; it does {list(info.tasks)}"
        )
    given = fields.section("params", {})
    if given.data and not info.defaults:  # "expected one of []" said less
        raise SpecError(f"spec field 'recipe.params': recipe {name!r} takes no params; remove it")
    params = {key: _param(given, key, default) for key, default in info.defaults.items()}
    given.done()
    fields.done()
    if name == "transformer" and params["d_model"] % params["heads"]:
        raise SpecError("spec field 'recipe.params.d_model' must be a multiple of 'heads'")
    return RecipeSpec(name, params)


def _param(fields: Fields, key: str, default: Any) -> Any:
    if isinstance(default, bool):
        return fields.flag(key, default)
    if isinstance(default, int):
        return fields.integer(key, default, minimum=1)
    if isinstance(default, float):  # float params are rates (dropout) in [0, 1)
        return fields.number(key, default, minimum=0.0, below=1.0)
    value = fields.dims(key)
    return list(value) if value is not None else list(default)


def _dataset(fields: Fields, kind: str) -> DatasetSpec:
    spec = DatasetSpec(
        path=fields.text("path"),
        format=fields.choice("format", FORMATS, "auto"),
        target=fields.text("target", None),
        features=fields.strings("features"),
        exclude=fields.strings("exclude") or (),
        text_column=fields.text("text_column", None),
        input_shape=fields.dims("input_shape"),
    )
    fields.done()
    _check_exclude(spec)
    if kind == "text" and spec.text_column is None:
        raise SpecError("spec field 'dataset.text_column' is required by text recipes")
    if kind != "text" and spec.text_column is not None:
        raise SpecError("spec field 'dataset.text_column' is only for text recipes (transformer)")
    return spec


def _check_exclude(spec: DatasetSpec) -> None:
    """Contradictions within the dataset section; columns the file lacks are found on reading."""
    if spec.path.startswith("generated:"):
        given = [key for key in ("target", "features") if getattr(spec, key)]
        given += ["format"] if spec.format != "auto" else []
        if given:  # read by no generator: the card named a target the model never had
            raise SpecError(
                f"spec field 'dataset.{given[0]}' does not apply to {spec.path}: a generated "
                "data set makes its own features and target; take it out"
            )
    features = spec.features or ()
    repeated = sorted({name for name in features if features.count(name) > 1})
    if repeated:  # the manifest's feature names came out empty
        raise SpecError(f"spec field 'dataset.features' names {repeated[0]!r} twice")
    if spec.target is not None and spec.features and spec.target in spec.features:
        raise SpecError(
            f"spec field 'dataset.features' lists the target {spec.target!r}; a model cannot "
            "read its own label when predicting: take it out of dataset.features"
        )
    field = "spec field 'dataset.exclude'"
    if spec.exclude and spec.path.startswith("generated:"):
        raise SpecError(f"{field} drops columns of a CSV or Parquet table; {spec.path} has none")
    for name in spec.exclude:
        if name in (spec.target, spec.text_column):
            role = "target" if name == spec.target else "text column"
            setting = "dataset.target" if name == spec.target else "dataset.text_column"
            raise SpecError(f"{field} drops the {role} {name!r}; keep it, or change {setting}")
        if spec.features and name in spec.features:
            raise SpecError(
                f"{field} drops {name!r}, which dataset.features lists; "
                "name a column in one of them only"
            )


def _schedule(top: Fields) -> ScheduleSpec:
    raw = top.raw("schedule", "constant")
    if isinstance(raw, str):
        raw = {"name": raw}
    fields = Fields(raw, "schedule")
    spec = ScheduleSpec(
        name=fields.choice("name", SCHEDULES),
        step_size=fields.integer("step_size", 10, minimum=1),
        gamma=fields.number("gamma", 0.5, positive=True),
    )
    fields.done()
    if spec.name != "step":  # read by the step schedule only: a cosine `gamma` did nothing
        given = {"step_size": spec.step_size, "gamma": spec.gamma}
        _only_with(fields, given, ScheduleSpec(), "name: step", f"name: {spec.name}")
    return spec


def _only_with(
    fields: Fields, given: dict[str, Any], defaults: object, needs: str, made: str
) -> None:
    """Refuse a setting of a choice the spec did not make (`needs`; it made `made`): it was
    taken, recorded in the manifest and ignored, as a typo would have been. One written at its
    default (`quantize_for: speed` beside `quantize: false`) changes nothing: taken."""
    for key, value in given.items():
        if key in fields.data and value != getattr(defaults, key):
            raise SpecError(
                f"spec field '{fields.path(key)}' applies only with {fields.where}.{needs} "
                f"(this spec: {made}); take it out or set {fields.where}.{needs}"
            )


def _early_stopping(top: Fields, task: str) -> EarlyStopping | None:
    raw = top.raw("early_stopping", False)
    if raw is False:
        return None
    fields = Fields(raw, "early_stopping")
    spec = EarlyStopping(
        patience=fields.integer("patience", 5, minimum=1),
        # `macro_f1`, as every report names it, watches the metric stored as `f1`
        monitor=stored_key(fields.choice("monitor", MONITORS[task], MONITORS[task][0])),
        min_delta=fields.number("min_delta", 0.0, minimum=0.0),
    )
    fields.done()
    return spec


def _class_weight(top: Fields, task: str) -> str | dict[str, float] | None:
    raw = top.raw("class_weight", None)
    field = "spec field 'class_weight'"
    if raw is None:
        return None
    if task != "classification":
        raise SpecError(f"{field} weighs classes; a {task} job has none: remove it")
    if raw == "balanced":
        return "balanced"
    if not isinstance(raw, dict) or not raw:
        raise SpecError(f"{field} must be 'balanced' or a mapping of class label to weight")
    weights: dict[str, float] = {}
    for label, weight in raw.items():
        if isinstance(label, bool):  # YAML 1.1: `yes: 5` is the key True, named as 'True'
            raise SpecError(
                f"{field}: YAML reads an unquoted yes, no, on, off, true or false as a boolean "
                f"(here {str(label).lower()}); quote the class as the data writes it "
                '("yes": 5, not yes: 5)'
            )
        ok = isinstance(weight, int | float) and not isinstance(weight, bool) and weight > 0
        if not ok or weight == float("inf"):
            raise SpecError(f"{field}: the weight of class {label!r} must be a positive number")
        weights[str(label)] = float(weight)
    return weights


def _export(fields: Fields) -> ExportSpec:
    spec = ExportSpec(
        opset=fields.integer("opset", 18, minimum=13),
        exporter=fields.choice("exporter", EXPORTERS, "dynamo"),
        parity_tolerance=fields.number("parity_tolerance", 1e-4, positive=True),
        parity_rows=fields.integer("parity_rows", 256, minimum=1),
        quantize=fields.flag("quantize", False),
        max_metric_drop=fields.number("max_metric_drop", 1.0, minimum=0.0),
        quantize_for=fields.choice("quantize_for", ("speed", "size"), "speed"),
        importance_seconds=fields.number("importance_seconds", 20.0, minimum=0.0),
    )
    fields.done()
    if not spec.quantize:  # the int8 gate's settings: without int8 nothing reads them
        given = {"max_metric_drop": spec.max_metric_drop, "quantize_for": spec.quantize_for}
        _only_with(fields, given, ExportSpec(), "quantize: true", "no int8")
    highest = max_opset(spec.opset, spec.exporter)
    if highest is not None and spec.opset > highest:
        raise SpecError(
            f"spec field 'export.opset' is {spec.opset}; the {spec.exporter} exporter here "
            f"writes opsets 13 to {highest}: set one of those"
        )
    return spec


def _publish_alias(fields: Fields) -> str | None:
    alias = fields.text("alias", None)
    fields.done()
    if alias is None:
        return None
    try:
        return names.alias_name(alias)
    except InvalidName as exc:
        raise SpecError(f"spec field 'publish.alias': {exc.message}") from exc
