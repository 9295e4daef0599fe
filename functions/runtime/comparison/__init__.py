"""Comparing two versions of a model on one file: agreement, metric deltas, latency (#17).

`rows` reads the file (batch formats or a capture file), `truth` its ground truth, `metrics`
scores both versions' answers, and `run` puts them together into one report.
"""
