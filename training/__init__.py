"""Offline training jobs: spec -> PyTorch training -> ONNX export with parity check -> publish.

The only package that imports torch. See training/README.md for the spec reference.
"""
