"""How many threads torch uses for the acdc process's own tensor work.

The acdc process does torch work of its own beside the vLLM server: breeding (the SVDs
of ``population/operators/svd_noise.py`` and the rank cap after crossover,
``population/breeding.py``), fine-tuning (``population/finetune.py``, the specialize
mutation and ``acdc seed --from-data``) and embeddings (``vectorstore/embeddings.py``).
Torch's default is one intra-op (OpenMP) thread per core, the same cores the vLLM
server's OpenMP threads are pinned to; OpenMP threads that spin at barriers lose far
more than their share when a core is taken (ENVIRONMENT.md: a breeding step took 18x
longer with one busy neighbour). ``torch_threads`` makes the count an explicit choice:
0 keeps torch's default (nothing changes until a measurement says otherwise), N sets
it for the whole process. Torch's setting is process-wide, so it is applied once, where
a process prepares its population (``population/bootstrap.py``), and logged.

A different thread count may change the order of floating-point sums, so bred and
fine-tuned weights are reproducible for one setting on one machine, not across them.
"""

import logging

from acdc.context import ConfigError

log = logging.getLogger(__name__)


def apply_torch_threads(setting: int) -> int:
    """Set torch's intra-op thread count from ``torch_threads`` (0 = torch's default).

    Args:
        setting: The ``torch_threads`` setting: 0 or a positive thread count.

    Returns:
        The thread count torch uses from now on.

    Raises:
        ConfigError: ``setting`` is negative.
    """
    if setting < 0:
        raise ConfigError(f"torch_threads must be >= 0 (0 = torch's default), got {setting}")
    import torch  # here: importing torch takes seconds and most commands need none

    default = torch.get_num_threads()
    if setting:
        torch.set_num_threads(setting)
    used = torch.get_num_threads()
    how = f"torch_threads {setting}" if setting else "torch_threads 0: torch's default"
    log.info("torch work in this process uses %d thread(s) (%s; was %d)", used, how, default)
    return used
