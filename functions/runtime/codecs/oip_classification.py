"""Triton's classification extension of the Open Inference Protocol.

An output requested with `"parameters": {"classification": N}` (tritonclient's
`InferRequestedOutput(name, class_count=N)`) answers, instead of its scores, a BYTES tensor of
shape [batch, k]: each row's k best classes, best first, as "<score>:<index>[:<label>]" strings,
where k is N or the number of classes when there are fewer (Triton answers so too). The score is
printed as Triton's C++ `std::to_string` prints a float ("%f"); the label is the manifest's. A
row of scores that does not fit the manifest's labels is refused as predict refuses it
(`class_names`): ranked, it answered classes the model does not have, its labels dropped.

Only a classifier's class scores (the manifest's `postprocessing.scores_output`, a ZipMap's
table included) can be ranked: asking it of another output is a 400 naming the one that can.
The scores ranked are the ones `POST /models/{name}/predict` reports: the output's own values
when it holds probabilities (skl2onnx, a final softmax: exactly what Triton prints), the
manifest's activation applied to logits (the same order as Triton's, readable as probabilities),
and a binary classifier's one score a row as the two classes' scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from functions.runtime.codecs.class_names import class_names
from functions.runtime.codecs.class_scores import class_scores
from functions.runtime.codecs.ties import own_labels, ranked_first, tie_winners
from functions.runtime.codecs.wide_integers import as_typed, written_as_integer
from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelManifest

# Up to this many answered cells Python's sort beats numpy's per-call overhead.
SMALL = 256
EXTENSION = "classification"  # the output parameter's name, and the extension's in `GET /v2`

# Requested output name -> class count, in the order asked; () when none asks.
Requested = tuple[tuple[str, int], ...]
# Requested output name -> why its class count was refused. Said only once the name is known to
# be the model's: a misspelled output answers the unknown-output 422 first, not a count's 400
# (fixing the count, the caller only then learnt the name was wrong).
Refused = tuple[tuple[str, str], ...]


def class_count(value: object, output: str, head: bytes = b"") -> int:
    """The `classification` parameter of one requested output: an integer of at least 1. One
    beyond 64 bits (orjson's float for it) asks for every class, as 10**18 does; `head`, the
    request's JSON, quotes a refused one as it was sent."""
    if written_as_integer(value, head) and isinstance(value, float) and value > 0:
        return int(value)  # 1e19 and 1.5e300 are floats the caller wrote: refused below
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest(
            f"output '{output}' parameter 'classification' (class_count) must be an integer "
            f"of at least 1: the number of best classes to answer a row; "
            f"got {as_typed(value, head):.40}"
        )
    return value


def check(manifest: ModelManifest, requested: Requested, refused: Refused = ()) -> None:
    """A 400, before the model runs, when an output asked to classify holds no class scores or
    was given a count that is none. Names that are no output of the model are left to the
    unknown-output answer."""
    known = {spec.name for spec in manifest.outputs}
    for name, message in refused:
        if name in known:
            raise BadRequest(message)
    post = manifest.postprocessing
    ref = f"{manifest.name}:{manifest.version}"
    for name, _ in requested:
        if name not in known or (post is not None and name == post.scores_output):
            continue
        if post is None:
            raise BadRequest(
                f"output '{name}' asks for the classification extension (class_count), which "
                f"ranks a classifier's class scores; model {ref} (task {manifest.task!r}) has "
                "none: request the output without class_count"
            )
        raise BadRequest(
            f"output '{name}' holds no class scores to rank (classification extension, "
            f"class_count); model {ref} has them in output '{post.scores_output}': ask "
            "class_count of that one"
        )


def classify(
    manifest: ModelManifest, outputs: Mapping[str, np.ndarray], requested: Requested
) -> dict[str, np.ndarray]:
    """`outputs` with each output asked to classify replaced by its top-k class strings."""
    answered = dict(outputs)
    own = own_labels(manifest, outputs)  # settles exact ties, when it was asked for too
    for name, count in requested:
        answered[name] = top_classes(manifest, outputs[name], count, own)
    return answered


def top_classes(
    manifest: ModelManifest, raw: np.ndarray, count: int, own: Any = None
) -> np.ndarray:
    """BYTES [rows, min(count, classes)] of "score:index[:label]", each row best first; of
    exactly tied best scores, the class the model's own label output `own` names first."""
    post = manifest.postprocessing
    assert post is not None  # check() refused the request otherwise
    scores = class_scores(manifest, {post.scores_output: raw}) or []  # one list a row
    classes = len(scores[0]) if scores else 0
    # Labels that do not fit the scores are the publisher's error, as predict answers it: the
    # "score:index" of a model without labels stays so (Triton's), not "score:index:index".
    labels = class_names(manifest, classes) if manifest.labels and scores else ()
    k = min(count, classes)
    order = _ranked(scores, k)
    for r, c in tie_winners(scores, class_names(manifest, classes), own, raw).items():
        order[r] = ranked_first(scores[r], c, k)
    ranked = zip(scores, order, strict=True)
    if labels:
        cells = [f"{row[i]:f}:{i}:{labels[i]}" for row, best in ranked for i in best]
    else:
        cells = [f"{row[i]:f}:{i}" for row, best in ranked for i in best]
    return np.array(cells, dtype=object).reshape(len(scores), k)


def _ranked(scores: list[list[float]], k: int) -> list[list[int]]:
    """Each row's `k` best column indices, best first; of equal scores the lower index first
    (both sorts are stable), so the same scores always answer the same strings."""
    if not scores or len(scores) * len(scores[0]) <= SMALL:  # Python: a third of numpy's cost
        return [sorted(range(len(row)), key=row.__getitem__, reverse=True)[:k] for row in scores]
    best = np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :k]
    return best.tolist()  # type: ignore[no-any-return]
