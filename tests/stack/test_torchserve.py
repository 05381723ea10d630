"""stack/torchserve.py: what is checked before a start, and stopping only its own server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recognition.catalog import archives
from stack.paths import DEFAULT_KEY_FILE, DEFAULT_WORK_DIR
from stack.torchserve import (
    START_ATTEMPTS,
    SilentExitError,
    TorchServe,
    TorchServeError,
    find_java,
)
from tests.conftest import clean_environ
from tests.helpers import LiveTorchServe, loopback_overrides

pytestmark = pytest.mark.unit


def test_defaults_serve_the_catalog_from_run_torchserve(tmp_path: Path) -> None:
    server = TorchServe(environ={})
    assert server.models == archives()
    assert server.work_dir == DEFAULT_WORK_DIR and server.key_file == DEFAULT_KEY_FILE


def test_missing_java_names_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(TorchServeError, match="openjdk-17-jre-headless"):
        find_java({"PATH": str(tmp_path)})
    server = TorchServe(tmp_path / "work", tmp_path, environ={"PATH": str(tmp_path)})
    with pytest.raises(TorchServeError, match="Java 17"):
        server.start()
    assert not (tmp_path / "work").exists()


def test_java_home_is_preferred(tmp_path: Path) -> None:
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n")
    assert find_java({"JAVA_HOME": str(tmp_path / "jdk"), "PATH": ""}) == str(java)


def test_start_needs_the_archives(tmp_path: Path) -> None:
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n")
    environ = {"JAVA_HOME": str(tmp_path / "jdk"), "PATH": ""}
    server = TorchServe(tmp_path / "work", tmp_path / "empty_store", environ=environ)
    with pytest.raises(TorchServeError, match="build_archives"):
        server.start()


def test_stop_never_touches_a_process_that_is_not_its_server(tmp_path: Path) -> None:
    server = TorchServe(tmp_path / "work", tmp_path)
    server.tmp_dir.mkdir(parents=True)
    server.pid_file.write_text(str(os.getpid()))  # a stale pid file naming this test process
    assert server.pid() is None
    assert server.stop() is False
    assert not server.pid_file.exists()


def test_a_death_during_start_up_says_what_was_found(tmp_path: Path) -> None:
    """wait_ready names why the frontend is not running (no pid file, another process, an
    exited one) and shows the console output, so a start-up death in CI can be told apart."""
    import subprocess

    server = TorchServe(tmp_path / "work", tmp_path, {"m": "m.mar"})
    server.log_dir.mkdir(parents=True)
    (server.log_dir / "console.log").write_text("Warning: the console's last words\n")
    with pytest.raises(TorchServeError, match=r"(?s)no pid in .*console's last words"):
        server.wait_ready(5)
    server.tmp_dir.mkdir(parents=True)
    server.pid_file.write_text(str(os.getpid()))
    with pytest.raises(TorchServeError, match=f"pid {os.getpid()} is not a TorchServe frontend"):
        server.wait_ready(5)
    exited = subprocess.Popen(["true"])
    exited.wait()
    server.pid_file.write_text(str(exited.pid))
    with pytest.raises(TorchServeError, match=f"pid {exited.pid} is gone"):
        server.wait_ready(5)


def exiting_java(tmp_path: Path, log_line: str) -> tuple[Path, dict[str, str]]:
    """A JAVA_HOME whose java counts its starts in `starts`, appends `log_line` (if any) to
    ts_log.log and exits at once; the file of starts and the environment that uses it."""
    jdk = tmp_path / "jdk" / "bin"
    jdk.mkdir(parents=True)
    starts = tmp_path / "starts"
    logs = f'echo "{log_line}" >> "$LOG_LOCATION/ts_log.log"\n' if log_line else ""
    (jdk / "java").write_text(f"#!/bin/sh\necho start >> {starts}\n{logs}exit 0\n")
    (jdk / "java").chmod(0o755)
    return starts, {**clean_environ(), "JAVA_HOME": str(tmp_path / "jdk")}


@pytest.mark.parametrize(
    ("log_line", "error", "tries"),
    [("", SilentExitError, START_ATTEMPTS), ("Invalid configuration", TorchServeError, 1)],
)
def test_only_a_frontend_gone_before_it_logs_is_started_once_more(
    tmp_path: Path, log_line: str, error: type[TorchServeError], tries: int
) -> None:
    """A JVM that exits at once, logging nothing, stands in for one killed at start-up (which
    cannot be made to happen on cue): it is started again once, then reported. One that logs
    why it stops is reported at once."""
    starts, environ = exiting_java(tmp_path, log_line)
    store = tmp_path / "store"
    store.mkdir()
    (store / "m.mar").write_bytes(b"")
    server = TorchServe(
        tmp_path / "work", store, {"m": "m.mar"}, overrides=loopback_overrides(), environ=environ
    )
    with pytest.raises(error, match="exited during start-up") as caught:
        server.start_ready(10)
    assert (type(caught.value) is SilentExitError) == (error is SilentExitError)
    assert starts.read_text().split() == ["start"] * tries
    assert not server.is_running()


@pytest.mark.integration
def test_the_running_server_renders_the_derived_request_limit(torchserve: LiveTorchServe) -> None:
    """What TorchServe was started with carries max_request_size, though the file has none."""
    rendered = (torchserve.server.work_dir / "config.properties").read_text()
    assert f"max_request_size={torchserve.server.config['max_request_size']}" in rendered
