"""Pure summaries of benchmark cells: percentiles, throughput, ratios, target checks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

PERCENTILES = (50, 95, 99)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def pool(cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several raw results of one cell as one: samples, counts, times and CPU added up."""
    pooled: dict[str, Any] = {
        "clients": cells[0]["clients"],
        "latencies_ms": [ms for cell in cells for ms in cell["latencies_ms"]],
        "errors": sum(cell["errors"] for cell in cells),
        "statuses": {},
        "error_samples": [e for cell in cells for e in cell.get("error_samples", [])][:5],
        "elapsed_s": sum(cell["elapsed_s"] for cell in cells),
        "cpu_s": {},
    }
    for cell in cells:
        for status, count in cell["statuses"].items():
            pooled["statuses"][status] = pooled["statuses"].get(status, 0) + count
        for kind, seconds in (cell.get("cpu_s") or {}).items():
            pooled["cpu_s"][kind] = pooled["cpu_s"].get(kind, 0.0) + seconds
    return pooled


def summarize(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Latency percentiles, requests/s, errors and CPU per request of one raw cell result."""
    latencies = cell["latencies_ms"]
    elapsed = cell["elapsed_s"] or float("nan")
    done = len(latencies) + cell["errors"]
    summary: dict[str, Any] = {
        "clients": cell["clients"],
        "requests": done,
        "errors": cell["errors"],
        "rps": round(len(latencies) / elapsed, 1) if elapsed > 0 else None,
        "mean_ms": round(sum(latencies) / len(latencies), 3) if latencies else None,
    }
    for q in PERCENTILES:
        value = percentile(latencies, q)
        summary[f"p{q}_ms"] = round(value, 3) if value is not None else None
    summary["max_ms"] = round(max(latencies), 3) if latencies else None
    summary["statuses"] = dict(cell["statuses"])
    if cell.get("error_samples"):
        summary["error_samples"] = list(cell["error_samples"])
    cpu = dict(cell.get("cpu_s") or {})
    if cpu and done:
        cpu["servers"] = sum(v for k, v in cpu.items() if k not in {"loadgen", "machine", "steal"})
        summary["cpu_ms_per_request"] = {k: round(1000 * v / done, 3) for k, v in cpu.items()}
        summary["machine_busy_cores"] = round(cpu.get("machine", 0.0) / elapsed, 2)
        # CPU the machine spent on anything but the servers and the load generator: other
        # people's jobs. Near 0 on a quiet machine; a cell with more is suspect.
        ours = cpu["servers"] + cpu.get("loadgen", 0.0)
        summary["other_busy_cores"] = round(max(0.0, cpu.get("machine", 0.0) - ours) / elapsed, 2)
        summary["steal_cores"] = round(cpu.get("steal", 0.0) / elapsed, 2)
    summary["elapsed_s"] = round(cell["elapsed_s"], 3)
    return summary


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator rounded, or None when either is missing or the divisor is 0."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


def ratios(
    cells: Mapping[str, Mapping[int, Mapping[str, Any]]],
    pairs: Mapping[str, tuple[str, str]],
) -> dict[str, dict[int, dict[str, float | None]]]:
    """Per named pair (target, baseline) and client count: p50/p99 latency and req/s ratios."""
    out: dict[str, dict[int, dict[str, float | None]]] = {}
    for name, (target, base) in pairs.items():
        if target not in cells or base not in cells:
            continue
        out[name] = {}
        for clients, summary in cells[target].items():
            baseline = cells[base].get(clients)
            if baseline is None:
                continue
            out[name][clients] = {
                "p50": ratio(summary["p50_ms"], baseline["p50_ms"]),
                "p99": ratio(summary["p99_ms"], baseline["p99_ms"]),
                "rps": ratio(summary["rps"], baseline["rps"]),
                "added_p50_ms": (
                    round(summary["p50_ms"] - baseline["p50_ms"], 3)
                    if summary["p50_ms"] is not None and baseline["p50_ms"] is not None
                    else None
                ),
            }
    return out


def check(value: float | None, limit: float, at_least: bool = False) -> bool | None:
    """Whether a measured value meets a target (≤ limit, or ≥ when at_least); None if missing."""
    if value is None:
        return None
    return value >= limit if at_least else value <= limit
