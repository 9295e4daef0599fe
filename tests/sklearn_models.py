"""Real scikit-learn classifiers trained on sklearn's bundled wine data, exported by skl2onnx.

Exports use skl2onnx's default options (a ZipMap on the probabilities), or the one option
users set most, `zipmap: False`, so tests see what users publish. No downloads: `load_wine`
ships inside scikit-learn.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from skl2onnx import to_onnx
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

CLASS_NAMES = ("class_0", "class_1", "class_2")  # load_wine's target_names
FEATURES = 13


def one_blas_thread() -> threadpool_limits:
    """Fit on one BLAS thread: under two pytest workers on CI's 2 cores, an MLP of 256x128 fit
    with a thread a core took ~12 s (the threads contend with the other worker) against ~1.2
    CPU-s alone on one. What a test fits is not about BLAS's threads."""
    return threadpool_limits(limits=1, user_api="blas")


ESTIMATORS: dict[str, Callable[[], Any]] = {
    "logistic": lambda: LogisticRegression(max_iter=10000),
    "forest": lambda: RandomForestClassifier(n_estimators=50, random_state=0),
    "pipeline": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
}


@dataclass(frozen=True)
class Exported:
    """An ONNX file, the fitted estimator it came from and what that estimator predicts."""

    path: Path
    estimator: Any
    x_test: np.ndarray  # float32, as the ONNX input takes it
    expected: list[str]  # estimator.predict(x_test), as the API spells labels

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.estimator.classes_]


def wine_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, x_test, y_train, y_test): 70/30, stratified, always the same rows."""
    x, y = load_wine(return_X_y=True)
    parts = train_test_split(x.astype(np.float32), y, test_size=0.3, random_state=0, stratify=y)
    return tuple(parts)  # type: ignore[return-value]


def export(
    kind: str, workdir: Path, *, zipmap: bool = True, string_classes: bool = False
) -> Exported:
    """Fit ESTIMATORS[kind] on wine (classes 0, 1, 2 or class_0, ...) and export it with skl2onnx."""
    x_train, x_test, _, _ = wine_split()
    estimator = copy.deepcopy(_fitted(kind, string_classes))  # a test may change its own
    options = None if zipmap else {id(estimator): {"zipmap": False}}
    proto = to_onnx(estimator, x_train[:1], options=options)
    suffix = f"{kind}-{'str' if string_classes else 'int'}-{'zipmap' if zipmap else 'tensor'}"
    path = workdir / f"wine-{suffix}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(proto.SerializeToString())
    expected = [str(label) for label in estimator.predict(x_test)]
    return Exported(path, estimator, x_test, expected)


@functools.cache
def _fitted(kind: str, string_classes: bool) -> Any:
    """ESTIMATORS[kind] fitted on wine, once per session: the fits are deterministic, and the
    logistic one (lbfgs on unscaled features, ~600 iterations) takes 2-6 s of CPU here."""
    x_train, _, y_train, _ = wine_split()
    target = np.asarray(CLASS_NAMES)[y_train] if string_classes else y_train
    return ESTIMATORS[kind]().fit(x_train, target)


REGIONS = ("north", "south", "east")  # the string column of `region_pipeline`'s data


def region_frame(rows: int = 60) -> Any:
    """Three wine features (float32) and a `region` string column, as a pandas DataFrame."""
    import pandas as pd

    x, _ = load_wine(return_X_y=True)
    frame = pd.DataFrame(x[:rows, :3].astype(np.float32), columns=["alcohol", "malic", "ash"])
    frame["region"] = np.asarray(REGIONS, dtype=object)[np.arange(len(frame)) % len(REGIONS)]
    return frame


@functools.cache
def region_pipeline(handle_unknown: str = "error") -> tuple[Any, bytes]:
    """(fitted pipeline, its skl2onnx export with default options): scaled numbers and a
    one-hot `region` (OneHotEncoder's default handle_unknown='error', or as given: 'ignore'
    encodes an unseen category as zeros) into a logistic regression; one ONNX input per
    column. Fitted once per session (~50 ms)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = region_frame(len(load_wine().target))
    _, y = load_wine(return_X_y=True)
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), ["alcohol", "malic", "ash"]),
            ("cat", OneHotEncoder(handle_unknown=handle_unknown), ["region"]),
        ]
    )
    pipeline = Pipeline([("prep", columns), ("clf", LogisticRegression(max_iter=1000))])
    pipeline.fit(frame, y)
    return pipeline, to_onnx(pipeline, frame[:1]).SerializeToString()
