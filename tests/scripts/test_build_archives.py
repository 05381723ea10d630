"""scripts/build_archives.py: archive contents, rebuild-on-change, and a self-contained handler."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from recognition.models import build_model, save_checkpoint
from scripts import build_archives as ba
from tests.helpers import REPO_ROOT, canvas_digit

pytestmark = pytest.mark.unit


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A weights dir with placeholder checkpoints and a copy of the model configs."""
    weights = tmp_path / "weights"
    for arch in ba.ARCHS:
        save_checkpoint(weights / f"mnist_{arch}.pt", build_model(arch), arch, {}, {})
    configs = tmp_path / "configs"
    shutil.copytree(REPO_ROOT / "config" / "models", configs)
    return weights, configs


def build(inputs: tuple[Path, Path], store: Path, arch: str = "cnn", force: bool = False) -> bool:
    spec = ba.spec_for(arch, *inputs)
    return ba.build_one(spec, store, force=force)


def test_archive_holds_handler_weights_config_and_shared_packages(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    paths = ba.build_archives(weights_dir=inputs[0], model_store=store, config_dir=inputs[1])
    assert set(paths) == {"mnist_mlp", "mnist_cnn"}
    for name, path in paths.items():
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
        assert {
            "mnist_handler.py",
            f"{name}.pt",
            f"{name}.yaml",
            "handlers/__init__.py",
            "handlers/codec.py",
            "recognition/__init__.py",
            "recognition/models.py",
            "recognition/preprocessing.py",
            "recognition/predictor.py",
        } <= names
        assert not any(n.startswith("training/") for n in names)
        assert not any("__pycache__" in n for n in names)
        model = manifest["model"]
        assert model["modelName"] == name
        assert model["modelVersion"] == ba.project_version()
        assert model["handler"] == "mnist_handler.py"
        assert model["serializedFile"] == f"{name}.pt"
        assert model["configFile"] == f"{name}.yaml"


def test_rebuilds_only_when_an_input_changes(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert build(inputs, store) is True
    archive = store / "mnist_cnn.mar"
    first = archive.stat().st_mtime_ns
    assert build(inputs, store) is False
    assert archive.stat().st_mtime_ns == first
    config = inputs[1] / "mnist_cnn.yaml"
    config.write_text(config.read_text() + "\n# changed\n")
    assert build(inputs, store) is True
    save_checkpoint(inputs[0] / "mnist_cnn.pt", build_model("cnn"), "cnn", {}, {"v": 2})
    assert build(inputs, store) is True
    assert build(inputs, store) is False
    assert build(inputs, store, force=True) is True
    archive.unlink()
    assert build(inputs, store) is True


def test_digest_covers_version_and_archiver(inputs: tuple[Path, Path]) -> None:
    spec = ba.spec_for("mlp", *inputs)
    base = ba.inputs_digest(spec, "0.12.0")
    assert ba.inputs_digest(spec, "0.12.0") == base
    assert ba.inputs_digest(spec, "0.13.0") != base
    bumped = ba.ArchiveSpec(spec.name, spec.weights, spec.model_config, "9.9.9")
    assert ba.inputs_digest(bumped, "0.12.0") != base


def test_missing_weights_is_a_clear_error(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    (inputs[0] / "mnist_mlp.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"mnist_mlp\.pt"):
        build(inputs, tmp_path / "store", arch="mlp")
    argv = ["--models", "mlp", "--weights-dir", str(inputs[0]), "--model-store", str(tmp_path)]
    assert ba.main([*argv, "--config-dir", str(inputs[1])]) == 1


EXTRACTED_HANDLER_RUN = """
import json, sys
sys.path.insert(0, ".")
from ts.context import Context, RequestProcessor
import mnist_handler
manifest = json.load(open("MAR-INF/MANIFEST.json"))
context = Context("mnist_cnn", ".", manifest, 8, None, "0.12.0")
handler = mnist_handler.MnistHandler()
handler.initialize(context)
context.request_processor = [RequestProcessor({})]
answer = handler.handle([{"body": open(sys.argv[1], "rb").read()}], context)[0]
import recognition.preprocessing, recognition.models
print(json.dumps({
    "answer": json.loads(answer),
    "files": [
        mnist_handler.__file__, recognition.preprocessing.__file__, recognition.models.__file__
    ],
}))
"""


def test_extracted_archive_runs_without_the_repository(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    """The handler's imports resolve inside the archive, as in TorchServe's worker."""
    store = tmp_path / "store"
    build(inputs, store)
    extracted = tmp_path / "extracted"
    with zipfile.ZipFile(store / "mnist_cnn.mar") as archive:
        archive.extractall(extracted)
    image = tmp_path / "digit.png"
    image.write_bytes(canvas_digit())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-I", "-c", EXTRACTED_HANDLER_RUN, str(image)],
        cwd=extracted,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 <= out["answer"]["prediction"] <= 9
    for path in out["files"]:
        assert Path(path).resolve().is_relative_to(extracted.resolve()), path
