"""docs/monitoring.md on the shipped rules: its PrometheusRule recipe, run as written, wraps
exactly the rules file, and its table names every alert the file holds."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.infra.observability_promql import RULES, rules

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "monitoring.md").read_text()


def test_the_prometheusrule_recipe_wraps_the_rules_file_unchanged(tmp_path: Path) -> None:
    marker = DOC.index("<!-- tested: tests/infra/test_observability_docs.py")
    block = DOC[marker:].split("```bash\n", 1)[1].split("```", 1)[0]
    script = "\n".join(line for line in block.splitlines() if not line.startswith("kubectl"))
    (tmp_path / "infra").symlink_to(ROOT / "infra")
    subprocess.run(["bash", "-euc", script], cwd=tmp_path, check=True, timeout=30)
    wrapped = yaml.safe_load((tmp_path / "aiaas-prometheusrule.yaml").read_text())
    assert wrapped["apiVersion"] == "monitoring.coreos.com/v1"
    assert wrapped["kind"] == "PrometheusRule"
    assert wrapped["metadata"]["name"] == "aiaas"
    assert wrapped["spec"] == yaml.safe_load(RULES.read_text())


def test_the_docs_table_lists_every_alert() -> None:
    documented = set(re.findall(r"^\| `(Aiaas\w+)` \|", DOC, flags=re.MULTILINE))
    assert documented == {rule["alert"] for rule in rules() if "alert" in rule}
