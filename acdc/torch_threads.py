"""How many threads torch uses for the acdc process's own tensor work.

The acdc process does torch work of its own beside the vLLM server: breeding (the SVDs
of ``population/operators/svd_noise.py`` and the rank cap after crossover,
``population/breeding.py``), fine-tuning (``population/finetune.py``, the specialize
mutation and ``acdc seed --from-data``) and embeddings (``vectorstore/embeddings.py``).
Torch's default is one intra-op (OpenMP) thread per core, the same cores the vLLM
server's OpenMP threads are pinned to; OpenMP threads that spin at barriers lose far
more than their share when a core is taken. ``torch_threads`` sets the count; 0 (the
default) is automatic: one thread when the population server computes on this
machine's CPU, torch's default otherwise (a GPU server, or a server attached by URL).
Measured with ``bench/population_serving.py --background-load 1`` on a 2-core Intel
Xeon (AVX-512): a breeding step took 1.5-2.1 s quiet and 5.5-6.7 s beside one busy
neighbour with two threads, 1.35 s and 1.9 s with one (the SVDs of a 135M model's
LoRA factors are too small for a second thread to pay for its barriers). Torch's
setting is process-wide, so it is applied once, where a process prepares its
population (``population/bootstrap.py``), and logged with the reason.

A different thread count may change the order of floating-point sums, so bred and
fine-tuned weights are reproducible for one setting on one machine, not across them.
"""

import logging

from acdc.context import ConfigError

log = logging.getLogger(__name__)


def apply_torch_threads(setting: int, shares_cores: bool) -> int:
    """Set torch's intra-op thread count from ``torch_threads`` (0 = automatic).

    Args:
        setting: The ``torch_threads`` setting: 0 (automatic) or a positive thread count.
        shares_cores: Whether the population server computes on this machine's CPU.

    Returns:
        The thread count torch uses from now on.

    Raises:
        ConfigError: ``setting`` is negative.
    """
    if setting < 0:
        raise ConfigError(f"torch_threads must be >= 0 (0 = automatic), got {setting}")
    import torch  # here: importing torch takes seconds and most commands need none

    default = torch.get_num_threads()
    if setting:
        torch.set_num_threads(setting)
        how = f"torch_threads {setting}"
    elif shares_cores:
        torch.set_num_threads(1)
        how = "torch_threads 0: one thread, the vLLM server computes on these cores"
    else:
        how = "torch_threads 0: torch's default, the server computes elsewhere"
    used = torch.get_num_threads()
    log.info("torch work in this process uses %d thread(s) (%s; was %d)", used, how, default)
    return used
