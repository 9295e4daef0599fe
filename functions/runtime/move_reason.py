"""Why an alias was moved: the text a promote, rollback, shadow change, deletion or rollout
carries (`--reason`, a body's `reason`), kept as `reason` in the state the move wrote.

An auditor reading an alias's history back asks of each move who, when and why; the record
said who and when. A reason is one line of printable text, at most MAX_REASON characters: it is
printed by `aiaas versions` and `aiaas rollout status` (a newline forged a history line there,
an escape sequence drove the reader's terminal), and the alias record, which every server reads
on a cold start and on each re-read, keeps up to ALIAS_HISTORY (50) states, each with its own.
"""

from __future__ import annotations

from functions.runtime import names
from functions.runtime.errors import BadRequest

# A ticket id and a sentence fit ("CHG-1234: fixes false declines on ..."); the detail belongs
# in the ticket. 50 history states at most 25 KB: a record that stays a few ms to read.
MAX_REASON = 500
REQUIRE_REASON_ENV = "AIAAS_REQUIRE_REASON"


def checked_reason(reason: object, *, required: bool = False, how: str = "a reason") -> str | None:
    """`reason` as kept (trimmed; None when absent or blank), or BadRequest saying what to fix:
    too long, not text, a control character, or absent where `required` (AIAAS_REQUIRE_REASON).
    `how`: how the caller gives one (`--reason TEXT`, a body's `reason`), named in the refusal."""
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        if required:
            raise BadRequest(
                f"every alias move here needs a reason ({REQUIRE_REASON_ENV} is on): give "
                f'{how}, such as a change ticket ("CHG-1234: fixes false declines")'
            )
        return None
    if not isinstance(reason, str):
        raise BadRequest(f"a reason is text, not {names.shown(reason)}")
    text = reason.strip()
    if len(text) > MAX_REASON:
        raise BadRequest(
            f"the reason is {len(text)} characters; at most {MAX_REASON} are kept: give the "
            "ticket id and a short why (the detail belongs in the ticket)"
        )
    if not text.isprintable():
        place, char = next((i, c) for i, c in enumerate(text, 1) if not c.isprintable())
        raise BadRequest(
            f"the reason holds a control character ({char!a} at character {place}): "
            "give one line of printable text"
        )
    return text


def fitted_reason(text: str) -> str:
    """A reason the code itself words (a rollout's decision, an error), made one that
    `checked_reason` takes: control characters escaped, cut to MAX_REASON. A move back must not
    be refused over the wording of why it is made."""
    shown = text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
    shown = " ".join(shown.split())
    return shown if len(shown) <= MAX_REASON else shown[: MAX_REASON - 1] + "…"
