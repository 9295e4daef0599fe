"""`aiaas train SPEC [--publish] [--alias A]`: run a training job (see training/README.md)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from training.command import add_arguments

    p = sub.add_parser(
        "train",
        help="train a model from a job spec, export ONNX, check parity, publish",
        description="Train from a YAML/JSON job spec; --publish stores it in the registry.",
    )
    add_arguments(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from training.command import run_train

    return run_train(args)
