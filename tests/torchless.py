"""A prelude for subprocess scripts that must run as if torch were not installed."""

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
