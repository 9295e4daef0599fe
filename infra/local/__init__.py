"""Running the template's functions on this machine: no cloud, no Docker."""
