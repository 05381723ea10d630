"""Markdown tables from a benchmarks/perf.py bench result (for docs/performance.md).

python -m benchmarks.perf_report artifacts/bench/perf.json > /tmp/tables.md
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TARGET_NAMES = {
    "inproc_mlp": "(a) in-process MLP",
    "inproc_cnn": "(a) in-process CNN",
    "inproc_both": "(a) in-process both",
    "ts_mlp": "(b) TorchServe mnist_mlp",
    "ts_cnn": "(b) TorchServe mnist_cnn",
    "ui": "(c) /api/predict",
}


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def results_table(results: Mapping[str, Mapping[str, Mapping[str, Any]]], input_name: str) -> str:
    """Rows per target and client count: p50/p95/p99, req/s, errors, server CPU per request."""
    lines = [
        "| target | clients | p50 ms | p95 ms | p99 ms | req/s | errors | server CPU ms/req "
        "| other jobs, cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target, cells in results[input_name].items():
        for clients in sorted(cells, key=int):
            cell = cells[clients]
            cpu = cell.get("cpu_ms_per_request", {})
            # In process, the serving work is done by the load generator's own threads.
            server = cpu.get("loadgen") if target.startswith("inproc") else cpu.get("servers")
            lines.append(
                f"| {TARGET_NAMES.get(target, target)} | {clients} | {_num(cell['p50_ms'], 2)} "
                f"| {_num(cell['p95_ms'])} | {_num(cell['p99_ms'])} | {_num(cell['rps'])} "
                f"| {cell['errors']} | {_num(server, 2)} "
                f"| {_num(cell.get('other_busy_cores'), 2)} |"
            )
    return "\n".join(lines)


def ratios_table(ratios: Mapping[str, Mapping[str, Mapping[str, Any]]], input_name: str) -> str:
    """(b)/(a) and (c)/(a): p50 and p99 latency ratios, throughput ratio, added p50."""
    lines = [
        "| ratio | clients | p50 × | p99 × | req/s × | added p50 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for pair, by_clients in ratios.get(input_name, {}).items():
        for clients in sorted(by_clients, key=int):
            r = by_clients[clients]
            lines.append(
                f"| {pair} | {clients} | {_num(r['p50'], 2)} | {_num(r['p99'], 2)} "
                f"| {_num(r['rps'], 2)} | {_num(r['added_p50_ms'], 2)} |"
            )
    return "\n".join(lines)


def targets_table(checks: Sequence[Mapping[str, Any]]) -> str:
    """The issue's targets, met or not."""
    lines = ["| target | measured | limit | met |", "|---|---:|---:|---|"]
    for c in checks:
        lines.append(
            f"| {c['target']} | {c['value']} | {c['limit']} | {'yes' if c['met'] else '**no**'} |"
        )
    return "\n".join(lines)


def machine_line(machine: Mapping[str, Any]) -> str:
    """One line on the machine and how busy it was."""
    return (
        f"{machine.get('cpu')} ({machine.get('cores')} cores), "
        f"{machine.get('memory_gib')} GiB, {machine.get('platform')}; Python "
        f"{machine.get('python')}, torch {machine.get('torch')}, TorchServe "
        f"{machine.get('torchserve')}, {machine.get('java')}; load average at start "
        f"{machine.get('loadavg_start')}, at end {machine.get('loadavg_end')}"
    )


def render(report: Mapping[str, Any]) -> str:
    """The whole markdown block."""
    parts = [f"Machine: {machine_line(report['machine'])}.", "", targets_table(report["targets"])]
    for input_name in report["results"]:
        info = report.get("inputs", {}).get(input_name, {})
        parts += [
            "",
            f"#### {input_name} ({info.get('bytes', '?')} bytes)",
            "",
            results_table(report["results"], input_name),
            "",
            ratios_table(report["ratios"], input_name),
        ]
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the tables of one result file."""
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0] if args else "artifacts/bench/perf.json")
    print(render(json.loads(path.read_text())), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
