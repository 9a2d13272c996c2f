"""Run mergekit's command-line tools from this environment, with clear errors."""

import os
import sys
from pathlib import Path

from acdc.progress import run_watched

EXTRACT_EXCLUDES = (r".*embed_tokens.*", r".*lm_head.*", r".*norm.*")
"""Modules left out of extracted adapters: vLLM refuses adapters that save them."""


class MergekitError(RuntimeError):
    """A mergekit tool failed; the message carries the tail of its output."""


def run_tool(tool: str, *args: str, label: str = "") -> None:
    """Run a mergekit console script installed beside this Python, offline.

    Its progress bars become one progress line (``label``, the tool's name by default):
    what it is doing, modules done of all, rate and seconds so far.
    """
    executable = Path(sys.executable).with_name(tool)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = run_watched([str(executable), *args], label or tool, env=env)
    if result.returncode != 0:
        raise MergekitError(f"{tool} failed (exit {result.returncode}):\n{result.tail}")


def extract_lora(model: Path, base: Path, out: Path, max_rank: int, label: str = "") -> None:
    """Extract ``model - base`` as a LoRA adapter vLLM can hot-load, into ``out``.

    Without ``--quiet``: its progress bars feed the progress line (``run_tool``).
    """
    args = [
        "--model",
        str(model),
        "--base-model",
        str(base),
        "--out-path",
        str(out),
        "--max-rank",
        str(max_rank),
        "--skip-undecomposable",
    ]
    for pattern in EXTRACT_EXCLUDES:
        args += ["-e", pattern]
    run_tool("mergekit-extract-lora", *args, label=label)
