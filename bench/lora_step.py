"""Benchmark: the LoRA work of one decoding step on the CPU, by kernel path, no server.

SmolLM2-135M's LoRA layers (30 layers of q/k/v, o, gate/up and down projections) over
one step of ``--tokens`` decoding tokens spread evenly over ``--adapters`` rank
``--rank`` adapters, float32, ``--threads`` torch threads. Times two ways of adding
every token's own adapter term:

- acdc's fused path (``population/lora_kernel.py``): per adapter, gather its rows,
  shrink by its concatenated A slices, expand by each B slice, add back;
- vLLM's own CPU ops (a shrink and an expand per slice; they copy a weight matrix per
  token).

Prints milliseconds per step for each and last ``vllm over acdc: X.X`` (time ratio).
Compare the figure with a whole step's time (the server log's generation tokens/s at
the same batch) to see the LoRA share of a step.

Usage: .venv/bin/python bench/lora_step.py [--tokens 256 --adapters 8 --rank 16]
"""

import argparse
import time
from collections.abc import Callable

import torch

from acdc.population.lora_kernel import fused_lora_linear, token_groups

HIDDEN, INTERMEDIATE, KV, LAYERS = 576, 1536, 192, 30
# (input width, output slices) of each LoRA linear of one layer.
LINEARS = [
    (HIDDEN, (HIDDEN, KV, KV)),  # q/k/v
    (HIDDEN, (HIDDEN,)),  # o
    (HIDDEN, (INTERMEDIATE, INTERMEDIATE)),  # gate/up
    (INTERMEDIATE, (HIDDEN,)),  # down
]


def weights(adapters: int, rank: int) -> list[tuple[tuple[torch.Tensor, ...], ...]]:
    """Stacked A and B of every LoRA linear, shaped as vLLM stacks them."""
    gen = torch.Generator().manual_seed(0)
    made = []
    for width, slices in LINEARS:
        a = tuple(torch.randn(adapters, 1, rank, width, generator=gen) for _ in slices)
        b = tuple(torch.randn(adapters, 1, size, rank, generator=gen) for size in slices)
        made.append((a, b))
    return made


def timed(step: Callable[[], None], repeats: int) -> float:
    """Milliseconds of one call of ``step``, best of ``repeats`` after a warm-up."""
    step()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--adapters", type=int, default=8)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    indices = torch.arange(args.tokens) % args.adapters
    stacks = weights(args.adapters, args.rank)
    inputs = {width: torch.randn(args.tokens, width) for width, _ in LINEARS}
    outputs = [torch.zeros(args.tokens, sum(slices)) for _, slices in LINEARS]

    def acdc_step() -> None:
        groups = token_groups(indices)  # once per step, as the patched wrapper does
        for _ in range(LAYERS):
            for (width, slices), (a, b), y in zip(LINEARS, stacks, outputs, strict=True):
                fused_lora_linear(y, inputs[width], a, b, 1.0, slices, groups)

    def vllm_step() -> None:
        from vllm.lora.ops.torch_ops import lora_ops

        for _ in range(LAYERS):
            for (width, slices), (a, b), y in zip(LINEARS, stacks, outputs, strict=True):
                offset = 0
                for a_i, b_i, size in zip(a, b, slices, strict=True):
                    hidden = torch.zeros(args.tokens, args.rank)
                    lora_ops.bgmv_shrink(inputs[width], a_i, hidden, indices, 1.0)
                    lora_ops.bgmv_expand_slice(hidden, b_i, y, indices, offset, size, True)
                    offset += size

    print(
        f"one decoding step: {args.tokens} tokens over {args.adapters} rank-{args.rank} "
        f"adapters, {LAYERS} layers x {len(LINEARS)} LoRA linears, {args.threads} thread(s)",
        flush=True,
    )
    ours = timed(acdc_step, args.repeats)
    print(f"acdc fused path   {ours:8.1f} ms", flush=True)
    theirs = timed(vllm_step, 1)
    print(f"vLLM's own ops    {theirs:8.1f} ms", flush=True)
    print(f"vllm over acdc: {theirs / ours:.1f}")


if __name__ == "__main__":
    main()
