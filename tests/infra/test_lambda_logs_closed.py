"""The functions' log handler (infra/local/lambda_logs.py) in a process that outlives the
stdout it was installed on."""

from __future__ import annotations

import pytest


def test_no_logging_error_once_the_stdout_of_the_install_is_closed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `aiaas` loggers' handler holds the stdout of its install: a test's captured stream,
    closed since, made every later record a "Logging error" on stderr, and an exact stderr
    asserted after it failed (the compare gate's, in a -k compar run)."""
    import contextlib
    import io
    import logging

    from infra.local import lambda_logs

    logger = logging.getLogger(lambda_logs.LOGGER)
    monkeypatch.setattr(lambda_logs, "_installed", None)  # installed as in a fresh process
    saved = (list(logger.handlers), logger.propagate, logger.level)
    then = io.StringIO()
    try:
        with contextlib.redirect_stdout(then):
            lambda_logs.install({})  # while stdout was an earlier test's capture
        then.close()
        logging.getLogger("aiaas.runtime").warning("a line after the stream closed")
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
    out, err = capsys.readouterr()
    assert "Logging error" not in err and "a line after the stream closed" not in out
