"""Data sets generated deterministically at load time (`dataset.path: generated:<name>`).

They need no download and no file in the repo; the same name always yields the same arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from training.errors import DataError

WAVE_LABELS = ("sine", "square", "sawtooth")


def waveforms(rows: int = 600, length: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sine, square and sawtooth waves of random frequency, phase and amplitude.

    Returns x float32 [rows, length, 1] and y (the wave's name) as a string array.
    """
    rng = np.random.default_rng(seed)
    kinds = np.arange(rows) % len(WAVE_LABELS)
    t = np.arange(length, dtype=np.float64)[None, :]
    freq = rng.uniform(0.04, 0.12, size=(rows, 1))
    phase = rng.uniform(0, 1, size=(rows, 1))
    amplitude = rng.uniform(0.5, 2.0, size=(rows, 1))
    cycle = (t * freq + phase) % 1.0
    waves = np.stack(
        [np.sin(2 * np.pi * cycle), np.where(cycle < 0.5, 1.0, -1.0), 2 * cycle - 1], axis=0
    )
    x = waves[kinds, np.arange(rows)] * amplitude + rng.normal(0, 0.3, size=(rows, length))
    y = np.array(WAVE_LABELS)[kinds]
    return x[..., None].astype(np.float32), y


def ramp_trend(rows: int = 500, length: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy ramps; the target is the slope (a sequence regression set)."""
    rng = np.random.default_rng(seed)
    slope = rng.uniform(-1.0, 1.0, size=rows)
    t = np.linspace(0, 1, length)[None, :]
    x = slope[:, None] * t * 4 + rng.normal(0, 0.2, size=(rows, length))
    return x[..., None].astype(np.float32), slope.astype(np.float32)


GENERATORS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "waveforms": waveforms,
    "ramp-trend": ramp_trend,
}


def generate(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The generated set `name` as (x, y)."""
    if name not in GENERATORS:
        raise DataError(f"no generated data set {name!r}; choose one of {sorted(GENERATORS)}")
    return GENERATORS[name]()
