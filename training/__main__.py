"""Container entrypoint: `python -m training SPEC [--publish] [--alias A] [--store URI]`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from functions.runtime.errors import AiaasError
from training.command import add_arguments, run_train
from training.stop_signals import published, stopped_by_signals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training", description="Run one training job from its spec."
    )
    parser.add_argument(
        "--store",
        type=_store_uri,
        help="store URI: a directory or s3://bucket/prefix (default: $AIAAS_STORE or .aiaas/store)",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # as the CLI: before onnxruntime loads
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        # Stopped by AWS Batch (SIGTERM): unwind as Ctrl-C does, removing what the publish sent
        with stopped_by_signals():
            return run_train(args, on_published=published)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"training: interrupted ({exc})" if str(exc) else "training: interrupted",
              file=sys.stderr)  # fmt: skip
        return 128 + int(signum)
    except AiaasError as exc:
        print(f"training: error: {exc.message}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        # torch and the other packages of the training extra, as `aiaas train` says it
        hint = _install_hint(exc)
        if hint is None:
            raise  # a module of aiaas itself: a bug, whose traceback is the report
        print(f"training: error: {hint}", file=sys.stderr)
        return 1


def _store_uri(text: str) -> str:
    """`--store "$REGISTRY"` with REGISTRY unset: "" had meant the default store."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "is empty (an unset variable?): give a directory or s3://bucket/prefix"
        )
    return text


def _install_hint(exc: ModuleNotFoundError) -> str | None:
    """infra.extras' hint where infra is installed (pip); the training image copies functions/
    and training/ only, and has the training extra, so it never needs one."""
    try:
        from infra.extras import install_hint
    except ModuleNotFoundError:
        return None
    return install_hint(exc)


if __name__ == "__main__":
    sys.exit(main())
