"""The `aiaas` console script: SIGTERM is taken before anything heavy is imported
(early_stop.py); only the interpreter's own start, before any of this code, is left to
Python's default. This module and early_stop import only the standard library's small
modules and fatal_lines."""

from __future__ import annotations

import sys

from infra.cli.early_stop import early_stop


def main() -> int:
    early_stop()
    from infra.cli import stop_signals
    from infra.cli.main import main as cli_main

    stop_signals.CONSOLE = True  # a command done ignores stop signals for the rest of the exit
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
