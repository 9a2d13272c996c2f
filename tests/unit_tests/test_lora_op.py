"""acdc's LoRA custom ops give the fused kernel's values on the batch's own slots.

One graph compiled around them serving later batches: tests/integration_tests/
test_lora_compile.py. No vLLM import: the ops are torch.
"""

import pytest
import torch

from acdc.population.lora_kernel import fused_lora_linear, grouped_matmul, token_groups

SLICES = [32, 16, 16]  # q/k/v-like: three slices side by side in the output


def weights(slots: int = 4, width: int = 64, rank: int = 8) -> tuple[list, list]:
    gen = torch.Generator().manual_seed(1)
    a = [torch.randn(slots, 1, rank, width, generator=gen) for _ in SLICES]
    b = [torch.randn(slots, 1, size, rank, generator=gen) for size in SLICES]
    return a, b


def slot_buffer(indices: list[int], length: int = 64) -> torch.Tensor:
    """vLLM's token -> slot buffer: this batch's slots first, stale entries after."""
    buffer = torch.full((length,), 3, dtype=torch.long)
    buffer[: len(indices)] = torch.tensor(indices)
    return buffer


def expected(y, x, a, b, indices: list[int]) -> torch.Tensor:
    out = y.clone()
    fused_lora_linear(
        out, x, tuple(a), tuple(b), 0.5, tuple(SLICES), token_groups(torch.tensor(indices))
    )
    return out


@pytest.mark.parametrize("indices", [[0, 2, 2, -1, 1, 0, 3, 3, -1, 1], [2] * 10, [-1] * 10])
def test_the_op_equals_the_fused_kernel_on_the_batchs_own_slots(indices):
    a, b = weights()
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(10, 64, generator=gen), torch.randn(10, 80, generator=gen)
    ours = y.clone()
    torch.ops.acdc.lora_linear(ours, x, a, b, slot_buffer(indices), 0.5, SLICES)
    assert torch.equal(ours, expected(y, x, a, b, indices))


def test_the_expand_op_adds_each_tokens_adapter():
    gen = torch.Generator().manual_seed(3)
    x, lora_b = torch.randn(6, 8, generator=gen), torch.randn(4, 1, 40, 8, generator=gen)
    y = torch.randn(6, 40, generator=gen)
    indices = [1, -1, 0, 3, 3, 1]
    ours = y.clone()
    torch.ops.acdc.lora_expand(ours, x, lora_b, slot_buffer(indices))
    theirs = y + grouped_matmul(x, lora_b, torch.tensor(indices), y.dtype)
    assert torch.equal(ours, theirs)
    assert torch.equal(ours[1], y[1])  # no adapter, no term
