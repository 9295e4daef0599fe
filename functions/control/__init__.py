"""The control plane: models, versions, aliases and batch jobs over HTTP (FastAPI + Mangum)."""
