"""A grouped multi-LoRA kernel for vLLM's CPU build, installed as a vLLM plugin.

vLLM's CPU LoRA ops index the stacked adapter weights with the per-token adapter index,
which copies a full (out x rank) weight matrix for every token of the batch and then
runs a batched mat-vec. On CPU that copy dominates: 256 decoding sequences spread over 8
adapters move 256 weight copies per layer per step. The grouped ops here run one
matmul per adapter present in the batch on that adapter's rows instead, which is the
same arithmetic with no copies. Tokens with index -1 (no adapter) get no LoRA term.

A linear layer's LoRA (``add_lora_linear``: a shrink and an expand per slice, three
slices for the fused q/k/v projection, two for gate/up) is also fused: each adapter's
rows are gathered once per layer, multiplied by its concatenated A slices in one matmul
and by each B slice, and added back with one ``index_add_``. Measured on one core, 256
decoding tokens over 8 rank-16 adapters with SmolLM2's shapes: 215 ms of LoRA work per
decoding step with the grouped bgmv ops, 120 ms fused (vLLM's own ops: about 6x the
grouped ones).

The linear and embedding LoRA run as torch custom ops (``acdc::lora_linear``,
``acdc::lora_expand``) that take vLLM's token -> adapter slot buffer and group the
tokens inside, so torch.compile sees each as one opaque call. That is what lets the CPU
platform keep compilation with LoRA (``keep_compilation``), which vLLM turns off.

vLLM loads ``register`` in each of its processes through the ``vllm.general_plugins``
entry point; it patches only when ``ACDC_LORA_KERNEL=grouped`` is set, which the acdc
server launcher does (see ``Context.lora_kernel``), so other vLLM uses are unaffected;
``ACDC_LORA_COMPILE=true`` (``Context.lora_compile``) also keeps compilation.
"""

import logging
import os
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)

ENV_VAR = "ACDC_LORA_KERNEL"
COMPILE_ENV_VAR = "ACDC_LORA_COMPILE"


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


Groups = list[tuple[int, torch.Tensor | None]]
"""(adapter slot, its token rows; None = every token) for the tokens of one step."""


def token_groups(indices: torch.Tensor) -> Groups:
    """Tokens grouped by adapter slot (index -1 = no adapter, left out)."""
    slots = torch.unique(indices).tolist()
    if len(slots) == 1 and slots[0] >= 0:
        return [(int(slots[0]), None)]
    return [(int(s), (indices == s).nonzero().squeeze(1)) for s in slots if s >= 0]


def fused_lora_linear(
    y: torch.Tensor,
    x: torch.Tensor,
    lora_a: tuple[torch.Tensor, ...],
    lora_b: tuple[torch.Tensor, ...],
    scale: float,
    output_slices: tuple[int, ...],
    groups: Groups,
) -> None:
    """``y[t, slice i] += scale * x[t] @ A_i[slot(t)].T @ B_i[slot(t)].T`` for every token.

    Args:
        y: (tokens, sum of slices) output, updated in place.
        x: (tokens, in) input.
        lora_a: per slice, (slots, 1, rank, in) or (slots, rank, in).
        lora_b: per slice, (slots, 1, out_i, rank) or (slots, out_i, rank).
        scale: LoRA scaling.
        output_slices: out_i of each slice, laid side by side in ``y`` from column 0.
        groups: the tokens of each adapter slot (``token_groups``).
    """
    a_all = [_stacked(a) for a in lora_a]
    b_all = [_stacked(b) for b in lora_b]
    rank = a_all[0].shape[1]
    whole = sum(output_slices) == y.shape[1]
    for slot, rows in groups:
        xs = (x if rows is None else x.index_select(0, rows)).float()
        a = a_all[0][slot] if len(a_all) == 1 else torch.cat([w[slot] for w in a_all])
        hidden = torch.mm(xs, a.float().T).mul_(scale)
        parts = [
            torch.mm(hidden[:, i * rank : (i + 1) * rank], b[slot].float().T)
            for i, b in enumerate(b_all)
        ]
        if whole:
            out = (parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)).to(y.dtype)
            if rows is None:
                y.add_(out)
            else:
                y.index_add_(0, rows, out)
            continue
        offset = 0
        for part, size in zip(parts, output_slices, strict=True):
            target = y[:, offset : offset + size]
            if rows is None:
                target.add_(part.to(y.dtype))
            else:
                target.index_add_(0, rows, part.to(y.dtype))
            offset += size


@torch.library.custom_op("acdc::lora_linear", mutates_args=("y",))
def lora_linear_op(
    y: torch.Tensor,
    x: torch.Tensor,
    lora_a: list[torch.Tensor],
    lora_b: list[torch.Tensor],
    token_slots: torch.Tensor,
    scale: float,
    output_slices: list[int],
) -> None:
    """``fused_lora_linear`` as one op torch.compile does not look into.

    ``token_slots`` is vLLM's whole token -> adapter slot buffer; its first
    ``x.shape[0]`` entries belong to this batch. Slicing and grouping happen here, at run
    time, because a graph traced once (vLLM's CPU compilation keeps no guards) would
    otherwise freeze the batch length and adapter groups of the warm-up step.
    """
    groups = token_groups(token_slots[: x.shape[0]])
    fused_lora_linear(y, x, tuple(lora_a), tuple(lora_b), scale, tuple(output_slices), groups)


@lora_linear_op.register_fake
def _lora_linear_fake(
    y: torch.Tensor,
    x: torch.Tensor,
    lora_a: list[torch.Tensor],
    lora_b: list[torch.Tensor],
    token_slots: torch.Tensor,
    scale: float,
    output_slices: list[int],
) -> None:
    return None


@torch.library.custom_op("acdc::lora_expand", mutates_args=("y",))
def lora_expand_op(
    y: torch.Tensor, x: torch.Tensor, lora_b: torch.Tensor, token_slots: torch.Tensor
) -> None:
    """``y[t] += x[t] @ B[slot(t)].T`` (the embedding layer's LoRA), opaque to torch.compile."""
    y.add_(grouped_matmul(x, lora_b, token_slots[: x.shape[0]], y.dtype))


@lora_expand_op.register_fake
def _lora_expand_fake(
    y: torch.Tensor, x: torch.Tensor, lora_b: torch.Tensor, token_slots: torch.Tensor
) -> None:
    return None


def patch_wrapper(wrapper_cls: Any) -> None:
    """Route vLLM's CPU punica wrapper's linear and embedding LoRA through acdc's ops.

    Both read the wrapper's token -> slot buffer itself, never its ``token_lora_indices``
    property, whose length is a Python int that a compiled graph would freeze.
    """

    def add_lora_linear(
        self: Any,
        y: torch.Tensor,
        x: torch.Tensor,
        lora_a_stacked: tuple[torch.Tensor, ...],
        lora_b_stacked: tuple[torch.Tensor, ...],
        scale: float,
        output_slices: tuple[int, ...],
        **kwargs: Any,
    ) -> None:
        torch.ops.acdc.lora_linear(
            y.view(-1, y.shape[-1]),
            x.view(-1, x.shape[-1]),
            list(lora_a_stacked),
            list(lora_b_stacked),
            self._token_lora_indices,
            scale,
            list(output_slices),
        )

    def add_lora_embedding(
        self: Any, y: torch.Tensor, x: torch.Tensor, lora_b_stacked: torch.Tensor, **kwargs: Any
    ) -> None:
        torch.ops.acdc.lora_expand(y, x, lora_b_stacked, self._token_lora_indices)

    wrapper_cls.add_lora_linear = add_lora_linear
    wrapper_cls.add_lora_embedding = add_lora_embedding


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


def keep_compilation(platform_cls: Any) -> None:
    """Let vLLM's CPU platform keep torch.compile when LoRA is enabled.

    ``CpuPlatform.check_and_update_config`` sets compilation mode NONE whenever a LoRA
    config is present, because vLLM's CPU LoRA path (Python ints of the batch's metadata,
    prefill/decode branches) cannot be traced once and reused. With acdc's ops every
    LoRA term is one opaque op reading the token -> slot buffer at run time, so the
    mode the platform chose without LoRA (a single dynamo trace) is safe again.
    """
    from vllm.config import CompilationMode

    original = platform_cls.check_and_update_config

    def check_and_update_config(cls: Any, vllm_config: Any) -> None:
        compiled = vllm_config.compilation_config.mode == CompilationMode.VLLM_COMPILE
        original(vllm_config)
        if compiled and vllm_config.lora_config is not None:
            vllm_config.compilation_config.mode = CompilationMode.DYNAMO_TRACE_ONCE
            log.info("acdc: torch.compile kept with LoRA (acdc's LoRA ops are opaque)")

    platform_cls.check_and_update_config = classmethod(check_and_update_config)


def register() -> None:
    """Plugin hook for vLLM: swap in the grouped ops when ``ACDC_LORA_KERNEL=grouped``.

    With ``ACDC_LORA_COMPILE=true`` as well, the CPU platform keeps torch.compile.
    """
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
        # The logits' LoRA calls the CPU wrapper's own imported names; sgmv_* call lora_ops'.
        setattr(lora_ops, name, op)
        setattr(punica_cpu, name, op)
    patch_wrapper(punica_cpu.PunicaWrapperCPU)
    if os.environ.get(COMPILE_ENV_VAR, "false").lower() in {"1", "true", "yes"}:
        from vllm.platforms.cpu import CpuPlatform

        keep_compilation(CpuPlatform)
    lora_ops._acdc_grouped = True  # type: ignore[attr-defined]
    log.info("acdc: grouped multi-LoRA CPU kernel installed")
