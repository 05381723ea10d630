"""Every option of `benchmarks.perf` as one table: a dataclass field per option, with its default.

The command line is built from the fields: a field's type gives the option's type (a list takes
several values, a bool is a switch), its metadata the help text and group. `--quick` only changes
defaults (see QUICK).
"""

# ruff: noqa: RUF009 - opt() returns a dataclasses.field, evaluated once like field()

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalsets.bench_inputs import DEFAULT_INDEX, INPUT_NAMES
from stack.paths import DEFAULT_KEY_FILE

REPO_ROOT = Path(__file__).resolve().parent.parent
MODES = ("bench", "cold-start", "soak", "fuzz", "hostile")
HOSTILE_ATTACKS = (
    "quiet",
    "slow-headers",
    "idle-connections",
    "upload-burst",
    "expensive-images",
)
TARGETS = {
    "inproc_mlp": "in-process: preprocessing + MLP",
    "inproc_cnn": "in-process: preprocessing + CNN",
    "inproc_both": "in-process: preprocessing once + MLP + CNN",
    "ts_mlp": "TorchServe POST /predictions/mnist_mlp",
    "ts_cnn": "TorchServe POST /predictions/mnist_cnn",
    "ui": "gunicorn POST /api/predict (both models, multipart upload)",
}
QUICK = {"seconds": 2.0, "requests": 600, "warmup": 0.5, "server_warmup": 2.0}
TUNING = "tuning (servers this script starts)"
ATTACH = "running services (--attach)"


def opt(default: Any, help_text: str = "", group: str = "bench", **argparse_kwargs: Any) -> Any:
    """A settings field that is also a command-line option (help gets the default appended)."""
    meta = {"help": help_text, "group": group, "argparse": argparse_kwargs}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass
class Settings:
    """One perf run; `None` means the repository's configuration (config/, webui/config.py)."""

    mode: str = opt("bench", "what to run", "", choices=MODES, nargs="?")
    data_root: str | None = opt(None, "MNIST root [$MNIST_ROOT]", "")
    index: int = opt(DEFAULT_INDEX, "MNIST test image", "")
    weights_dir: Path = opt(REPO_ROOT / "weights", "checkpoints", "")
    out: Path | None = opt(None, "JSON output [artifacts/bench/<mode>.json], plot beside it", "")
    quick: bool = opt(False, "bench: 2 s, 600 requests, 0.5 s warm-up per cell")
    clients: list[int] = opt([1, 4, 16, 64], "concurrent clients per cell")
    inputs: list[str] = opt(list(INPUT_NAMES), "inputs", choices=INPUT_NAMES)
    targets: list[str] = opt(list(TARGETS), "targets", choices=list(TARGETS))
    seconds: float = opt(10.0, "longest time per cell")
    requests: int = opt(5000, "most requests per cell")
    warmup: float = opt(1.0, "warm-up seconds per cell")
    server_warmup: float = opt(5.0, "seconds of load per server target first")
    no_keepalive: bool = opt(False, "a new connection per request (comparison)")
    repeat: int | None = opt(None, "bench: passes over all cells, pooled [1]; cold-start: [3]")
    baseline_threads: int = opt(1, "torch threads in-process")
    workers: list[str] | None = opt(
        None, "of every model, or one: mnist_cnn=2 [config/models]", TUNING, metavar="N|MODEL=N"
    )
    batch_size: int | None = opt(None, "batchSize [config/models]", TUNING)
    max_batch_delay: int | None = opt(None, "maxBatchDelay ms [config/models]", TUNING)
    omp_threads: int | None = opt(None, "torch threads per worker [1]", TUNING)
    gunicorn_workers: int | None = opt(None, "[config/gunicorn.conf.py]", TUNING)
    gunicorn_threads: int | None = opt(None, "[config/gunicorn.conf.py]", TUNING)
    pool_size: int | None = opt(None, "UI keep-alive pool [webui/config.py]", TUNING)
    ts_set: list[str] = opt(
        [], "extra TorchServe setting (repeatable)", TUNING, action="append", metavar="KEY=VALUE"
    )
    no_ui: bool = opt(False, "start TorchServe only (targets ts_*, inproc_*)", TUNING)
    attach: bool = opt(False, "measure running services, start nothing", ATTACH)
    ts_url: str = opt("http://127.0.0.1:8080", "", ATTACH)
    management_url: str = opt("http://127.0.0.1:8081", "", ATTACH)
    ui_url: str = opt("http://127.0.0.1:5000", "", ATTACH)
    key_file: str = opt(str(DEFAULT_KEY_FILE), "", ATTACH)
    minutes: int = opt(5, "soak minutes", "soak")
    soak_clients: int = opt(16, "", "soak")
    count: int = opt(3000, "fuzz inputs", "fuzz")
    start: int = opt(0, "first fuzz mutant number", "fuzz")
    fuzz_clients: int = opt(4, "", "fuzz")
    max_seconds: float = opt(5.0, "slowest answer allowed in fuzz", "fuzz")
    hostile_seconds: float = opt(20.0, "seconds per attack and target", "hostile")
    hostile_clients: int = opt(200, "attacking sockets/clients (idle: 1.5×)", "hostile")
    hostile_attacks: list[str] = opt(
        list(HOSTILE_ATTACKS), "attacks", "hostile", choices=HOSTILE_ATTACKS
    )


def _value_type(hint: Any) -> tuple[Any, bool]:
    """(element type, takes several values) of a field's type, without its `| None`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType):
        hint = args[0]
    if typing.get_origin(hint) is list:
        return typing.get_args(hint)[0], True
    return hint, False


def _argument(f: dataclasses.Field, hint: Any) -> dict[str, Any]:
    """The add_argument keywords of one field: type, several values, switch, help with default."""
    default = f.default_factory() if callable(f.default_factory) else f.default
    kind, several = _value_type(hint)
    kwargs: dict[str, Any] = {"default": default, "help": f.metadata["help"]}
    kwargs.update(f.metadata["argparse"])
    if kind is bool:
        return {**kwargs, "action": "store_true"}
    kwargs["type"] = kind
    if several and kwargs.get("action") != "append":
        kwargs.setdefault("nargs", "+")
    if default not in (None, []) and "[" not in kwargs["help"]:
        shown = " ".join(map(str, default)) if several else default
        kwargs["help"] = f"{kwargs['help']} [{shown}]".lstrip()
    return kwargs


def parser() -> argparse.ArgumentParser:
    """The command line, one option per Settings field, in the fields' order and groups."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.perf",
        description="Performance and reliability benchmark: in-process vs TorchServe vs web UI.",
    )
    groups: dict[str, Any] = {"": p}
    hints = typing.get_type_hints(Settings)
    for f in dataclasses.fields(Settings):
        group = f.metadata["group"]
        if group not in groups:
            groups[group] = p.add_argument_group(group)
        name = f.name if f.name == "mode" else "--" + f.name.replace("_", "-")
        groups[group].add_argument(name, **_argument(f, hints[f.name]))
    return p


def parse(argv: Sequence[str] | None = None) -> Settings:
    """Settings from the command line, with --quick and the mode's defaults applied."""
    settings = Settings(**vars(parser().parse_args(argv)))
    if settings.repeat is None:
        settings.repeat = 3 if settings.mode == "cold-start" else 1
    if settings.quick:
        settings = dataclasses.replace(settings, **QUICK)
    if settings.no_ui:
        settings.targets = [t for t in settings.targets if t != "ui"]
    return settings
