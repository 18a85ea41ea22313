"""BENCHMARKS.md from a results JSON."""

from pathlib import Path
from typing import Any


def ratio(value: float, ceiling: float) -> str:
    return f"{value / ceiling:.2f}" if ceiling else "-"


def _row(run: dict[str, Any]) -> str:
    ceiling = run["ceiling_rps"]

    def rate(key: str) -> str:
        return f"{run[key]:.0f} ({ratio(run[key], ceiling)})"

    cells = [
        run["db"],
        str(run["processes"]),
        f"{ceiling:.0f}",
        rate("stk_push_rps"),
        f"{run['stk_push_p50_ms']:.1f} / {run['stk_push_p99_ms']:.1f}",
        rate("status_rps"),
        rate("callback_rps"),
        f"{run['e2e_per_s']:.0f}",
        f"{run['webhook_per_s']:.0f}",
        f"{run['rss_mb']:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def write_report(results: dict[str, Any], path: Path) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Commit `{results['commit']}` on {results['machine']}. One run of `make bench`"
        + (" QUICK=1" if results.get("quick") else "")
        + "; all figures from that run.",
        "Load: wrk, 2 threads, 32 connections, on the same machine (loopback). Daraja: the",
        "standalone simulator approving instantly. Ratios are to the ceiling of the same run.",
        "",
        "| db | procs | ceiling rps | STK push rps (ratio) | push p50 / p99 ms"
        " | status rps (ratio) | callback rps (ratio) | e2e completions/s | webhooks/s"
        " | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(run) for run in results["runs"]]
    scale = results["scale"]
    keys = sorted(k for k in scale if k.startswith("status_rps_"))
    lines += [
        "",
        f"Scale ({scale['db']}, 1 process): invoices already stored before the run.",
        "",
        "| stored invoices | status rps | STK push rps |",
        "|---|---|---|",
    ]
    for key in keys:
        label = key.removeprefix("status_rps_")
        lines.append(f"| {label} | {scale[key]:.0f} | {scale[f'stk_push_rps_{label}']:.0f} |")
    path.write_text("\n".join(lines) + "\n")
