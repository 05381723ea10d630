"""Build the TorchServe archives model_store/mnist_{mlp,cnn}.mar from the committed weights.

    python -m scripts.build_archives                       # both models, only if an input changed
    python -m scripts.build_archives --models cnn --force  # rebuild one regardless
    python -m scripts.build_archives --weights-dir /tmp/w --model-store /tmp/store

Each archive holds the checkpoint (weights/mnist_<arch>.pt), the handler
(handlers/mnist_handler.py), its model config (config/models/mnist_<arch>.yaml) and the two
packages the handler imports, handlers/ and recognition/, laid out as in the repository so the
same imports work in the extracted archive; nothing of training/ is packed. The archive version
is the project version in pyproject.toml. A stamp next to each archive holds the hash of every
input; an archive whose inputs have not changed is not rebuilt.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from recognition import catalog
from recognition.catalog import ARCHS

REPO_ROOT = Path(__file__).resolve().parent.parent
HANDLER = Path("handlers/mnist_handler.py")
# Packages packed with the handler, at the same relative paths as in the repository.
PACKAGES = ("handlers", "recognition")


def shared_modules(root: Path = REPO_ROOT) -> tuple[Path, ...]:
    """Every module of the packed packages, relative to the repository root, sorted."""
    found = [path.relative_to(root) for pkg in PACKAGES for path in (root / pkg).glob("*.py")]
    return tuple(sorted(found))


log = logging.getLogger("build_archives")


def project_version(root: Path = REPO_ROOT) -> str:
    """The version in pyproject.toml: the one place archives take their version from."""
    with (root / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["version"]


@dataclass(frozen=True)
class ArchiveSpec:
    """Everything one archive is built from."""

    name: str
    weights: Path
    model_config: Path
    version: str
    root: Path = REPO_ROOT

    def sources(self) -> list[Path]:
        """Input files, absolute, in a stable order."""
        files = [self.weights, self.model_config, self.root / HANDLER]
        return files + [self.root / module for module in shared_modules(self.root)]


def spec_for(arch: str, weights_dir: Path, config_dir: Path, root: Path = REPO_ROOT) -> ArchiveSpec:
    """The archive spec of one architecture."""
    model = catalog.spec(arch)
    return ArchiveSpec(
        name=model.name,
        weights=weights_dir / model.weights,
        model_config=config_dir / model.model_config,
        version=project_version(root),
        root=root,
    )


def inputs_digest(spec: ArchiveSpec, archiver_version: str) -> str:
    """SHA-256 over the names and contents of every input, the version and the archiver."""
    digest = hashlib.sha256()
    digest.update(f"{spec.name}\0{spec.version}\0{archiver_version}\0".encode())
    for path in spec.sources():
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def stamp_path(store: Path, name: str) -> Path:
    """The hidden file next to an archive that records the digest it was built from."""
    return store / f".{name}.mar.sha256"


def is_current(store: Path, name: str, digest: str) -> bool:
    """True when the archive exists and was built from exactly these inputs."""
    stamp = stamp_path(store, name)
    if not (store / f"{name}.mar").is_file() or not stamp.is_file():
        return False
    return stamp.read_text().strip() == digest


def missing_inputs(spec: ArchiveSpec) -> list[Path]:
    """Input files that do not exist."""
    return [path for path in spec.sources() if not path.is_file()]


def stage_shared_modules(spec: ArchiveSpec, stage: Path) -> Path:
    """Copy the shared modules under `stage/extra/` keeping their package directories."""
    extra = stage / "extra"
    for module in shared_modules(spec.root):
        target = extra / module
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(spec.root / module, target)
    return extra


def archiver_command(spec: ArchiveSpec, extra: Path, export_path: Path) -> list[str]:
    """The torch-model-archiver command line for one archive.

    A directory given to --extra-files has its *contents* copied to the archive root, so
    `extra/` (holding handlers/ and recognition/) puts both packages at the root, next to the
    handler, where TorchServe's worker imports from.
    """
    return [
        sys.executable,
        "-m",
        "model_archiver.model_packaging",
        "--model-name",
        spec.name,
        "--version",
        spec.version,
        "--handler",
        str(spec.root / HANDLER),
        "--serialized-file",
        str(spec.weights),
        "--config-file",
        str(spec.model_config),
        "--extra-files",
        str(extra),
        "--export-path",
        str(export_path),
        "--force",
    ]


def archiver_version() -> str:
    """Installed torch-model-archiver version (part of the stamp: a new archiver rebuilds)."""
    from model_archiver import __version__

    return str(__version__)


def build_one(spec: ArchiveSpec, store: Path, force: bool = False) -> bool:
    """Build one archive into `store` unless it is current; True when it was (re)built."""
    missing = missing_inputs(spec)
    if missing:
        names = ", ".join(str(p) for p in missing)
        raise FileNotFoundError(f"cannot build {spec.name}.mar: missing {names}")
    digest = inputs_digest(spec, archiver_version())
    if not force and is_current(store, spec.name, digest):
        log.info("%s.mar is up to date", spec.name)
        return False
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{spec.name}-build-") as tmp:
        stage = Path(tmp)
        extra = stage_shared_modules(spec, stage)
        built = stage / "out"
        built.mkdir()
        # The archiver stages files in $TMPDIR/<model name>: a private TMPDIR keeps two builds
        # of the same model (make archives, a test fixture) from trampling on each other.
        env = {**os.environ, "TMPDIR": str(stage), "TEMP": str(stage), "TMP": str(stage)}
        result = subprocess.run(
            archiver_command(spec, extra, built),
            env=env,
            cwd=stage,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"torch-model-archiver failed for {spec.name}:\n{result.stderr.strip()}"
            )
        # Replace atomically so a running TorchServe never reads a half-written archive.
        os.replace(built / f"{spec.name}.mar", store / f"{spec.name}.mar")
    stamp_path(store, spec.name).write_text(digest + "\n")
    log.info("built %s", store / f"{spec.name}.mar")
    return True


def build_archives(
    archs: Iterable[str] = ARCHS,
    weights_dir: Path = REPO_ROOT / "weights",
    model_store: Path = REPO_ROOT / "model_store",
    config_dir: Path = REPO_ROOT / "config" / "models",
    force: bool = False,
) -> dict[str, Path]:
    """Build (or keep) the archive of each architecture; returns archive paths by model name."""
    built = {}
    for arch in archs:
        spec = spec_for(arch, Path(weights_dir), Path(config_dir))
        build_one(spec, Path(model_store), force=force)
        built[spec.name] = Path(model_store) / f"{spec.name}.mar"
    return built


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", choices=ARCHS, default=list(ARCHS), help="default: mlp cnn"
    )
    parser.add_argument(
        "--weights-dir", type=Path, default=REPO_ROOT / "weights", help="default: weights/"
    )
    parser.add_argument(
        "--model-store", type=Path, default=REPO_ROOT / "model_store", help="default: model_store/"
    )
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=REPO_ROOT / "config" / "models",
        help="default: config/models/",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: build the archives, print where they are."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args(argv)
    try:
        paths = build_archives(
            args.models, args.weights_dir, args.model_store, args.config_dir, args.force
        )
    except (FileNotFoundError, RuntimeError) as exc:
        log.error("%s", exc)
        return 1
    for path in paths.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
