"""Drift and data quality against the training baseline: baseline, live histograms, distances."""
