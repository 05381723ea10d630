"""Performance and reliability benchmark of mnist-serve: in-process vs TorchServe vs web UI.

    python -m benchmarks.perf                     # full run: starts its own TorchServe + gunicorn
    python -m benchmarks.perf --quick             # short cells, for development
    python -m benchmarks.perf --clients 1 16 --inputs mnist_png --targets ts_cnn ui
    python -m benchmarks.perf --attach --ts-url http://127.0.0.1:8080 \\
        --management-url http://127.0.0.1:8081 --ui-url http://127.0.0.1:5000 \\
        --key-file run/torchserve/key_file.json   # services that already run (`make run`)
    python -m benchmarks.perf cold-start --repeat 3   # `torchserve_ctl start` → both READY
    python -m benchmarks.perf soak --minutes 5        # 16 clients, RSS of every process
    python -m benchmarks.perf fuzz --count 3000       # mutated PNG/JPEG/GIF through the API
    python -m benchmarks.perf hostile --hostile-seconds 15   # attacks, with/without nginx

Bench mode measures, side by side on the same three images (evalsets.bench_inputs: 28×28 PNG,
280×280 canvas PNG, 1600×1200 phone JPEG) and at 1, 4, 16 and 64 concurrent clients: (a) the
in-process baseline: preprocessing and the model(s) called in one Python process, as a plain
Flask app with the models loaded would; (b) each TorchServe endpoint directly; (c) `POST
/api/predict` end to end through gunicorn. The load comes from a separate process
(benchmarks/perf_load.py for HTTP, benchmarks/perf_inproc.py for (a)). Results: p50/p95/p99
latency, req/s, errors, CPU per request, the ratios (b)/(a) and (c)/(a), the targets met or not,
the machine and what else ran on it.

The data root is --data-root or $MNIST_ROOT. Output goes to artifacts/bench/ (perf.json,
perf.png, coldstart.json, soak.json, fuzz.json). Tuning knobs (--workers, --batch-size,
--max-batch-delay, --omp-threads, --gunicorn-workers, --gunicorn-threads, --pool-size) apply to
the servers this script starts; the defaults are the repository's configuration. Every option is
a field of benchmarks.perf_settings.Settings; each mode lives in its own module.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.perf_bench import bench
from benchmarks.perf_coldstart import cold_start
from benchmarks.perf_fuzzing import fuzz
from benchmarks.perf_hostile import hostile
from benchmarks.perf_plot import plot
from benchmarks.perf_settings import REPO_ROOT, Settings, parse
from benchmarks.perf_soak import soak

DEFAULT_OUT = REPO_ROOT / "artifacts" / "bench"
# mode → (what runs it, its JSON file under artifacts/bench/)
MODES: dict[str, tuple[Callable[[Settings], dict[str, Any]], str]] = {
    "bench": (bench, "perf.json"),
    "cold-start": (cold_start, "coldstart.json"),
    "soak": (soak, "soak.json"),
    "fuzz": (fuzz, "fuzz.json"),
    "hostile": (hostile, "hostile.json"),
}


def write(report: dict[str, Any], out: Path) -> None:
    """Write a report as JSON; a bench report also gets its plot and the targets printed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    if report["mode"] == "bench":
        print(f"wrote {plot(report, out.with_suffix('.png'))}")
        for check in report["targets"]:
            mark = "met" if check["met"] else "MISSED"
            print(f"  {mark:6} {check['target']}: {check['value']} (limit {check['limit']})")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one mode, write its JSON (and plot), print a summary."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    settings = parse(argv)
    run, file_name = MODES[settings.mode]
    write(run(settings), settings.out or DEFAULT_OUT / file_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
