"""Read-only access to the shared base model's 2-D weights, loaded lazily from safetensors."""

import json
from functools import cached_property
from pathlib import Path

import torch
from safetensors import safe_open

from acdc.types import ModuleName

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Linear layers every expert adapts: attention and MLP projections, which vLLM serves
LoRA on for Llama-style models. Embeddings, lm_head and norms stay shared."""


class BaseWeights:
    """The base model's projection weights by module name, without loading the whole model."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no .safetensors weights in {folder}")
        self._file_of: dict[str, Path] = {}
        for path in files:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                    self._file_of[key] = path

    @cached_property
    def modules(self) -> list[ModuleName]:
        """Target modules present in the base, in a fixed order."""
        names = [
            key.removesuffix(".weight")
            for key in self._file_of
            if key.endswith(".weight")
            and key.removesuffix(".weight").rsplit(".", 1)[-1] in LORA_TARGETS
        ]
        return sorted(names, key=_natural_key)

    def shape(self, module: ModuleName) -> tuple[int, int] | None:
        """(out_features, in_features) of a module, or None if the base lacks it."""
        path = self._file_of.get(module + ".weight")
        if path is None:
            return None
        with safe_open(str(path), framework="pt") as handle:
            out_features, in_features = handle.get_slice(module + ".weight").get_shape()
        return int(out_features), int(in_features)

    def weight(self, module: ModuleName) -> torch.Tensor:
        """The module's weight as float32 (out_features, in_features)."""
        path = self._file_of.get(module + ".weight")
        if path is None:
            raise KeyError(f"base model {self.folder} has no module {module}")
        with safe_open(str(path), framework="pt") as handle:
            tensor: torch.Tensor = handle.get_tensor(module + ".weight")
            return tensor.float()

    @cached_property
    def name(self) -> str:
        """A readable name for metadata: the model folder's name and its architecture."""
        config = json.loads((self.folder / "config.json").read_text())
        return f"{self.folder.name} ({','.join(config.get('architectures', []))})"


def _natural_key(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in name.split(".")]
