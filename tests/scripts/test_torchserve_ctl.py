"""scripts/torchserve_ctl.py: the start/status/stop command line over stack.torchserve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from scripts import torchserve_ctl as ctl
from stack.paths import DEFAULT_WORK_DIR
from stack.ports import loopback_environ
from stack.torchserve import TorchServe
from tests.conftest import clean_environ
from tests.helpers import REPO_ROOT, LiveTorchServe, canvas_digit


@pytest.mark.unit
def test_status_of_a_server_that_is_not_running(tmp_path: Path) -> None:
    server = TorchServe(tmp_path / "work", tmp_path, environ={})
    assert ctl.status_lines(server) == [f"TorchServe is not running (work dir {server.work_dir})"]


@pytest.mark.unit
def test_cli_defaults() -> None:
    args = ctl.parse_args(["start"])
    assert args.work_dir == DEFAULT_WORK_DIR and not args.no_build


# ---------------------------------------------------------------------------------------------
# The command line, next to the session's server
# ---------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_cli_start_status_stop_leaves_the_other_server_alone(
    torchserve: LiveTorchServe, tmp_path: Path
) -> None:
    """A second instance from the CLI, placed by TS_* variables; stopping it spares the first."""
    env = {**clean_environ(), **loopback_environ()}
    inference = env["TS_INFERENCE_ADDRESS"]
    work = tmp_path / "work"
    store = torchserve.server.model_store
    args = ["--work-dir", str(work), "--model-store", str(store)]

    def cli(action: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scripts.torchserve_ctl", action, *args, *extra],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    started = cli("start", "--no-build", "--timeout", "120")
    try:
        assert started.returncode == 0, started.stderr
        assert inference in started.stdout
        assert "mnist_cnn: READY" in started.stdout
        second = TorchServe(work, store, environ=env)
        assert second.is_running()
        assert (work / "logs" / "ts_log.log").is_file()
        assert (work / "tmp" / ".model_server.pid").is_file()
        response = requests.post(
            f"{inference}/predictions/mnist_cnn",
            data=canvas_digit(),
            headers={**second.auth("inference"), "Content-Type": "image/png"},
            timeout=30,
        )
        assert response.status_code == 200
        status = cli("status")
        assert status.returncode == 0
        assert "mnist_mlp: READY" in status.stdout
        # A renewed key replaces the old one at once, in the server and in key_file.json.
        old = second.keys()["inference"]
        new = second.renew_key("inference")
        assert new != old
        ping = f"{inference}/ping"
        assert (
            requests.get(ping, headers={"Authorization": f"Bearer {old}"}, timeout=10).status_code
            == 400
        )
        assert requests.get(ping, headers={"Authorization": f"Bearer {new}"}, timeout=10).ok
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not second.is_running()
    assert not (work / "key_file.json").exists()
    assert torchserve.server.is_running()
    assert torchserve.predict("mnist_cnn", canvas_digit(), {"Content-Type": "image/png"}).ok
    # Nothing written into the repository by TorchServe.
    assert not (REPO_ROOT / "logs" / "ts_log.log").exists()
    assert not (REPO_ROOT / "key_file.json").exists()
    assert cli("stop").stdout.strip() == "TorchServe is not running"
