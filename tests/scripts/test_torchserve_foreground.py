"""scripts/torchserve_foreground.py: the image's main process, run for real on loopback."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from stack.properties import env_name
from tests.conftest import clean_environ
from tests.helpers import REPO_ROOT, loopback_overrides

pytestmark = pytest.mark.integration

READY_TIMEOUT = 120.0


def start_runner(work_dir: Path, model_store: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """Start the foreground runner on free loopback ports; returns it and its environment."""
    env = clean_environ()
    env.update({env_name(key): value for key, value in loopback_overrides().items()})
    with (work_dir.parent / "runner.log").open("wb") as log:
        runner = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scripts.torchserve_foreground",
                "--work-dir",
                str(work_dir),
                "--model-store",
                str(model_store),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return runner, env


def wait_healthy(runner: subprocess.Popen, work_dir: Path, env: dict[str, str]) -> None:
    """Poll the health probe until it passes; fails if the runner exits first or time runs out."""
    deadline = time.monotonic() + READY_TIMEOUT
    probe = [sys.executable, "-m", "scripts.healthcheck", "--work-dir", str(work_dir)]
    while time.monotonic() < deadline:
        assert runner.poll() is None, (work_dir.parent / "runner.log").read_text()
        result = subprocess.run(probe, env=env, cwd=REPO_ROOT, capture_output=True, check=False)
        if result.returncode == 0:
            return
        time.sleep(1.0)
    pytest.fail("TorchServe did not become healthy under the foreground runner")


def torchserve_processes(work_dir: Path) -> list[psutil.Process]:
    """Live processes (frontend and workers) of the TorchServe started from `work_dir`."""
    found, root = [], work_dir.resolve()
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            # The frontend runs in the work dir, its workers in archives extracted under it.
            if proc.info["cwd"] and Path(proc.info["cwd"]).resolve().is_relative_to(root):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def stop(runner: subprocess.Popen) -> None:
    """Make sure the runner is gone (a failing test must not leave TorchServe behind)."""
    if runner.poll() is None:
        runner.send_signal(signal.SIGTERM)
        try:
            runner.wait(timeout=60)
        except subprocess.TimeoutExpired:
            runner.kill()
            runner.wait()


def test_sigterm_stops_torchserve_and_exits_0(torchserve, tmp_path: Path) -> None:
    """Healthy after start; SIGTERM (docker stop, pod deletion) leaves no process and exit 0."""
    work_dir = tmp_path / "work"
    runner, env = start_runner(work_dir, torchserve.server.model_store)
    try:
        wait_healthy(runner, work_dir, env)
        assert torchserve_processes(work_dir)
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=60) == 0
        assert torchserve_processes(work_dir) == []
    finally:
        stop(runner)


def test_torchserve_dying_ends_the_container_with_1(torchserve, tmp_path: Path) -> None:
    """If the TorchServe frontend dies, the runner exits 1 so the container is restarted."""
    work_dir = tmp_path / "work"
    runner, env = start_runner(work_dir, torchserve.server.model_store)
    try:
        wait_healthy(runner, work_dir, env)
        frontend = psutil.Process(
            int((work_dir / "tmp" / ".model_server.pid").read_text().split()[0])
        )
        frontend.kill()
        assert runner.wait(timeout=60) == 1
    finally:
        stop(runner)
        # Workers orphaned by the killed frontend (a container would take them down with it).
        for proc in torchserve_processes(work_dir):
            with contextlib.suppress(psutil.Error):
                proc.kill()
