"""Choosing where a job trains: CUDA when asked for or available (`auto`), else the CPU."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from training.errors import SpecError


@dataclass(frozen=True)
class DeviceSetup:
    """The torch device plus the CUDA-only speed-ups: mixed precision and pinned host memory."""

    device: torch.device
    amp: bool
    pin_memory: bool
    description: str


# Below this many parameters a CPU step is too short to split across threads: extra threads
# only add synchronisation, and on a busy machine they spin against other processes (measured
# 40x slower for the digits MLP on a loaded 2-core box).
SMALL_MODEL_PARAMS = 2_000_000


def cpu_threads(requested: int, parameters: int) -> int:
    """Threads for CPU training: `requested` when > 0, else 1 for small models, else all cores."""
    if requested > 0:
        return requested
    if parameters < SMALL_MODEL_PARAMS:
        return 1
    return os.cpu_count() or 1


def resolve_device(requested: str, threads: int = 0) -> DeviceSetup:
    """`auto` picks CUDA when torch sees a GPU; `cuda` without one is a SpecError.

    `threads` > 0 sets torch's CPU thread count (see `cpu_threads`).
    """
    if threads > 0:
        torch.set_num_threads(threads)
    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise SpecError(
            "spec field 'device' is 'cuda' but torch sees no CUDA GPU "
            f"(torch {torch.__version__}); use 'auto' or 'cpu'"
        )
    if requested == "cpu" or not available:
        count = torch.get_num_threads()
        threads_text = f"{count} thread{'s' if count != 1 else ''}"
        return DeviceSetup(torch.device("cpu"), False, False, f"cpu ({threads_text})")
    name = torch.cuda.get_device_name(0)
    return DeviceSetup(torch.device("cuda"), True, True, f"cuda ({name})")


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; returns the generator that orders training batches."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
