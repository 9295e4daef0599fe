"""The serving core: artifact contract, object stores, registry and the ONNX runtime.

Nothing here knows about HTTP, Lambda event shapes or torch.
"""
