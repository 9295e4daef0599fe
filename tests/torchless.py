"""Torch's absence: a prelude for subprocess scripts that must run as if torch were not
installed, and the skip of a test that trains where it is not (a torch-free install)."""

import pytest

TORCH_MISSING = "training needs torch: pip install 'aiaas[training]' (see docs/install.md)"


def torch_or_skip() -> None:
    """Skip the calling test (or the tests of the calling fixture) where torch is not installed."""
    pytest.importorskip("torch", reason=TORCH_MISSING)


NO_TORCH = """
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            # What an install without torch raises (pytest.importorskip skips on this one only).
            raise ModuleNotFoundError(f"torch is not installed here ({name})", name=name)
        return None

sys.meta_path.insert(0, NoTorch())
"""
