"""The `aiaas` console script: SIGTERM is taken before anything heavy is imported.

Python ends a process on SIGTERM, silently with 143, until a handler is set, and the CLI's
handlers came only once its command's modules were imported (0.3-1 s for `aiaas serve`, more
on a loaded node, plus boto3 for an S3 store). The kubelet sends SIGTERM to a pod replaced
while it starts, and 143 reads as a crash. Here the first thing run sets a handler that raises
Stopped, which main() turns into the command's own stop: `aiaas serve: stopped`, exit 0;
another command's `interrupted`, 128 + the signal. Only the interpreter's own start (tens of
ms, before any of this code) is left to the default. This module imports only the standard
library's `signal` (already loaded by the interpreter) and stop_signals (no imports of note).
"""

from __future__ import annotations

import sys

from infra.cli.stop_signals import early_stop


def main() -> int:
    early_stop()
    try:
        from infra.cli.main import main as cli_main
    except KeyboardInterrupt as exc:  # the stop came as main's own module imported
        from infra.cli.fatal_lines import interrupted, typed_command

        return interrupted(typed_command(sys.argv[1:]), exc)
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
