"""The billable units one predict function produces, counted: the figures of docs/cost.md.

    python -m bench.cost_counts [--requests 200]

The real predict handler (`functions.predict.handler`, imported as Lambda imports it) on
moto's S3 server on loopback, serving digits-mlp:1 @production with the template's settings,
answers the golden events in events/ `--requests` times each. A botocore hook counts every S3
call by operation (real HTTP requests to the server: the billed unit); stdout is read for the
EMF documents (their bytes, and the distinct custom metrics they define: each namespace,
metric name and dimension-value set is one billed metric). Printed: S3 calls of the cold start,
of the warm requests, and of one alias re-read after the TTL; EMF bytes per request; the
metrics a version defines per route and status class served.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench.args import count
from bench.scratch import scratch_dir

ROOT = Path(__file__).resolve().parents[1]
MOTO_ENV = {
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "AWS_DEFAULT_REGION": "us-east-1",
}
EVENTS = ("predict_simple", "predict_v2_infer_json", "predict_v2_metadata", "predict_v2_ready")


def count_calls(calls: Counter[str]) -> None:
    """Count each S3 API call made by any client from now on (botocore's own event hook)."""
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def metrics_of(lines: list[str]) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """The distinct (namespace, metric, dimension values) the EMF documents define."""
    found = set()
    for line in lines:
        doc = json.loads(line)
        for block in doc.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in block["Metrics"]:
                for names in block["Dimensions"]:
                    dims = tuple((n, str(doc[n])) for n in names)
                    found.add((block["Namespace"], metric["Name"], dims))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=count, default=200)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.models import publish_mlp
    from functions.runtime.s3client import make_s3_client
    from tests.s3server import MotoServer

    work = scratch_dir("aiaas-cost-counts-")
    server = MotoServer().start(work / "moto.log")
    try:
        os.environ.update(MOTO_ENV, AWS_ENDPOINT_URL=server.endpoint)
        bucket = f"cost-{uuid.uuid4().hex[:8]}"
        s3 = make_s3_client()
        s3.create_bucket(Bucket=bucket)
        publish_mlp(work / "store", "digits-mlp")
        for path in (work / "store").rglob("*"):
            if path.is_file():
                key = f"registry/{path.relative_to(work / 'store').as_posix()}"
                s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        os.environ.update(
            AIAAS_STORE=f"s3://{bucket}/registry",
            AIAAS_MODEL="digits-mlp",
            AIAAS_MODEL_SELECTOR="@production",
            AIAAS_ALIAS_TTL="1",  # a re-read a second, not a minute: counted after a sleep
            AIAAS_CACHE_DIR=str(work / "cache"),
        )
        calls: Counter[str] = Counter()
        count_calls(calls)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            handler = importlib.import_module("functions.predict.handler")
        print(f"cold start (import): S3 {dict(calls)}")
        events = [json.loads((ROOT / "events" / f"{e}.json").read_text()) for e in EVENTS]
        calls.clear()
        with contextlib.redirect_stdout(out):
            for _ in range(args.requests):
                for event in events:
                    handler.handler(event)
        served = args.requests * len(events)
        print(f"{served} warm requests inside the TTL: S3 {dict(calls)}")
        calls.clear()
        time.sleep(1.2)
        with contextlib.redirect_stdout(out):
            handler.handler(events[0])
            handler.SERVICE.metrics.flush()
        print(f"one request after the alias TTL: S3 {dict(calls)}")
        lines = [line for line in out.getvalue().splitlines() if line.startswith("{")]
        emf = sum(len(line) + 1 for line in lines if '"_aws"' in line)
        print(f"EMF: {len(lines)} documents, {emf} bytes, {emf / (served + 1):.1f} B/request")
        metrics = metrics_of([line for line in lines if '"_aws"' in line])
        print(f"custom metrics defined: {len(metrics)}")
        for name, n in sorted(Counter((m[1], len(m[2])) for m in metrics).items()):
            print(f"  {name[0]} with {name[1]} dimensions: {n}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
