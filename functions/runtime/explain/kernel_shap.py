"""Kernel SHAP (Lundberg and Lee, 2017) in numpy: coalitions, masked rows, constrained regression.

A coalition switches each of M feature groups on (the explained row's values) or off (a
background row's values). The model's mean output over the background for every coalition,
weighted by the Shapley kernel, is fitted by weighted least squares with the constraint that the
attributions sum to f(x) - E[f(background)]. With every coalition enumerated (2^M - 2 of them,
small M) the result is the exact Shapley value of that game; otherwise the budget goes first to
whole subset sizes, smallest and largest first (they carry most of the kernel's weight), and the
rest is sampled, each draw paired with its complement. This is the estimator of `shap`'s
KernelExplainer without its L1 feature selection, so the two agree where both enumerate.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Model rows scored in one onnxruntime call: its arena keeps what the largest call needed
# (65,536 digits-MLP rows: ~400 MB held after one explain at 100,000 samples); calls of 512 to
# 8,192 rows cost the same time a row as one call of 21,700.
CHUNK_ROWS = 8192
# Masked rows are built at most this many bytes at a time (a 64-feature row's all fit in one go).
MASKED_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Coalitions:
    """Masks [S, M] (True: the group takes the explained row's values) and kernel weights [S]."""

    masks: np.ndarray
    weights: np.ndarray
    exact: bool  # every coalition enumerated: the values are exact Shapley values


def default_samples(groups: int) -> int:
    """The coalition budget when a caller names none (as `shap` picks it)."""
    return 2 * groups + 2048


def minimum_samples(groups: int) -> int:
    """The fewest coalitions that pin the attributions of `groups` groups: two a group (all
    2^M - 2 for M = 2). A coalition and its complement give the constrained fit one equation
    between them (their rows are each other's negatives), so S coalitions fit at most S / 2 of
    the M - 1 unknowns: 400 coalitions of 300 features gave attributions 4x the largest true
    one, from singular normal equations."""
    return 2 * groups if groups > 2 else max(0, 2**groups - 2)


def coalitions(groups: int, samples: int, rng: np.random.Generator) -> Coalitions:
    """At most `samples` coalitions of `groups` feature groups, with their kernel weights."""
    m = groups
    if m < 2:
        raise ValueError("Kernel SHAP needs at least two varying feature groups")
    samples = min(samples, 2**m - 2) if m <= 30 else samples
    sizes = math.ceil((m - 1) / 2)  # subset sizes s; size m - s comes as the complement
    paired = (m - 1) // 2  # sizes whose complement is a different size
    size_weight = np.array([(m - 1) / (s * (m - s)) for s in range(1, sizes + 1)])
    size_weight[:paired] *= 2
    size_weight /= size_weight.sum()
    masks, weights, full = _enumerate(m, samples, size_weight, paired)
    left = samples - len(masks)
    if full < sizes and left > 0:
        drawn, counts = _sample(m, left, full, size_weight, paired, rng)
        masks = np.concatenate([masks, drawn])
        weights = np.concatenate([weights, counts * size_weight[full:].sum() / counts.sum()])
    return Coalitions(masks, weights, exact=full == sizes)


def _enumerate(
    m: int, samples: int, size_weight: np.ndarray, paired: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Every coalition of each subset size the budget covers whole, smallest sizes first:
    (masks, kernel weights, how many sizes were enumerated)."""
    masks: list[np.ndarray] = []
    weights: list[float] = []
    left, share, full = samples, size_weight.copy(), 0
    for s in range(1, len(size_weight) + 1):
        twice = 2 if s <= paired else 1  # the size's complements are another size
        count = math.comb(m, s) * twice
        if left * share[s - 1] / count < 1.0 - 1e-8:
            break
        full, left = full + 1, left - count
        if share[s - 1] < 1.0:
            share /= 1.0 - share[s - 1]
        weight = size_weight[s - 1] / math.comb(m, s) / twice
        for chosen in itertools.combinations(range(m), s):
            mask = np.zeros(m, dtype=bool)
            mask[list(chosen)] = True
            masks += [mask, ~mask] if twice == 2 else [mask]
            weights += [weight] * twice
    return np.array(masks, dtype=bool).reshape(-1, m), np.array(weights), full


def _sample(
    m: int, budget: int, full: int, size_weight: np.ndarray, paired: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`budget` distinct coalitions of the sizes not enumerated; a repeat adds to its weight."""
    chances = size_weight.copy()
    chances[:paired] /= 2  # each draw below brings its complement too
    chances = chances[full:] / chances[full:].sum()
    # Draws until `budget` distinct coalitions have come up; one draw per coalition asked is
    # almost always plenty (most bring their complement), four is shap's bound.
    for draws in (budget, 4 * budget):
        sequence = _draw(m, draws, chances, full, paired, rng)
        _, first, inverse = np.unique(_keys(sequence), return_index=True, return_inverse=True)
        if len(first) > budget:
            break
    inverse = inverse.reshape(-1)
    # Stop where the (budget + 1)-th distinct coalition would first appear.
    firsts = np.sort(first)
    cutoff = int(firsts[budget]) if len(firsts) > budget else len(sequence)
    counts = np.bincount(inverse[:cutoff], minlength=len(first))
    chosen = np.sort(first[first < cutoff])
    return sequence[chosen], counts[inverse[chosen]].astype(np.float64)


def _draw(
    m: int, draws: int, chances: np.ndarray, full: int, paired: int, rng: np.random.Generator
) -> np.ndarray:
    """Random coalitions, each followed by its complement when that is of another size."""
    sizes = rng.choice(len(chances), size=draws, p=chances) + full + 1
    # `size` random positions per draw: the `size` smallest of m random keys (a sort and one
    # comparison: a third of what rng.permuted or an argsort take).
    keys = rng.random((draws, m))  # float64: a tie at the k-th key is next to impossible
    kth = np.sort(keys, axis=1)[np.arange(draws), sizes - 1]
    drawn = keys <= kth[:, None]
    with_pair = np.repeat(drawn, 2, axis=0)
    with_pair[1::2] = ~drawn
    keep = np.ones(2 * draws, dtype=bool)
    keep[1::2] = sizes <= paired
    return with_pair[keep]


def _keys(masks: np.ndarray) -> np.ndarray:
    """One comparable scalar per mask row: 64 groups or fewer fit a uint64, more a byte string."""
    packed = np.packbits(masks, axis=1)
    width = packed.shape[1]
    if width <= 8:
        padded = np.zeros((len(packed), 8), dtype=np.uint8)
        padded[:, :width] = packed
        return padded.view(np.uint64).reshape(-1)
    return np.ascontiguousarray(packed).view(np.dtype((np.void, width))).reshape(-1)


def masked_rows(
    x: np.ndarray, background: np.ndarray, masks: np.ndarray, groups: list[np.ndarray]
) -> np.ndarray:
    """[S * B, F]: for each coalition, every background row with the chosen groups from `x`."""
    feature_on = np.zeros((len(masks), x.shape[0]), dtype=bool)
    for g, columns in enumerate(groups):
        feature_on[:, columns] = masks[:, g : g + 1]
    rows = np.where(feature_on[:, None, :], x[None, None, :], background[None, :, :])
    return rows.reshape(-1, x.shape[0])


def solve(
    coalition: Coalitions, values: np.ndarray, fx: np.ndarray, base: np.ndarray
) -> tuple[np.ndarray, bool]:
    """Attributions [M, D] from the coalition values [S, D], with sum = fx - base exactly, and
    whether the coalitions pinned every one (else the least-squares fit of least norm: groups
    the coalitions never part, always drawn on the same side, share their total alike)."""
    z = coalition.masks.astype(np.float64)
    total = fx - base  # [D]
    y = values - base[None, :] - z[:, -1:] * total[None, :]
    design = z[:, :-1] - z[:, -1:]
    weighted = coalition.weights[:, None] * design
    head: np.ndarray | None = None
    # A coalition and its complement are one equation (rows of opposite sign): fewer such
    # pairs than unknowns have no unique fit, however many coalitions that is.
    if _pairs(coalition.masks) >= design.shape[1]:
        head = _normal_equations(design, weighted, y)
    determined = head is not None
    if head is None:  # too few coalitions to pin every group: the minimum-norm least squares
        # (solving the singular normal equations gave +-0.7 in probability units to random
        # features of a 2,000-feature model explained with 1,024 coalitions, and 55 for a
        # largest true attribution of 14 to a 300-feature one explained with 400)
        root = np.sqrt(coalition.weights)[:, None]
        head = np.linalg.lstsq(root * design, root * y, rcond=None)[0]
    last = total[None, :] - head.sum(axis=0, keepdims=True)
    return np.vstack([head, last]), determined


# A group whose design column is this close to the span of the ones before it (the squared
# sine of the angle between them: a Cholesky pivot over the column's own square) has no fit
# of its own; 299 pairs for 299 unknowns gave 2.7e-11 (rank 298), 300 pairs 1.8e-4.
MIN_PIVOT = 1e-8


def _pairs(masks: np.ndarray) -> int:
    """Distinct coalitions up to complement: each mask taken with its first group off."""
    return len(np.unique(_keys(masks ^ masks[:, :1])))


def _normal_equations(design: np.ndarray, weighted: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """The weighted least-squares fit by its normal equations; None where they are singular
    or nearly so (np.linalg.solve does not always raise there: it answers huge values)."""
    gram = _gram(design, weighted)
    try:
        pivots = np.diag(np.linalg.cholesky(gram)) ** 2
    except np.linalg.LinAlgError:
        return None
    if (pivots < MIN_PIVOT * np.diag(gram)).any():
        return None
    return np.asarray(np.linalg.solve(gram, _gram(weighted, y)))


# Above this many multiply-adds a product goes to BLAS: einsum is one unblocked thread
# (10 s for 6,048 coalitions of 2,000 features, against 0.9 s through BLAS).
BLAS_FROM = 200_000_000


def _gram(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """left.T @ right. einsum for small products: these are small for most models, and BLAS's
    threads, woken for them on a busy machine (or a Lambda's single vCPU), cost up to 30 ms
    where one thread takes 3."""
    if left.shape[0] * left.shape[1] * right.shape[1] < BLAS_FROM:
        return np.asarray(np.einsum("si,sj->ij", left, right))
    return np.asarray(left.T @ right)


# What the numpy work around the model costs (not the model's own time), measured on the
# 2-core dev machine (python -m bench.explain_latency's machine) and taken about 1.5x the worst
# seen, so an estimate errs high: nanoseconds per coalition x group drawn, per masked-row value
# built (6 at 2,000 features, where the matrix outgrows the caches; 2 below), and per multiply-
# add of the solve (einsum 0.4; BLAS 0.04, 0.1 for the least-squares fallback).
NS_PER_DRAWN = 25.0
NS_PER_MASKED_VALUE = 6.0
NS_PER_SOLVE_EINSUM, NS_PER_SOLVE_BLAS, NS_PER_SOLVE_LSTSQ = 0.6, 0.06, 0.15


def numpy_seconds(coalitions: int, groups: int, width: int, background: int, outputs: int) -> float:
    """Estimated seconds of one row's work besides the model: drawing `coalitions` over
    `groups`, building their masked rows (`width` values each, per background row) and the
    weighted least squares for `outputs` values."""
    macs = coalitions * groups * (groups + outputs)
    if macs < BLAS_FROM:
        per_mac = NS_PER_SOLVE_EINSUM
    else:
        per_mac = NS_PER_SOLVE_BLAS if coalitions >= minimum_samples(groups) else NS_PER_SOLVE_LSTSQ
    nanoseconds = (
        NS_PER_DRAWN * coalitions * groups
        + NS_PER_MASKED_VALUE * coalitions * background * width
        + per_mac * macs
    )
    return nanoseconds * 1e-9


Model = Callable[[np.ndarray], np.ndarray]  # [N, F] float rows -> [N, D] outputs


@dataclass(frozen=True)
class RowAttribution:
    """One explained row: attributions [F-groups, D], base value [D] and prediction [D]."""

    values: np.ndarray
    base: np.ndarray
    prediction: np.ndarray
    coalitions: int
    exact: bool
    determined: bool = True  # the coalitions pinned every attribution (`solve`)


class Overrun(Exception):
    """An explanation stopped at its deadline, `done` of its rows explained."""

    def __init__(self, done: int) -> None:
        super().__init__(f"stopped at its deadline after {done} row(s)")
        self.done = done


def check_deadline(deadline: float | None, done: int = 0) -> None:
    """Overrun once time.monotonic() is past `deadline` (None: no deadline)."""
    if deadline is not None and time.monotonic() > deadline:
        raise Overrun(done)


def explain_rows(
    model: Model,
    rows: np.ndarray,
    background: np.ndarray,
    weights: np.ndarray,
    groups: list[np.ndarray],
    samples: int | None,
    seed: int = 0,
    deadline: float | None = None,
) -> list[RowAttribution]:
    """Kernel SHAP for each of `rows` [N, F]: one model call for the predictions, then one
    per row for its masked rows (a row's are a few MB; all rows' at once could be GBs).
    `deadline` (time.monotonic()): Overrun, naming the rows done, when a row after the first,
    or a slice of masked rows after a row's first, would start past it (each request makes
    headway: a slowed one-row request is answered, as its estimate allowed)."""
    base = weights @ model(background)  # E[f] over the background, [D]
    predictions = _score(model, rows)
    # Each row draws its coalitions from a generator of its own, seeded alike: a row's answer is
    # a function of the row, never of the rows sent before it (a shared one moved a row's
    # attributions by up to 10% of the largest, and its ranking, with its batch and position).
    explained: list[RowAttribution] = []
    for x, fx in zip(rows, predictions, strict=True):
        if explained:
            check_deadline(deadline, len(explained))
        rng = np.random.default_rng(seed)
        try:
            row = _explain_row(
                model, x, fx, base, background, weights, groups, samples, rng, deadline
            )
        except Overrun:
            raise Overrun(len(explained)) from None
        explained.append(row)
    return explained


def _explain_row(
    model: Model,
    x: np.ndarray,
    fx: np.ndarray,
    base: np.ndarray,
    background: np.ndarray,
    weights: np.ndarray,
    groups: list[np.ndarray],
    samples: int | None,
    rng: np.random.Generator,
    deadline: float | None = None,
) -> RowAttribution:
    values = np.zeros((len(groups), fx.shape[0]))
    # Equal, not close: a feature 1e-5 of its size off every background row (an epoch time
    # 10,000 s off) still moves the model, and counted as equal it got 0, its share another's.
    same = ((background == x[None, :]) | (np.isnan(background) & np.isnan(x)[None, :])).all(axis=0)
    varying = [g for g, cols in enumerate(groups) if not same[cols].all()]
    if len(varying) < 2:
        if varying:  # one group varies: it carries the whole difference
            values[varying[0]] = fx - base
        return RowAttribution(values, base, fx, 0, True)
    plan = coalitions(len(varying), samples or default_samples(len(varying)), rng)
    chosen = [groups[g] for g in varying]
    # Built and scored a slice of coalitions at a time: all of a wide row's masked rows at once
    # are coalitions x background x features values (6,048 x 10 x 2,000 floats: ~0.5 GB).
    # Each slice's outputs are averaged over the background at once: kept whole they were
    # coalitions x background x outputs floats (100,000 coalitions of a 10-class model: 80 MB).
    step = max(1, MASKED_BYTES // max(1, len(background) * x.shape[0] * x.itemsize))
    slices = []
    for start in range(0, len(plan.masks), step):
        if start:
            check_deadline(deadline)
        masks = plan.masks[start : start + step]
        scored = _score(model, masked_rows(x, background, masks, chosen))
        slices.append(
            np.einsum("sbd,b->sd", scored.reshape(len(masks), len(background), -1), weights)
        )
    coalition_values = np.concatenate(slices)
    values[varying], determined = solve(plan, coalition_values, fx, base)
    return RowAttribution(values, base, fx, len(plan.masks), plan.exact, determined)


def _score(model: Model, rows: np.ndarray) -> np.ndarray:
    if len(rows) <= CHUNK_ROWS:
        return np.asarray(model(rows), dtype=np.float64)
    return np.concatenate(
        [
            np.asarray(model(rows[i : i + CHUNK_ROWS]), dtype=np.float64)
            for i in range(0, len(rows), CHUNK_ROWS)
        ]
    )


Game = Callable[[np.ndarray], np.ndarray]  # keep masks [S, M] (bool) -> values [S, D]


def explain_game(game: Game, players: int, samples: int | None, seed: int = 0) -> RowAttribution:
    """Kernel SHAP of a game over `players` (a text's tokens, each absent in its own way): the
    empty coalition (the base value), the full one (the prediction) and every coalition go to
    `game` in one call (cut at CHUNK_ROWS), then the same constrained fit as `explain_rows`."""
    ends = np.array([[False] * players, [True] * players], dtype=bool)
    if players < 2:  # one token carries the whole difference (none: nothing to attribute)
        base, fx = _score(game, ends)
        return RowAttribution(np.repeat((fx - base)[None, :], players, axis=0), base, fx, 0, True)
    plan = coalitions(players, samples or default_samples(players), np.random.default_rng(seed))
    values = _score(game, np.concatenate([ends, plan.masks]))
    base, fx = values[0], values[1]
    fitted, determined = solve(plan, values[2:], fx, base)
    return RowAttribution(fitted, base, fx, len(plan.masks), plan.exact, determined)
