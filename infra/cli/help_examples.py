"""Examples at the foot of `aiaas COMMAND --help`, and the formatter that keeps them as written.

Kept in one table so a test can run each through the parser (tests/infra/test_cli_docs_commands.py):
an example that no longer parses fails there, not in a user's terminal.
"""

from __future__ import annotations

import argparse

EXAMPLES: dict[str, list[str]] = {
    "models": ["aiaas models --json | jq -r '.models[].name'"],
    "versions": ["aiaas versions iris", "aiaas versions iris --json"],
    "show": ["aiaas show iris@production", "aiaas show iris:2 --json"],
    "promote": [
        "aiaas promote iris 2                 # production -> 2",
        "aiaas promote iris 3 --weight 0.1    # canary: 10% of production's requests to 3",
    ],
    "shadow": ["aiaas shadow iris 3 --sample 0.2", "aiaas shadow iris --off"],
    "rollback": ["aiaas rollback iris", "aiaas rollback iris --to 1"],
    "pull": ["aiaas pull iris@production --from s3://bucket/registry"],
    "prune": [
        "aiaas prune iris --keep 20 --dry-run   # list what would go, and why the rest stays",
        "aiaas prune iris --keep 20 --older-than 30 --yes --json   # in CI",
    ],
    "publish": [
        "aiaas publish model.onnx --name iris --labels setosa,versicolor,virginica "
        "--alias production",
        "aiaas --store s3://bucket/registry publish model.onnx --name iris --json",
    ],
    "serve": [
        "aiaas serve --port 8080 --workers 2",
        "AIAAS_API_TOKEN=secret aiaas serve",
        "AIAAS_API_TOKEN_FILE=/etc/aiaas/tokens aiaas serve  # re-read on change: rotation",
    ],
    "invoke": ["aiaas invoke Health -e events/health_live.json"],
    "batch": [
        "aiaas batch iris rows.csv --json",
        "aiaas --store s3://bucket/registry batch iris rows.jsonl --deployed --wait",
    ],
    "explain": [
        "aiaas explain iris --inputs '[[6.7, 3.0, 5.2, 2.3]]' --png why.png",
        "aiaas explain iris --file rows.csv --out why.jsonl",
    ],
    "baseline": ["aiaas baseline iris:2 train.csv"],
    "train": [
        "aiaas train training/specs/digits-mlp.yaml --check",
        "aiaas train training/specs/digits-mlp.yaml --publish --alias production",
    ],
    "monitor": ["aiaas monitor iris --window 1h --no-png"],
    "capture": [
        "aiaas capture iris --sample 0.05 --deny email",
        "aiaas capture export iris --since 2026-11-01 --out captured.csv",
    ],
    "compare": [
        "aiaas compare iris 1 2 --data holdout.csv --json",
        "aiaas compare iris 1 2 --data holdout.csv --max-drop accuracy=0.02   # a CI gate",
    ],
    "rollout": [
        "aiaas rollout iris 3 --steps 10,50,100 --bake 5m --max-p99-ms 50",
        "aiaas rollout status iris --json",
    ],
}


class ExamplesFormatter(argparse.HelpFormatter):
    """argparse's formatter, but the examples paragraph is kept line for line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        fill = super()._fill_text
        return "\n\n".join(
            part if part.startswith("examples:") else fill(part, width, indent)
            for part in text.split("\n\n")
        )


def add_examples(name: str, parser: argparse.ArgumentParser) -> None:
    """Set `parser`'s epilog to the command's examples, if it has any."""
    lines = EXAMPLES.get(name)
    if lines:
        parser.formatter_class = ExamplesFormatter
        examples = "\n".join(f"  {line}" for line in lines)
        parser.epilog = "examples:\n" + examples
