"""Reading generated evaluation sets: each file of a set with its label and tags (labels.csv)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalsets.items import SET_SIZES
from evalsets.numbers import NUMBER_SIZES

SET_ORDER = tuple(SET_SIZES)


@dataclass(frozen=True)
class Sample:
    """One evaluation file."""

    path: Path
    label: int
    tags: dict[str, str] = field(default_factory=dict)


def _rows(folder: Path, limit: int | None) -> list[tuple[Path, str, dict[str, str]]]:
    """(file, label text, tags) of each row of a set's labels.csv; with `limit`, that many
    spread evenly over the set (sets are ordered by variant, so the first N would be biased)."""
    with (folder / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if limit is not None and limit < len(rows):
        rows = [rows[i] for i in np.linspace(0, len(rows) - 1, limit).round().astype(int)]
    return [
        (
            folder / row["file"],
            row["label"],
            dict(p.split("=", 1) for p in row["tags"].split() if "=" in p),
        )
        for row in rows
    ]


def load_set(folder: Path, limit: int | None = None) -> list[Sample]:
    """The files of one set with their labels and tags (labels.csv); `limit` as in `_rows`."""
    return [Sample(path, int(label), tags) for path, label, tags in _rows(folder, limit)]


@dataclass(frozen=True)
class NumberSample:
    """One file of the `numbers` set: a row of digits and the number it holds ("042")."""

    path: Path
    label: str
    tags: dict[str, str] = field(default_factory=dict)


def load_numbers(folder: Path, limit: int | None = None) -> list[NumberSample]:
    """The rows of the `numbers` set with their numbers and tags; `limit` as in `_rows`."""
    return [NumberSample(path, label, tags) for path, label, tags in _rows(folder, limit)]


def find_sets(root: Path, names: Sequence[str] | None) -> list[str]:
    """The sets to run: those asked for, else every generated digit set (not `numbers`: see
    benchmarks/numbers.py), in the usual order."""
    present = [
        p.name
        for p in sorted(root.iterdir())
        if (p / "labels.csv").is_file() and p.name not in NUMBER_SIZES
    ]
    if names:
        missing = [n for n in names if n not in present]
        if missing:
            raise SystemExit(f"no set {missing} under {root}: run python -m evalsets.make")
        return list(names)
    if not present:
        raise SystemExit(f"no evaluation sets under {root}: run python -m evalsets.make")
    return sorted(
        present, key=lambda n: (SET_ORDER.index(n) if n in SET_ORDER else len(SET_ORDER), n)
    )
