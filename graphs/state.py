"""The coevolution graph's state: ids, counters and small summaries only.

Big things (adapters, task bodies, evaluation records) live in the run folder and the
vector store, so checkpoints stay small and a resumed run reads them back from disk.
"""

from typing import Any, TypedDict

from acdc.types import ExpertId


class RunState(TypedDict, total=False):
    """What the checkpointer stores after every step of a run."""

    generation: int
    """Last completed generation (0 before the first)."""
    archive: list[ExpertId]
    """Surviving experts, best first."""
    children: list[ExpertId]
    """Children of the generation in progress that passed the sanity check."""
    task_round: int
    """Micro-batches done in the current pool-growing phase."""
    tokens: int
    """Tokens generated so far by every role together (for the token budget)."""
    summary: dict[str, Any]
    """The last generation's summary, as printed."""
    stop_reason: str
    """Why the run ended ("" while it goes on)."""
