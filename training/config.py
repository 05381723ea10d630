"""Training hyperparameters: one JSON file per model under config/, unknown keys rejected."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "config"
WEIGHTS_DIR = REPO_ROOT / "weights"


@dataclass
class TrainConfig:
    """Everything a training run depends on besides the data."""

    arch: str
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "adamw"  # adam | adamw
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    epochs: int = 30
    schedule: str = "onecycle"  # onecycle | cosine | constant
    label_smoothing: float = 0.0
    ema_decay: float = 0.999  # 0 disables the weight average
    val_size: int = 5000
    patience: int = 10  # epochs without a better validation accuracy before stopping
    seed: int = 1  # weight initialisation and the batches' order and augmentation
    split_seed: int = 1  # which 5,000 training images are held out: the same for every model
    augment: dict[str, Any] = field(default_factory=dict)
    distill_from: str | None = None  # checkpoint of a teacher model, relative to the repo root
    distill_weight: float = 0.5
    distill_temperature: float = 4.0
    init_from: str | None = None  # checkpoint to fine-tune from (same arch), relative to the root

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """Read a hyperparameter file; unknown keys are an error, not a silent default."""
        values = json.loads(Path(path).read_text())
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for checkpoints and metrics."""
        return asdict(self)


def default_config_path(model: str) -> Path:
    """config/<model>_best_hyperparams.json."""
    return CONFIG_DIR / f"{model}_best_hyperparams.json"


def weights_path(model: str) -> Path:
    """weights/mnist_<model>.pt, the committed checkpoint."""
    return WEIGHTS_DIR / f"mnist_{model}.pt"
