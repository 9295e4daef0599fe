"""Serving side of aiaas: torch-free, imported inside every Lambda function."""
