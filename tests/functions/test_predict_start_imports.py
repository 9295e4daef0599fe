"""What a numeric model's cold start does not import: the code of features it does not use.

Imports are most of a predict function's cold start (~100 of ~135 ms), so the modules a plain
numeric model without a drift baseline never needs are imported where a model needs them: the
tokenizers at a text model's load, the drift histograms once a version's baseline is read, the
category-graph walk at an encoder's refusal; the OIP codec at the first OIP request; alias
writes, the shadow's copies and capture's redaction where they happen. A fresh interpreter
answers the golden simple-JSON event and lists what it imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.functions.test_predict_events import EVENTS, publish_digits
from tests.functions.test_predict_torchless import handler_env

ROOT = Path(__file__).resolve().parents[2]
NOT_NEEDED = (
    "functions.runtime.tokenizer",
    "functions.runtime.hf_tokenizer",
    "functions.runtime.drift.baseline",
    "functions.runtime.drift.live",
    "functions.runtime.drift.fits",
    "functions.runtime.category_graph",
    "functions.runtime.rollout.record",
    "functions.runtime.explain.background",
    "functions.predict.shadow_tally",
    # OIP's codec: imported by the first OIP request (or metadata call), not by a simple one.
    "functions.runtime.codecs.oip",
    "functions.runtime.codecs.oip_header",
    "functions.runtime.codecs.oip_classification",
    "functions.runtime.codecs.oip_names",
    "functions.runtime.codecs.tensors",
    # Alias writes, listings and the prune log's 404s: the predict function only reads aliases.
    "functions.runtime.alias_cas",
    "functions.runtime.alias_deleted",
    "functions.runtime.alias_preconditions",
    "functions.runtime.alias_pruned",
    "functions.runtime.catalog",
    "functions.runtime.prune_log",
    "functions.runtime.rollback_pinned",
    "functions.runtime.shadow_moves",
    # A shadow's copies (an alias naming a shadow), a deny-list's redaction (capture set so).
    "functions.predict.shadow_copy",
    "functions.runtime.capture.redact",
    # Column names of a record's stray keys: a refusal's (codecs/feature_names.value_columns).
    "functions.runtime.input_columns",
    "decimal",
    "tokenizers",
)
SCRIPT = """
import json, sys
from functions.predict.handler import handler
with open(sys.argv[1]) as f:
    answer = handler(json.load(f), None)
print(json.dumps({"status": answer["statusCode"], "modules": sorted(sys.modules)}))
"""


def test_a_numeric_model_without_a_baseline_imports_no_text_drift_or_graph_code(
    tmp_path: Path,
) -> None:
    store, _ = publish_digits(tmp_path)
    env = handler_env(store, tmp_path / "cache")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(EVENTS / "predict_simple.json")],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["status"] == 200, result.stderr
    # The drift monitor did look for a baseline (and found none): the check is not vacuous.
    assert "functions.runtime.drift.monitor" in answer["modules"]
    assert [m for m in NOT_NEEDED if m in answer["modules"]] == []
