"""Command-line options every entry point that starts TorchServe shares."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
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


def parse_server_args(
    doc: str, timeout: float, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """`add_server_options` alone, for a script described by the first line of `doc`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_server_options(parser, timeout)
    return parser.parse_args(argv)
