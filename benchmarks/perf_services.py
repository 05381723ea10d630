"""The services a perf run measures: started with the run's tuning, or attached to (--attach)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.perf_settings import Settings
from benchmarks.perf_stack import Endpoints, Stack, scale_workers
from recognition.catalog import MODEL_NAMES, MODELS
from recognition.models import load_checkpoint

TUNING_KEYS = (  # the knobs a report's "config" records
    "workers",
    "batch_size",
    "max_batch_delay",
    "omp_threads",
    "gunicorn_workers",
    "gunicorn_threads",
    "pool_size",
    "baseline_threads",
    "ts_set",
)


def weights_paths(weights_dir: Path) -> dict[str, Path]:
    """The two checkpoints; fails early with the path when one is missing or does not load."""
    paths = {model.arch: weights_dir / model.weights for model in MODELS}
    for path in paths.values():
        if not path.is_file():
            raise SystemExit(f"missing checkpoint {path} (pass --weights-dir)")
        try:
            load_checkpoint(path)
        except Exception as exc:  # any failure to unpickle or build the model means "broken"
            raise SystemExit(f"{path} does not load: {exc}") from exc
    return paths


def given(values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that were given (not None)."""
    return {key: value for key, value in values.items() if value is not None}


def env(values: Mapping[str, Any]) -> dict[str, str]:
    """Environment variables of the settings that were given."""
    return {key: str(value) for key, value in given(values).items()}


def stack_for(settings: Settings, work_dir: Path) -> Stack:
    """A Stack configured from the tuning options."""
    threads = settings.omp_threads
    return Stack(
        work_dir,
        settings.weights_dir,
        model_settings=given(
            {"batchSize": settings.batch_size, "maxBatchDelay": settings.max_batch_delay}
        ),
        ts_overrides=dict(item.split("=", 1) for item in settings.ts_set),
        worker_env=env({"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}),
        ui_env=env(
            {
                "GUNICORN_WORKERS": settings.gunicorn_workers,
                "GUNICORN_THREADS": settings.gunicorn_threads,
                "WEBUI_POOL_SIZE": settings.pool_size,
            }
        ),
        with_ui=not settings.no_ui,
    )


@contextlib.contextmanager
def services(settings: Settings) -> Iterator[tuple[Endpoints, Stack | None]]:
    """The services under test: attached to (--attach) or started for this run and stopped."""
    if settings.attach:
        key_file = Path(settings.key_file) if settings.key_file else None
        urls = (settings.ts_url, settings.management_url, settings.ui_url)
        yield Endpoints.attach(*urls, key_file), None
        return
    with tempfile.TemporaryDirectory(prefix="mnist-perf-") as tmp:
        stack = stack_for(settings, Path(tmp))
        with stack as endpoints:
            if settings.workers:
                scale_workers(endpoints, worker_counts(settings.workers))
            yield endpoints, stack


def worker_counts(items: Sequence[str]) -> dict[str, int]:
    """Worker counts by model from `N` (every model) or `MODEL=N` items."""
    counts: dict[str, int] = {}
    for item in items:
        if "=" in item:
            model, count = item.split("=", 1)
            if model not in MODEL_NAMES:
                raise SystemExit(f"--workers: unknown model {model!r}")
            counts[model] = int(count)
        else:
            counts.update(dict.fromkeys(MODEL_NAMES, int(item)))
    return counts


def tuning_config(settings: Settings) -> dict[str, Any]:
    """The knobs of this run as given (None: the repository's default)."""
    return {key: getattr(settings, key) for key in TUNING_KEYS}
