"""The report's PNGs: latency and throughput against concurrency, and cold start bars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from bench.compare.servers import SERVERS

COLORS = {
    "aiaas": "#d62728",
    "fastapi": "#1f77b4",
    "kserve": "#2ca02c",
    "mlserver": "#9467bd",
    "bentoml": "#ff7f0e",
    "handler": "#8c564b",
    "floor": "#7f7f7f",
}


CONCURRENCY_TICKS = [1, 8, 32, 64]


def _title(key: str) -> str:
    return SERVERS[key].title if key in SERVERS else key


def plot_latency(results: dict[str, Any], path: Path) -> None:
    """One column per model: p99 latency (top) and throughput (bottom) against concurrency."""
    workloads = results["workloads"]
    fig, axes = plt.subplots(
        2, len(workloads), figsize=(max(6.5, 4.6 * len(workloads)), 7), squeeze=False
    )
    for col, w in enumerate(workloads):
        top, bottom = axes[0][col], axes[1][col]
        for key, r in results["results"][w["key"]]["servers"].items():
            if "skipped" in r:
                continue
            levels = sorted(r["levels"], key=int)
            xs = [int(c) for c in levels]
            style = {
                "color": COLORS.get(key),
                "marker": "o",
                "label": _title(key),
                "linewidth": 2.5 if key == "aiaas" else 1.5,
            }
            top.plot(xs, [r["levels"][c]["p99_ms"] for c in levels], **style)
            bottom.plot(xs, [r["levels"][c]["rps"] for c in levels], **style)
        top.set_title(w["title"])
        top.set_yscale("log")
        top.set_ylabel("p99 latency, ms (log)")
        bottom.set_ylabel("requests/s")
        bottom.set_ylim(bottom=0)
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.set_xticks(CONCURRENCY_TICKS, [str(c) for c in CONCURRENCY_TICKS])
            ax.set_xlabel("concurrent connections")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Latency and throughput vs concurrency, {results['meta']['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_cold_start(results: dict[str, Any], path: Path) -> None:
    """Grouped bars per model: each server's cold start, the in-process handler and the floor."""
    workloads = results["workloads"]
    keys = [*results["meta"]["servers"], "handler", "floor"]
    titles = {"handler": "aiaas handler, no HTTP", "floor": "floor: onnxruntime alone"}
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(max(7, 3.2 * len(workloads)), 4.5))
    for i, key in enumerate(keys):
        values = []
        for w in workloads:
            model = results["results"][w["key"]]
            if key in ("handler", "floor"):
                values.append(model["inprocess"][f"{key}_ms"])
            else:
                r = model["servers"].get(key, {})
                values.append(r.get("cold_ms", 0.0))
        xs = [j + (i - (len(keys) - 1) / 2) * width for j in range(len(workloads))]
        bars = ax.bar(xs, values, width, color=COLORS.get(key), label=titles.get(key, _title(key)))
        ax.bar_label(bars, labels=[f"{v:.0f}" if v else "n/a" for v in values], fontsize=7)
    ax.set_xticks(range(len(workloads)), [w["title"] for w in workloads])
    ax.set_ylabel("process start to first correct answer, ms")
    ax.set_title(f"Cold start ({results['meta']['date']})")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
