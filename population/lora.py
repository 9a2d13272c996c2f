"""LoRA deltas in memory, read from and written to the PEFT adapter format vLLM serves.

An adapter is held as ``{module: (A, B)}`` with the PEFT scaling folded into B, so the
weight change of a module is exactly ``B @ A``. Files are written with ``lora_alpha == r``
(scaling 1), every module at one rank (zero-padded), no biases and no modules_to_save:
the subset of PEFT that vLLM hot-loads.
"""

import hashlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from acdc import atomic
from acdc.types import LoraFactors, ModuleName

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_PEFT_PREFIX = "base_model.model."
_KEY = re.compile(
    r"^base_model\.model\.(?P<module>.+)\.lora_(?P<which>[AB])(?:\.default)?\.weight$"
)

LoraDelta = dict[ModuleName, LoraFactors]
"""A whole adapter: module name -> (A, B) with delta = B @ A."""


class AdapterError(ValueError):
    """An adapter folder cannot be used; the message says which file or module and why."""


def read_adapter(folder: Path) -> LoraDelta:
    """Read a PEFT LoRA adapter folder as float32 factors with the scaling folded into B."""
    config_path, weights_path = folder / ADAPTER_CONFIG, folder / ADAPTER_WEIGHTS
    for path in (config_path, weights_path):
        if not path.is_file():
            raise AdapterError(f"adapter {folder}: missing {path.name}")
    try:
        config = json.loads(config_path.read_text())
        tensors = load_file(str(weights_path))
    except (OSError, ValueError, SafetensorError) as err:
        raise AdapterError(f"adapter {folder}: unreadable ({err})") from err
    _check_servable(folder, config)

    factors: dict[ModuleName, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        match = _KEY.match(key)
        if match is None:
            raise AdapterError(f"adapter {folder}: unexpected tensor {key!r} (only LoRA A/B)")
        factors.setdefault(match["module"], {})[match["which"]] = tensor.float()
    delta: LoraDelta = {}
    for module, pair in sorted(factors.items()):
        if set(pair) != {"A", "B"}:
            raise AdapterError(f"adapter {folder}: module {module} lacks lora_A or lora_B")
        a, b = pair["A"], pair["B"]
        rank = a.shape[0]
        if b.shape[1] != rank:
            raise AdapterError(f"adapter {folder}: module {module} has A rank {rank}, B {b.shape}")
        delta[module] = (a, b * _scaling(config, module, rank))
    return delta


def _check_servable(folder: Path, config: Mapping[str, Any]) -> None:
    if config.get("peft_type", "LORA") != "LORA":
        raise AdapterError(f"adapter {folder}: peft_type {config.get('peft_type')} is not LORA")
    for flag, why in (
        ("use_dora", "DoRA"),
        ("modules_to_save", "modules_to_save (re-extract with -e embed_tokens -e lm_head)"),
        ("fan_in_fan_out", "fan_in_fan_out weights"),
    ):
        if config.get(flag):
            raise AdapterError(f"adapter {folder}: vLLM cannot serve {why}")
    if config.get("bias", "none") != "none":
        raise AdapterError(f"adapter {folder}: vLLM cannot serve LoRA biases")


def _scaling(config: Mapping[str, Any], module: str, rank: int) -> float:
    alpha = float(config.get("lora_alpha", rank))
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if module == pattern or module.endswith("." + pattern) or re.fullmatch(pattern, module):
            alpha = float(value)
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def write_adapter(folder: Path, delta: LoraDelta, *, base_model: str, dtype: torch.dtype) -> str:
    """Write ``delta`` as a PEFT adapter into an existing folder; return the weights' sha256.

    The caller stages the folder (see ``atomic.staged_dir``). Output is deterministic:
    the same delta gives the same bytes, so the checksum identifies the weights.
    """
    if not delta:
        raise AdapterError("refusing to write an adapter with no modules")
    rank = max(1, *(a.shape[0] for a, _ in delta.values()))
    tensors: dict[str, torch.Tensor] = {}
    for module, (a, b) in sorted(delta.items()):
        a_pad, b_pad = pad_rank(a, b, rank)
        tensors[f"{_PEFT_PREFIX}{module}.lora_A.weight"] = a_pad.to(dtype).contiguous()
        tensors[f"{_PEFT_PREFIX}{module}.lora_B.weight"] = b_pad.to(dtype).contiguous()
    data = save(tensors)
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": rank,
        "lora_alpha": rank,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
        "target_modules": sorted({m.rsplit(".", 1)[-1] for m in delta}),
        "rank_pattern": {},
        "alpha_pattern": {},
        "inference_mode": True,
    }
    atomic.write_bytes(folder / ADAPTER_WEIGHTS, data)
    atomic.write_json(folder / ADAPTER_CONFIG, config)
    return hashlib.sha256(data).hexdigest()


def pad_rank(a: torch.Tensor, b: torch.Tensor, rank: int) -> LoraFactors:
    """Zero-pad factors to ``rank`` (the product B @ A is unchanged)."""
    extra = rank - a.shape[0]
    if extra < 0:
        raise ValueError(f"cannot pad rank {a.shape[0]} down to {rank}")
    if extra == 0:
        return a, b
    return (
        torch.cat([a, a.new_zeros(extra, a.shape[1])]),
        torch.cat([b, b.new_zeros(b.shape[0], extra)], dim=1),
    )


def recompress(a: torch.Tensor, b: torch.Tensor, max_rank: int) -> LoraFactors:
    """Best rank-``max_rank`` factors of ``B @ A`` (exact when the rank already fits)."""
    factors, _ = recompress_with_loss(a, b, max_rank)
    return factors


def recompress_with_loss(
    a: torch.Tensor, b: torch.Tensor, max_rank: int
) -> tuple[LoraFactors, tuple[float, float]]:
    """``recompress``, plus the squared Frobenius norms of what was dropped and of the whole.

    Uses QR of both factors and an SVD of the small core, so it never forms the full
    out x in matrix; the dropped energy is the sum of the dropped squared singular
    values. The singular values are split evenly between the new A and B.
    """
    qb, rb = torch.linalg.qr(b)
    qa, ra = torch.linalg.qr(a.T)
    u, s, vh = torch.linalg.svd(rb @ ra.T)
    keep = int(min(max_rank, int((s > s.max() * 1e-7).sum()) if s.numel() else 0))
    keep = max(keep, 1)
    root = s[:keep].sqrt()
    new_b = (qb @ u[:, :keep]) * root
    new_a = root[:, None] * (vh[:keep] @ qa.T)
    energy = s.double().square()
    return (new_a, new_b), (float(energy[keep:].sum()), float(energy.sum()))


def delta_matrix(factors: LoraFactors) -> torch.Tensor:
    """The dense weight change ``B @ A`` of one module."""
    a, b = factors
    return b @ a
