"""Fixtures shared by every test package: a real TorchServe serving both archives.

The `torchserve` fixture (session scope) builds both archives from the committed weights into a
temporary model store, starts TorchServe from a temporary work dir (its own TMPDIR, logs and
key_file.json) on five free loopback ports with one worker per model, waits until both models are
READY, and stops it at the end of the session, also when a test or the start-up fails. A missing
weights file is replaced by an untrained placeholder (listed in `.untrained`) so the serving tests
still run; accuracy tests skip such a model. TEST_WEIGHTS_DIR serves other weights than weights/.

The `front_door` fixture (module scope) is the whole public stack of `make run` in front of
that TorchServe: gunicorn with config/gunicorn.conf.py on an internal port and nginx
(config/nginx.conf.template) on a free loopback port; skipped where nginx is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.build_archives import build_archives
from stack.launcher import Launcher
from stack.nginx import NginxError, find_nginx
from stack.ports import free_ports
from stack.torchserve import TorchServe, TorchServeError, find_java
from tests.helpers import REPO_ROOT, LiveTorchServe, loopback_overrides

START_TIMEOUT = 120.0  # seconds; a cold start takes ~8 s on 2 idle cores


def serving_weights(target: Path) -> tuple[Path, frozenset[str]]:
    """A weights dir for both models: the committed checkpoints, placeholders where missing."""
    from recognition.models import build_model, load_checkpoint, save_checkpoint

    source = Path(os.environ.get("TEST_WEIGHTS_DIR") or REPO_ROOT / "weights")
    target.mkdir(parents=True, exist_ok=True)
    untrained = set()
    for arch in ("mlp", "cnn"):
        name = f"mnist_{arch}.pt"
        if (source / name).is_file():
            try:  # fail here with the reason, not after a timeout of crash-looping workers
                load_checkpoint(source / name)
            except Exception as exc:
                pytest.fail(f"{source / name} does not load: {exc}", pytrace=False)
            (target / name).write_bytes((source / name).read_bytes())
        else:
            save_checkpoint(target / name, build_model(arch), arch, {}, {"note": "untrained"})
            untrained.add(f"mnist_{arch}")
    return target, frozenset(untrained)


def clean_environ() -> dict[str, str]:
    """This process's environment without TS_* overrides: tests choose their own settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TS_")}


@pytest.fixture(scope="session")
def torchserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveTorchServe]:
    """A real TorchServe on free loopback ports serving mnist_mlp and mnist_cnn, 1 worker each."""
    try:
        find_java(os.environ)
    except TorchServeError as exc:
        pytest.skip(str(exc))
    base = tmp_path_factory.mktemp("torchserve")
    weights, untrained = serving_weights(base / "weights")
    build_archives(weights_dir=weights, model_store=base / "model_store")
    server = TorchServe(
        base / "work", base / "model_store", overrides=loopback_overrides(), environ=clean_environ()
    )
    try:
        server.start_ready(START_TIMEOUT)
        yield LiveTorchServe(server, weights, untrained)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def front_door(
    torchserve: LiveTorchServe, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Launcher]:
    """nginx → gunicorn → the session's TorchServe, as `make run` serves; `.url` is nginx's."""
    try:
        find_nginx()
    except NginxError as exc:
        pytest.skip(str(exc))
    work = tmp_path_factory.mktemp("front_door")
    (port,) = free_ports(1)
    server = torchserve.server
    launcher = Launcher(
        server,
        f"127.0.0.1:{port}",
        ui_log=work / "gunicorn.log",
        door_dir=work / "nginx",
    )
    with launcher:  # TorchServe already runs: the launcher uses it and leaves it running
        yield launcher
