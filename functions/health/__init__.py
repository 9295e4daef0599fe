"""Server-level Open Inference Protocol routes: liveness, readiness, server metadata."""
