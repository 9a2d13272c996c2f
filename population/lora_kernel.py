"""A grouped multi-LoRA kernel for vLLM's CPU build, installed as a vLLM plugin.

vLLM's CPU LoRA ops index the stacked adapter weights with the per-token adapter index,
which copies a full (out x rank) weight matrix for every token of the batch and then
runs a batched mat-vec. On CPU that copy dominates: 256 decoding sequences spread over 8
adapters move 256 weight copies per layer per step. The grouped ops here run one
matmul per adapter present in the batch on that adapter's rows instead, which is the
same arithmetic with no copies. Tokens with index -1 (no adapter) get no LoRA term.

vLLM loads ``register`` in each of its processes through the ``vllm.general_plugins``
entry point; it patches only when ``ACDC_LORA_KERNEL=grouped`` is set, which the acdc
server launcher does (see ``Context.lora_kernel``), so other vLLM uses are unaffected.
"""

import logging
import os
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)

ENV_VAR = "ACDC_LORA_KERNEL"


def _stacked(weights: torch.Tensor) -> torch.Tensor:
    """(slots, 1, out, in) or (slots, out, in) -> (slots, out, in)."""
    return weights.squeeze(1) if weights.dim() == 4 else weights


def grouped_matmul(
    inputs: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Row i of the result is ``inputs[i] @ weights[indices[i]].T``, zero where index < 0."""
    stacked = _stacked(weights)
    rows = inputs.to(dtype)
    slots = torch.unique(indices).tolist()
    if len(slots) == 1 and slots[0] >= 0:
        return rows @ stacked[slots[0]].to(dtype).T
    result = rows.new_zeros(rows.shape[0], stacked.shape[1])
    for slot in slots:
        if slot < 0:
            continue
        where = (indices == slot).nonzero().squeeze(1)
        result[where] = rows[where] @ stacked[slot].to(dtype).T
    return result


def _fits(inputs: torch.Tensor, output: torch.Tensor, indices: torch.Tensor) -> bool:
    return inputs.shape[0] == output.shape[0] == indices.shape[0]


def make_ops(original: Any) -> dict[str, Callable[..., None]]:
    """Grouped versions of the three bgmv ops; odd shapes fall back to ``original``'s."""

    def bgmv_shrink(
        inputs: torch.Tensor,
        lora_a_weights: torch.Tensor,
        output_tensor: torch.Tensor,
        lora_indices_tensor: torch.Tensor,
        scaling: float = 1.0,
    ) -> None:
        if not _fits(inputs, output_tensor, lora_indices_tensor):
            original.bgmv_shrink(
                inputs, lora_a_weights, output_tensor, lora_indices_tensor, scaling
            )
            return
        out = grouped_matmul(inputs, lora_a_weights, lora_indices_tensor, output_tensor.dtype)
        output_tensor[:, : out.shape[1]] = scaling * out

    def bgmv_expand(
        inputs: torch.Tensor,
        lora_b_weights: torch.Tensor,
        output_tensor: torch.Tensor,
        lora_indices_tensor: torch.Tensor,
        add_inputs: bool = True,
    ) -> None:
        if not _fits(inputs, output_tensor, lora_indices_tensor):
            original.bgmv_expand(
                inputs, lora_b_weights, output_tensor, lora_indices_tensor, add_inputs
            )
            return
        out = grouped_matmul(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
        width = min(out.shape[1], output_tensor.shape[1])
        if add_inputs:
            output_tensor[:, :width] += out[:, :width]
        else:
            output_tensor[:, :width] = out[:, :width]

    def bgmv_expand_slice(
        inputs: torch.Tensor,
        lora_b_weights: torch.Tensor,
        output_tensor: torch.Tensor,
        lora_indices_tensor: torch.Tensor,
        slice_offset: int,
        slice_size: int,
        add_inputs: bool = True,
    ) -> None:
        if not _fits(inputs, output_tensor, lora_indices_tensor):
            original.bgmv_expand_slice(
                inputs,
                lora_b_weights,
                output_tensor,
                lora_indices_tensor,
                slice_offset,
                slice_size,
                add_inputs,
            )
            return
        out = grouped_matmul(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
        target = output_tensor[:, slice_offset : slice_offset + slice_size]
        if add_inputs:
            target += out
        else:
            target.copy_(out)

    return {
        "bgmv_shrink": bgmv_shrink,
        "bgmv_expand": bgmv_expand,
        "bgmv_expand_slice": bgmv_expand_slice,
    }


def register() -> None:
    """Plugin hook for vLLM: swap in the grouped ops when ``ACDC_LORA_KERNEL=grouped``."""
    if os.environ.get(ENV_VAR, "vllm") != "grouped":
        return
    try:
        from vllm.lora.ops.torch_ops import lora_ops
        from vllm.lora.punica_wrapper import punica_cpu
    except ImportError:  # a build without the CPU punica wrapper: nothing to patch
        return
    if getattr(lora_ops, "_acdc_grouped", False):
        return
    originals = type(
        "Originals",
        (),
        {n: getattr(lora_ops, n) for n in ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice")},
    )
    for name, op in make_ops(originals).items():
        # sgmv_* (prefill) call the bgmv_* of lora_ops; the CPU wrapper imported its own names.
        setattr(lora_ops, name, op)
        setattr(punica_cpu, name, op)
    lora_ops._acdc_grouped = True  # type: ignore[attr-defined]
    log.info("acdc: grouped multi-LoRA CPU kernel installed")
