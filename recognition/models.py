"""Model definitions and checkpoint I/O, shared by training, evaluation and the handler.

A checkpoint stores its architecture spec next to the weights, so `load_checkpoint` rebuilds the
exact module that was trained: the handler never carries a second copy of these classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from recognition.constants import IMAGE_SIZE, NUM_CLASSES


class Embedding(NamedTuple):
    """What a model makes of a batch besides its answer."""

    features: torch.Tensor  # the last hidden layer's output (penultimate)
    logits: torch.Tensor
    # what a digit memory compares (recognition.abstention.Memory), flat; None: the model has
    # none (a memory of the MLP's features caught fewer dev-family non-digits than none)
    probe: torch.Tensor | None


class MLP(nn.Module):
    """Fully connected net: 784 → hidden… → 10 with BatchNorm, ReLU and dropout; returns logits."""

    def __init__(self, hidden: Sequence[int] = (128, 64), dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = IMAGE_SIZE * IMAGE_SIZE
        for size in hidden:
            layers += [nn.Linear(width, size), nn.BatchNorm1d(size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, NUM_CLASSES))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def embed(self, x: torch.Tensor) -> Embedding:
        """Penultimate features and logits; no probe."""
        features = self.net[:-1](x)
        return Embedding(features, self.net[-1](features), None)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Conv 3×3 → ReLU → BatchNorm → MaxPool 2×2."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.BatchNorm2d(c_out),
        nn.MaxPool2d(2),
    )


class CNN(nn.Module):
    """Three progressive conv blocks (28→14→7→3), a dense layer and 10 logits."""

    def __init__(
        self, channels: Sequence[int] = (32, 64, 128), dense: int = 128, dropout: float = 0.3
    ) -> None:
        super().__init__()
        blocks, c_in = [], 1
        for c_out in channels:
            blocks.append(_conv_block(c_in, c_out))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        side = IMAGE_SIZE // 2 ** len(channels)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * side * side, dense),
            nn.ReLU(),
            nn.BatchNorm1d(dense),
            nn.Dropout(dropout),
            nn.Linear(dense, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def embed(self, x: torch.Tensor) -> Embedding:
        """Penultimate features (the dense layer after its BatchNorm), logits, and as probe the
        last conv block's maps, flattened."""
        maps = self.features(x)
        features = self.classifier[:-2](maps)
        return Embedding(features, self.classifier[-2:](features), maps.flatten(1))


ARCHITECTURES: dict[str, type[nn.Module]] = {"mlp": MLP, "cnn": CNN}


def build_model(arch: str, **kwargs: Any) -> nn.Module:
    """Build an untrained model by architecture name ("mlp" or "cnn") and its keyword options."""
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        known = sorted(ARCHITECTURES)
        raise ValueError(f"unknown architecture {arch!r}; expected one of {known}") from None
    return cls(**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _storable(value: Any) -> Any:
    """`value` with every NumPy array in it (through dicts, lists and tuples) as a tensor, which
    a weights-only load reads back (arrays it refuses, and bytes it stores at twice their size)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_storable(v) for v in value)
    return value


def save_checkpoint(
    path: Path, model: nn.Module, arch: str, arch_kwargs: dict[str, Any], meta: dict[str, Any]
) -> None:
    """Save weights with what is needed to rebuild the model and to judge it."""
    payload = {
        "arch": arch,
        "arch_kwargs": arch_kwargs,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": _storable(meta),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def load_checkpoint(
    path: Path | str, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes, load its weights strictly: (model on `device`,
    meta). The meta's tensors (the detector's memory) stay on the CPU, where NumPy reads them."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    missing = {"arch", "arch_kwargs", "state_dict"} - payload.keys()
    if missing:
        raise ValueError(f"{path}: not an mnist-serve checkpoint (missing {sorted(missing)})")
    model = build_model(payload["arch"], **payload["arch_kwargs"])
    model.load_state_dict(payload["state_dict"], strict=True)
    model.to(device).eval()
    return model, {"arch": payload["arch"], **payload.get("meta", {})}


def update_meta(path: Path | str, updates: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a checkpoint's meta with `updates` merged in; weights and architecture unchanged."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    payload["meta"] = {**payload.get("meta", {}), **_storable(updates)}
    torch.save(payload, path)
    return payload["meta"]
