"""The fused linear LoRA adds each token's own adapter, as a token-by-token reference does.

Its agreement with vLLM's own ops: tests/integration_tests/test_lora_kernel.py.
"""

import pytest
import torch

from acdc.population.lora_kernel import fused_lora_linear, token_groups


def reference_linear(y, x, lora_a, lora_b, scale, slices, indices):
    """Token by token: each token's own adapter on every slice; -1 adds nothing."""
    out = y.clone()
    for t, slot in enumerate(indices.tolist()):
        if slot < 0:
            continue
        offset = 0
        for a, b, size in zip(lora_a, lora_b, slices, strict=True):
            out[t, offset : offset + size] += scale * (x[t] @ a[slot, 0].T) @ b[slot, 0].T
            offset += size
    return out


def linear_weights(slices: tuple[int, ...], width: int = 64, rank: int = 8):
    gen = torch.Generator().manual_seed(1)
    a = tuple(torch.randn(4, 1, rank, width, generator=gen) for _ in slices)
    b = tuple(torch.randn(4, 1, size, rank, generator=gen) for size in slices)
    return torch.randn(10, width, generator=gen), a, b


@pytest.mark.parametrize("slices", [(32, 16, 16), (48,), (20, 20)])
@pytest.mark.parametrize(
    "indices", [[0, 2, 2, -1, 1, 0, 3, 3, -1, 1], [2] * 10, [-1] * 10, [1] * 9 + [-1]]
)
def test_the_fused_linear_lora_adds_each_tokens_own_adapter(slices, indices):
    x, a, b = linear_weights(slices)
    index = torch.tensor(indices)
    y = torch.randn(10, 64)  # wider than the slices when they sum to less: the rest is kept
    ours = y.clone()
    fused_lora_linear(ours, x, a, b, 0.5, slices, token_groups(index))
    torch.testing.assert_close(ours, reference_linear(y, x, a, b, 0.5, slices, index))
