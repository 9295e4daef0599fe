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
    """The torch device plus the CUDA-only speed-ups: mixed precision and pinned host memory.

    `amp_dtype`: what autocast computes in: bfloat16 where the GPU has it (Ampere and newer: no
    GradScaler, so no host sync each step), else float16 with a GradScaler.
    """

    device: torch.device
    amp: bool
    pin_memory: bool
    description: str
    amp_dtype: torch.dtype = torch.float16


# Below this many parameters a CPU step is too short to split across threads: extra threads
# only add synchronisation, and on a busy machine they spin against other processes (measured
# 40x slower for the digits MLP on a loaded 2-core box).
SMALL_MODEL_PARAMS = 2_000_000


# Mixed precision pays once a step's matrix work outweighs the casts it adds. bench/train_gpu.py on
# an H200 (2026-12-04), batch 1024, two hidden layers: fp32 was faster up to 4.7 M parameters
# (~29 GFLOP a step: bf16 0.75-0.83x), bf16 faster from 17.9 M (~110 GFLOP: 1.26x; 69 M: 3.9x).
AMP_MIN_STEP_FLOPS = 50e9


def wants_amp(precision: str, parameters: int, batch_size: int) -> bool:
    """Whether a CUDA job trains under autocast: `amp`, `fp32`, or for `auto` whether a step's
    estimated work (6 x parameters x batch: forward and backward of dense layers) reaches
    AMP_MIN_STEP_FLOPS. Layers that reuse their weights (convolutions, recurrences, attention)
    do more than the estimate says, so auto errs towards float32 for them: slower at worst."""
    if precision != "auto":
        return precision == "amp"
    return 6 * parameters * batch_size >= AMP_MIN_STEP_FLOPS


def cpu_threads(requested: int, parameters: int) -> int:
    """Threads for CPU training: `requested` when > 0, else 1 for small models, else all cores."""
    if requested > 0:
        return requested
    if parameters < SMALL_MODEL_PARAMS:
        return 1
    return os.cpu_count() or 1


def resolve_device(requested: str, threads: int = 0, amp: bool = True) -> DeviceSetup:
    """`auto` picks CUDA when torch sees a GPU; `cuda` without one is a SpecError.

    `threads` > 0 sets torch's CPU thread count (see `cpu_threads`); `amp`: mixed precision on
    CUDA (see `wants_amp`), never on the CPU.
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
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    text = ("bf16" if dtype == torch.bfloat16 else "fp16") if amp else "fp32"
    return DeviceSetup(torch.device("cuda"), amp, True, f"cuda ({name}, {text})", dtype)


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether a data set of `nbytes` may live on `device` for a whole job: a quarter of its
    free memory at most, leaving the rest to the model, its activations and the optimizer."""
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= free // 4


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; returns the generator that orders training batches."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
