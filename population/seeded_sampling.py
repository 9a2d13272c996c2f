"""Seeded sampling on vLLM's CPU build without killing the engine, as a vLLM plugin.

A request with a ``seed`` gets its own ``torch.Generator``. When such a request is in a
partial prefill (chunked prefill split its prompt across steps), vLLM samples a token
for it, discards it, and rewinds the generator with ``set_offset`` so the discarded
draw leaves no trace. CPU generators have no offset: the call raises ``RuntimeError:
CPU Generator does not use offset`` and the engine dies with every request in flight.
It takes only many seeded requests at once (acdc's seed samples in ``acdc eval
coverage``, the specialize operator's rejection sampling): their prompts outgrow one
step's token budget and get chunked.

Here the rewind is done the CPU way: the state of each discarded request's generator
is saved before sampling and restored after, so the discarded draw leaves no trace, as
vLLM intends. vLLM loads ``register`` in each of its processes through
the ``vllm.general_plugins`` entry point; it patches only the CPU model runner.
"""

import logging
from typing import Any

log = logging.getLogger(__name__)


def patch_runner(runner_cls: Any) -> None:
    """Save and restore discarded requests' generator states around ``sample_tokens``."""
    original_sample = runner_cls.sample_tokens
    original_bookkeeping = runner_cls._bookkeeping_sync

    def sample_tokens(self: Any, *args: Any, **kwargs: Any) -> Any:
        generators = self.input_batch.generators
        discarded = self.discard_request_mask.np[: self.input_batch.num_reqs].nonzero()[0]
        self._acdc_rng_states = {
            int(i): generators[int(i)].get_state() for i in discarded if int(i) in generators
        }
        try:
            return original_sample(self, *args, **kwargs)
        finally:
            self._acdc_rng_states = {}

    def bookkeeping_sync(self: Any, *args: Any, **kwargs: Any) -> Any:
        generators = self.input_batch.generators
        self.input_batch.generators = {}  # vLLM's own rewind (set_offset) has nothing to do
        try:
            result = original_bookkeeping(self, *args, **kwargs)
        finally:
            self.input_batch.generators = generators
        for index, state in getattr(self, "_acdc_rng_states", {}).items():
            generators[index].set_state(state)
        return result

    runner_cls.sample_tokens = sample_tokens
    runner_cls._bookkeeping_sync = bookkeeping_sync


def register() -> None:
    """Plugin hook for vLLM: patch the CPU model runner (other platforms are untouched)."""
    try:
        from vllm.platforms import current_platform

        if not current_platform.is_cpu():
            return
        from vllm.v1.worker.cpu_model_runner import CPUModelRunner
    except ImportError:  # a vLLM without the V1 CPU runner: nothing to patch
        return
    if getattr(CPUModelRunner, "_acdc_seeded_sampling", False):
        return
    patch_runner(CPUModelRunner)
    CPUModelRunner._acdc_seeded_sampling = True  # type: ignore[attr-defined]
    log.info("acdc: seeded sampling patched for CPU generators")
