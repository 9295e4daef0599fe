"""The per-model predict function: API Gateway HTTP API (payload v2.0) in, predictions out."""
