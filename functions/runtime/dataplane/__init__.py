"""The transport-free data plane: what a server or a model answers, with no HTTP or event shape.

`server` (liveness, readiness, server metadata) imports neither onnxruntime nor Powertools, so
the health function stays light; `model` answers predict / infer / metadata / readiness for one
served model. Adapters (the HTTP API v2 event adapter in `functions/predict/`) turn requests
into these calls and their results into responses.
"""
