"""Tooling around the functions: the `aiaas` CLI, the local gateway, template helpers."""
