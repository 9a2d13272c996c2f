"""Run mergekit's command-line tools from this environment, with clear errors."""

import os
import subprocess
import sys
from pathlib import Path

EXTRACT_EXCLUDES = (r".*embed_tokens.*", r".*lm_head.*", r".*norm.*")
"""Modules left out of extracted adapters: vLLM refuses adapters that save them."""


class MergekitError(RuntimeError):
    """A mergekit tool failed; the message carries the tail of its output."""


def run_tool(tool: str, *args: str) -> None:
    """Run a mergekit console script installed beside this Python, offline."""
    executable = Path(sys.executable).with_name(tool)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [str(executable), *args], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise MergekitError(f"{tool} failed (exit {result.returncode}):\n{tail}")


def extract_lora(model: Path, base: Path, out: Path, max_rank: int) -> None:
    """Extract ``model - base`` as a LoRA adapter vLLM can hot-load, into ``out``."""
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
        "--quiet",
    ]
    for pattern in EXTRACT_EXCLUDES:
        args += ["-e", pattern]
    run_tool("mergekit-extract-lora", *args)
