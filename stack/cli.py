"""Command-line options every entry point that starts TorchServe shares."""

from __future__ import annotations

import argparse
from pathlib import Path

from stack.paths import DEFAULT_MODEL_STORE, DEFAULT_WORK_DIR


def add_server_options(parser: argparse.ArgumentParser, timeout: float) -> None:
    """--work-dir, --model-store and --timeout (seconds to wait for READY) with their defaults."""
    parser.add_argument(
        "--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="default: run/torchserve/"
    )
    parser.add_argument(
        "--model-store", type=Path, default=DEFAULT_MODEL_STORE, help="default: model_store/"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help=f"seconds to wait for READY (default: {timeout:g})",
    )
