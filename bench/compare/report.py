"""docs/benchmarks/: the Markdown report and its PNG plots, rendered from one run's results dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.compare.plots import plot_cold_start, plot_latency
from bench.compare.servers import SERVERS

GOAL_THROUGHPUT = 2.0  # aiaas req/s over the best peer's, at concurrency 32
GOAL_COLD = 0.5  # aiaas cold start over the best peer's
GOAL_LEVEL = "32"
ANALYSIS = "analysis.md"  # hand-written closing note, kept beside the report and embedded


def _title(key: str) -> str:
    return SERVERS[key].title if key in SERVERS else key


def measured(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in model["servers"].items() if "skipped" not in v}


def goals(model: dict[str, Any]) -> dict[str, Any] | None:
    """aiaas against the best peer on this model; None when aiaas or every peer is missing."""
    ok = measured(model)
    peers = {k: v for k, v in ok.items() if k != "aiaas"}
    if "aiaas" not in ok or not peers:
        return None
    ours = ok["aiaas"]
    level = {k: v["levels"][GOAL_LEVEL] for k, v in peers.items() if GOAL_LEVEL in v["levels"]}
    best = max(level, key=lambda k: level[k]["rps"])
    fastest_cold = min(peers, key=lambda k: peers[k]["cold_ms"])
    lowest_p99 = min(level, key=lambda k: level[k]["p99_ms"])
    ratio = ours["levels"][GOAL_LEVEL]["rps"] / level[best]["rps"]
    cold = ours["cold_ms"] / peers[fastest_cold]["cold_ms"]
    p99 = ours["levels"][GOAL_LEVEL]["p99_ms"]
    return {
        "best": best,
        "rps": ours["levels"][GOAL_LEVEL]["rps"],
        "best_rps": level[best]["rps"],
        "ratio": ratio,
        "p99": p99,
        "lowest_p99_peer": lowest_p99,
        "lowest_p99": level[lowest_p99]["p99_ms"],
        "cold": ours["cold_ms"],
        "fastest_cold": fastest_cold,
        "fastest_cold_ms": peers[fastest_cold]["cold_ms"],
        "cold_ratio": cold,
        "throughput_met": ratio >= GOAL_THROUGHPUT,
        "p99_met": p99 < level[lowest_p99]["p99_ms"],
        "cold_met": cold <= GOAL_COLD,
    }


def _cell(text: str, limit: int = 200) -> str:
    """Free text made safe for one Markdown table cell."""
    return text.replace("|", "/").replace("\n", " ")[:limit]


def _mark(met: bool) -> str:
    return "met" if met else "**missed**"


def goals_table(results: dict[str, Any]) -> list[str]:
    lines = [
        f"| model | aiaas req/s @{GOAL_LEVEL} | best peer req/s | ratio (goal >= {GOAL_THROUGHPUT:g}x) "
        f"| aiaas p99 | lowest peer p99 (goal: lower) | aiaas cold start | fastest peer cold start "
        f"| ratio (goal <= {GOAL_COLD:g}x) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in results["workloads"]:
        g = goals(results["results"][w["key"]])
        if g is None:
            lines.append(f"| {w['title']} | not measured (see below) |" + " |" * 7)
            continue
        lines.append(
            f"| {w['title']} | {g['rps']:,.0f} | {g['best_rps']:,.0f} ({_title(g['best'])}) "
            f"| {g['ratio']:.2f}x {_mark(g['throughput_met'])} | {g['p99']:.2f} ms "
            f"| {g['lowest_p99']:.2f} ms ({_title(g['lowest_p99_peer'])}) {_mark(g['p99_met'])} "
            f"| {g['cold']:,.0f} ms | {g['fastest_cold_ms']:,.0f} ms ({_title(g['fastest_cold'])}) "
            f"| {g['cold_ratio']:.2f}x {_mark(g['cold_met'])} |"
        )
    return lines


def model_table(model: dict[str, Any], levels: list[int]) -> list[str]:
    head = "| server | cold start ms | cold start CPU ms | c1 p50 ms | c1 p99 ms |"
    head += "".join(f" c{c} req/s | c{c} p99 ms |" for c in levels if c != 1)
    head += " peak RSS MiB | errors |"
    lines = [head, "|---" + "|---:" * (head.count("|") - 2) + "|"]
    for key, r in model["servers"].items():
        if "skipped" in r:
            lines.append(f"| {_title(key)} | skipped: {_cell(r['skipped'])} |")
            continue
        lv = r["levels"]
        cpu = f"{r['cold_cpu_ms']:,.0f}" if "cold_cpu_ms" in r else "n/a"
        cells = [
            f"{r['cold_ms']:,.0f}",
            cpu,
            f"{lv['1']['p50_ms']:.2f}",
            f"{lv['1']['p99_ms']:.2f}",
        ]
        for c in levels:
            if c != 1:
                cells += [f"{lv[str(c)]['rps']:,.0f}", f"{lv[str(c)]['p99_ms']:.2f}"]
        errors = sum(level["errors"] for level in lv.values())
        cells += [f"{r['peak_rss_mib']:.0f}", f"{errors:.0f}"]
        lines.append(f"| {_title(key)} | " + " | ".join(cells) + " |")
    return lines


def inprocess_lines(ip: dict[str, Any]) -> list[str]:
    raw = min(ip["raw_default_us"], ip["raw_aiaas_options_us"])
    return [
        f"In-process predict handler (simple JSON event in, response out): "
        f"**{ip['handler_us']:.1f} µs** per call against raw `session.run` "
        f"{raw:.1f} µs (default session options {ip['raw_default_us']:.1f} µs, aiaas options "
        f"{ip['raw_aiaas_options_us']:.1f} µs): **{ip['ratio']:.2f}x**. Cold, fresh process: "
        f"handler (import, load from the store, answer) {ip['handler_ms']:.0f} ms against "
        f"the floor (numpy + onnxruntime + session + one run) {ip['floor_ms']:.0f} ms.",
    ]


def versions_lines(meta: dict[str, Any]) -> list[str]:
    lines = ["| server | status | versions |", "|---|---|---|"]
    for key, s in meta["servers"].items():
        if s["status"] == "ok":
            text = ", ".join(f"{k} {v}" for k, v in s["versions"].items())
            lines.append(f"| {_title(key)} | installed | {text} |")
        else:
            lines.append(f"| {_title(key)} | skipped | {_cell(s['reason'], 300)} |")
    return lines


def _load(meta: dict[str, Any]) -> str:
    return " / ".join(f"{v:.2f}" for v in meta.get("load_average", [])) or "not recorded"


def header(meta: dict[str, Any]) -> list[str]:
    plan = meta["plan"]
    lines = [
        "# Benchmarks: aiaas against the servers users would pick instead",
        "",
        f"Generated by `make bench` (`python -m bench.compare`) on **{meta['date']}**.  ",
        f"Machine: {meta['machine']}; Python {meta['python']}; load generator {meta['wrk']}; "
        f"load average (1/5/15 min) before the run {_load(meta)} (above ~0.5 means other work shared "
        f"the cores and the figures are noisy).",
        "",
    ]
    if plan["quick"]:
        lines += [
            "> **Quick run** (`--quick`): short levels and one cold start; figures are "
            "rough. Run `make bench` for the full run.",
            "",
        ]
    lines += [
        f"Method: one server at a time on loopback, one model each, one row per request in "
        f"JSON. Every server runs its documented single-process default (one worker; "
        f"`aiaas serve` with its default `--workers 1`). Load is wrk with one thread (one core "
        f"at most for the generator) at concurrency {', '.join(map(str, plan['concurrency']))} "
        f"for {plan['seconds']:g} s each after a {plan['warmup_seconds']:g} s warm-up; latency "
        f"is wrk's. Cold start is process spawn until the first *correct* answer (checked "
        f"against raw onnxruntime), median of {plan['cold_runs']}; its CPU time (user + system of "
        f"the process tree by then) is shown too, as it moves far less than wall time when "
        f"other work shares the cores. Peak RSS is VmHWM of the "
        f"server process plus its live children, summed. FastAPI + uvicorn runs in the project's "
        f"venv (its `control` extra and dev dependencies); KServe, MLServer and BentoML in their "
        f"own venvs (`.venv-peers/`), with the same onnxruntime as aiaas where their resolver "
        f"allows.",
        "",
    ]
    return lines


def write_report(results: dict[str, Any], out: Path) -> Path:
    """Render README.md and the PNGs into `out`; returns the README's path."""
    meta = results["meta"]
    levels = list(meta["plan"]["concurrency"])
    plot_latency(results, out / "latency_vs_concurrency.png")
    plot_cold_start(results, out / "cold_start.png")
    lines = header(meta)
    lines += [f"## Goals (concurrency {GOAL_LEVEL}, cold start)", "", *goals_table(results), ""]
    lines += [
        "![latency and throughput vs concurrency](latency_vs_concurrency.png)",
        "",
        "![cold start](cold_start.png)",
        "",
    ]
    for w in results["workloads"]:
        model = results["results"][w["key"]]
        lines += [
            f"## {w['title']}",
            "",
            f"Model `{w['model']}`: input {w['input']}, "
            f"ONNX {w['onnx_bytes'] / 1024:.0f} KiB ({w['source']}).",
            "",
        ]
        lines += [*model_table(model, levels), "", *inprocess_lines(model["inprocess"]), ""]
    lines += ["## Servers and versions", "", *versions_lines(meta), ""]
    analysis = out / ANALYSIS
    if analysis.exists():
        lines += [analysis.read_text().strip(), ""]
    readme = out / "README.md"
    readme.write_text("\n".join(lines))
    return readme
