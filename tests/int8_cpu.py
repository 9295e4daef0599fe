"""Whether onnxruntime's int8 arithmetic is exact on this CPU.

`aiaas publish --quantize int8` writes a dynamically quantized variant (uint8 activations, int8
weights). On x86 CPUs without VNNI (AVX2 only: the AMD EPYC of some CI machines) onnxruntime's
u8 x s8 kernels add pairs of products in saturating 16-bit lanes, so a variant loses accuracy
there that it does not lose on a VNNI CPU or on arm64 (Lambda's Graviton): onnxruntime's own
docs advise `reduce_range` for such machines. The same variant measured 4 points of accuracy
lower on such a CPU, which publish's --data gate then refuses, as it should. Tests whose
expectation is a sound int8 variant hold it only where the arithmetic is exact, and say so."""

from __future__ import annotations

import platform
from pathlib import Path


def _flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


SATURATES = platform.machine().lower() in ("x86_64", "amd64") and not (
    _flags() & {"avx512_vnni", "avx_vnni", "amx_int8"}
)
REASON = (
    "int8 on an x86 CPU without VNNI saturates (tests/int8_cpu.py): the variant is not sound here"
)
