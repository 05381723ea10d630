"""The models this product serves: defined here once, in one vocabulary.

A model's `arch` ("mlp", "cnn") is also its role in answers (`mlp_prediction`) and the web UI;
its TorchServe name, archive, checkpoint and TorchServe model config all derive from it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """One served model."""

    arch: str  # architecture in recognition.models, and the model's role in every answer

    @property
    def name(self) -> str:
        """TorchServe model name: mnist_<arch>."""
        return f"mnist_{self.arch}"

    @property
    def archive(self) -> str:
        """Archive file in the model store."""
        return f"{self.name}.mar"

    @property
    def weights(self) -> str:
        """Checkpoint file under weights/."""
        return f"{self.name}.pt"

    @property
    def model_config(self) -> str:
        """TorchServe model config under config/models/."""
        return f"{self.name}.yaml"


MODELS: tuple[ModelSpec, ...] = (ModelSpec("mlp"), ModelSpec("cnn"))
ARCHS: tuple[str, ...] = tuple(spec.arch for spec in MODELS)
MODEL_NAMES: tuple[str, ...] = tuple(spec.name for spec in MODELS)


def spec(arch: str) -> ModelSpec:
    """The spec of one architecture; ValueError naming the known ones otherwise."""
    for model in MODELS:
        if model.arch == arch:
            return model
    raise ValueError(f"unknown model {arch!r}; expected one of {list(ARCHS)}")


def archives() -> dict[str, str]:
    """TorchServe model name → archive file, for every model (what `--models` registers)."""
    return {model.name: model.archive for model in MODELS}
