"""`--reason TEXT`: why a command moves an alias (promote, shadow, rollback, rollout start and
abort, and the alias a publish, a training job or a pull sets), kept in the alias history
(functions/runtime/move_reason.py) and shown by `aiaas versions` and `aiaas rollout status`.
Here, not under infra/cli: the training image's entrypoint (`python -m training`, which ships
functions/ and training/ only) takes it too.

An unfit reason (over 500 characters, a control character) is a usage error, exit 2, as a bad
value of any flag is; so is a move without one where AIAAS_REQUIRE_REASON is on, said with the
command's usage, before anything is read, trained or moved.
"""

from __future__ import annotations

import argparse
import sys

from functions.runtime.errors import BadRequest
from functions.runtime.move_reason import MAX_REASON, REQUIRE_REASON_ENV, checked_reason
from functions.runtime.settings import RuntimeSettings

FLAG = "--reason TEXT"


def add_reason(p: argparse.ArgumentParser, what: str) -> None:
    """--reason on `p`, a command that moves an alias (`what`: the move, in its help)."""
    p.add_argument(
        "--reason",
        type=reason_text,
        metavar="TEXT",
        help=f"why {what}, kept in the alias history (aiaas versions shows it): a change ticket "
        f"and a short why, one line of at most {MAX_REASON} characters; required where "
        f"{REQUIRE_REASON_ENV} is on",
    )
    p.set_defaults(reason_refused=p.error)  # the usage error of this command's parser


def reason_text(text: str) -> str | None:
    """--reason's value as kept (blank: none), or argparse's usage error saying what to fix."""
    try:
        return checked_reason(text, how=FLAG)
    except BadRequest as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def move_reason(args: argparse.Namespace) -> str | None:
    """The move's --reason; a usage error (exit 2) when AIAAS_REQUIRE_REASON wants one."""
    required = RuntimeSettings.from_env().require_reason
    try:
        return checked_reason(args.reason, required=required, how=FLAG)
    except BadRequest as exc:
        args.reason_refused(exc.message)
        raise  # not reached: the usage error exits


def alias_reason(args: argparse.Namespace, alias: str | None) -> str | None:
    """The --reason of a command that moves an alias only when it is given one (publish, train,
    pull: `alias`), asked before its work starts: with AIAAS_REQUIRE_REASON on, a publish with
    --alias and no reason set the alias after the version was written (a refusal then would
    leave it published and unaliased), and skipped the check. A reason with no alias to move is
    said to do nothing, as `--alias` without `--publish` is."""
    if alias:
        return move_reason(args)
    if args.reason:
        print("note: --reason only takes effect with an alias to move (--alias)", file=sys.stderr)
    return None
