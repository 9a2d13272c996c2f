"""The grouped multi-LoRA CPU ops agree with vLLM's own ops (vLLM imported, no server).

The fused linear LoRA against a plain reference: tests/unit_tests/test_fused_lora.py.
"""

import pytest
import torch
from vllm.lora.ops.torch_ops import lora_ops

from acdc.population.lora_kernel import make_ops, patch_wrapper
from tests.unit_tests.test_fused_lora import linear_weights, reference_linear

OPS = make_ops(lora_ops)


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "x": torch.randn(12, 64, generator=gen).to(torch.bfloat16),
        "a": torch.randn(4, 1, 8, 64, generator=gen).to(torch.bfloat16),  # slots, 1, rank, in
        "b": torch.randn(4, 1, 96, 8, generator=gen).to(torch.bfloat16),  # slots, 1, out, rank
        "indices": torch.tensor([0, 2, 2, 1, 0, 3, 3, 3, 1, 0, 2, 1]),
    }


def test_shrink_matches_vllm(batch):
    ours = torch.zeros(12, 8)
    theirs = torch.zeros(12, 8)
    OPS["bgmv_shrink"](batch["x"], batch["a"], ours, batch["indices"], 0.5)
    lora_ops.bgmv_shrink(batch["x"], batch["a"], theirs, batch["indices"], 0.5)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    assert ours.abs().sum() > 0


@pytest.mark.parametrize("add_inputs", [True, False])
def test_expand_and_expand_slice_match_vllm(batch, add_inputs: bool):
    hidden = torch.randn(12, 8)
    start = torch.randn(12, 200).to(torch.bfloat16)
    ours, theirs = start.clone(), start.clone()
    OPS["bgmv_expand"](hidden, batch["b"], ours, batch["indices"], add_inputs)
    lora_ops.bgmv_expand(hidden, batch["b"], theirs, batch["indices"], add_inputs)
    torch.testing.assert_close(ours, theirs, atol=2e-2, rtol=2e-2)

    ours, theirs = start.clone(), start.clone()
    OPS["bgmv_expand_slice"](hidden, batch["b"], ours, batch["indices"], 50, 96, add_inputs)
    lora_ops.bgmv_expand_slice(hidden, batch["b"], theirs, batch["indices"], 50, 96, add_inputs)
    torch.testing.assert_close(ours, theirs, atol=2e-2, rtol=2e-2)
    assert torch.equal(ours[:, :50], start[:, :50]) and torch.equal(ours[:, 146:], start[:, 146:])


def test_prefill_path_uses_the_grouped_ops_and_tokens_without_adapter_get_nothing(batch):
    indices = torch.tensor([1, -1, 1, -1, 2, 2, 0, -1, 0, 0, 3, -1])
    out = torch.zeros(12, 8)
    OPS["bgmv_shrink"](batch["x"], batch["a"], out, indices, 1.0)
    assert torch.all(out[indices < 0] == 0)
    assert torch.all(out[indices >= 0].abs().sum(dim=1) > 0)
    # A single adapter for the whole batch takes the fast path and still agrees.
    same = torch.full((12,), 2)
    ours, theirs = torch.zeros(12, 8), torch.zeros(12, 8)
    OPS["bgmv_shrink"](batch["x"], batch["a"], ours, same, 1.0)
    lora_ops.bgmv_shrink(batch["x"], batch["a"], theirs, same, 1.0)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_the_patched_wrapper_regroups_tokens_when_the_batch_changes():
    from vllm.lora.layers import LoRAMapping
    from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

    class Wrapper(PunicaWrapperCPU):
        pass

    patch_wrapper(Wrapper)
    wrapper = Wrapper(64, 8, "cpu")
    x, a, b = linear_weights((32, 16, 16))
    for ids in [(1, 3, 3, 0, 2, 1, 4, 4, 0, 2), (2,) * 10, (4, 4, 1, 1, 0, 0, 3, 3, 2, 2)]:
        mapping = LoRAMapping(index_mapping=ids, prompt_mapping=ids, is_prefill=ids[0] == 2)
        wrapper.update_metadata(mapping, [1, 2, 3, 4], 5, 100)
        index = torch.tensor([i - 1 for i in ids])  # slot of lora id i is i - 1
        y = torch.zeros(10, 64)
        for _ in range(2):  # the second layer of the step reuses the groups
            wrapper.add_lora_linear(y, x, a, b, 0.5, (32, 16, 16))
        expected = reference_linear(torch.zeros(10, 64), x, a, b, 1.0, (32, 16, 16), index)
        torch.testing.assert_close(y, expected)
