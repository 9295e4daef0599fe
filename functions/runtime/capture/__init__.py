"""Data capture (#18): a sampled share of the requests a model answers, with their answers, kept
as JSON lines under `capture/<model>/<version>/<YYYY-MM-DD>/` in the store (off by default)."""
