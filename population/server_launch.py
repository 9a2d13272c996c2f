"""How the population server is launched: vLLM's command line and its environment.

The command runs vLLM's OpenAI-compatible server module with runtime LoRA (unless a
benchmark serves plain weights), vLLM's own parallelism flags and the user's extra
arguments. The environment keeps vLLM offline and lets adapters be loaded at run time.

On the CPU build three settings shape how vLLM uses the cores (all reach its processes
through their environment): ``cpu_reserved_cores`` (``VLLM_CPU_NUM_OF_RESERVED_CPU``:
cores kept from the model's OpenMP threads for the scheduler), ``cpu_threads_bind``
(``VLLM_CPU_OMP_THREADS_BIND``: which cores those threads are pinned to, or ``nobind``)
and ``vllm_preload`` (``LD_PRELOAD`` of tcmalloc and/or Intel OpenMP when present on
the machine, :func:`preload_libraries`). Each start logs what it chose and why.
"""

import contextlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from acdc.context import Context


def launch_command(
    ctx: Context, model_dir: Path, device: Literal["cpu", "gpu"], lora: bool = True
) -> list[str]:
    """The vLLM server command line (the ``vllm`` console script fails for vllm-cpu).

    ``lora=False`` serves plain weights (benchmarks of merged experts); on the CPU build
    that also keeps torch.compile, which vLLM turns off when LoRA is enabled.
    """
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        ctx.served_model_name,
        "--host",
        ctx.vllm_host,
        "--port",
        str(ctx.vllm_port),
        "--max-model-len",
        str(ctx.max_model_len),
        "--dtype",
        server_dtype(ctx.dtype, device),
        "--max-num-seqs",
        str(ctx.max_num_seqs),
        "--disable-uvicorn-access-log",
        # Compact JSON under guided decoding: with free whitespace a small model can pad
        # forever between fields; without it the schema's length caps bound every reply.
        "--structured-outputs-config",
        '{"backend": "xgrammar", "disable_any_whitespace": true}',
    ]
    if lora:
        command += [
            "--enable-lora",
            "--max-loras",
            str(ctx.max_loras),
            "--max-cpu-loras",
            str(ctx.max_loaded_adapters),
            "--max-lora-rank",
            str(ctx.lora_rank),
        ]
    if device == "gpu":
        command += ["--gpu-memory-utilization", str(ctx.gpu_memory_utilization)]
    return command + parallel_args(ctx) + list(ctx.vllm_extra_args)


def parallel_args(ctx: Context) -> list[str]:
    """The flags of vLLM's own parallelism: tensor parallel engines, data parallel copies.

    Data parallel engines sit behind the one endpoint. vLLM's data parallel client sends
    a runtime ``load_lora_adapter`` to every engine (``add_lora`` on all of them), and
    each request carries the adapter's path, so no engine can miss an adapter and the
    client needs nothing per engine (checked on the CPU build with two engines). With the
    Ray backend the engines beyond ``data_parallel_size_local`` start on the other nodes
    of the Ray cluster.
    """
    args: list[str] = []
    if ctx.tensor_parallel_size > 1:
        args += ["--tensor-parallel-size", str(ctx.tensor_parallel_size)]
    if ctx.data_parallel_size > 1:
        args += ["--data-parallel-size", str(ctx.data_parallel_size)]
        if ctx.data_parallel_size_local:
            args += ["--data-parallel-size-local", str(ctx.data_parallel_size_local)]
    if ctx.data_parallel_backend == "ray":
        args += ["--data-parallel-backend", "ray"]
    return args


def server_dtype(setting: str, device: Literal["cpu", "gpu"]) -> str:
    """Resolve ``auto``: float32 on CPU, bfloat16 on GPU.

    On CPU, vLLM's bfloat16 linear layers fall back from oneDNN to a path about 6x
    slower than float32 (measured on the 2-core CI machines).
    """
    if setting != "auto":
        return setting
    return "float32" if device == "cpu" else "bfloat16"


TCMALLOC = "libtcmalloc_minimal.so.4"
"""Debian's ``libtcmalloc-minimal4`` (tcmalloc without its profiler)."""


TCMALLOC_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
)


IOMP = "libiomp5.so"
"""Intel OpenMP, from the PyPI package ``intel-openmp`` (installed under the venv)."""


def find_tcmalloc() -> Path | None:
    """``libtcmalloc_minimal.so.4`` as the dynamic linker knows it, or at a usual path."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listing = subprocess.run(
            [ldconfig, "-p"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        for line in listing.splitlines():
            name, _, target = line.strip().partition(" => ")
            if name.split(" ", 1)[0] == TCMALLOC and Path(target).is_file():
                return Path(target)
    for folder in TCMALLOC_DIRS:
        if (Path(folder) / TCMALLOC).is_file():
            return Path(folder) / TCMALLOC
    return None


def find_iomp() -> Path | None:
    """``libiomp5.so`` of the ``intel-openmp`` package in this environment, if installed.

    The wheel puts it outside site-packages (``<venv>/lib/``); its file list says where.
    """
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("intel-openmp")
        for file in dist.files or []:
            if file.name == IOMP:
                path = Path(str(dist.locate_file(file))).resolve()
                if path.is_file():
                    return path
    for folder in (Path(sys.prefix) / "lib", Path(sys.prefix) / "opt" / "compiler" / "lib"):
        if (folder / IOMP).is_file():
            return folder / IOMP
    return None


@dataclass(frozen=True)
class Preload:
    """The libraries a CPU server start preloads, and why (for the log)."""

    paths: list[Path]
    reason: str


def preload_libraries(setting: str) -> Preload:
    """What ``vllm_preload`` preloads on this machine: ``auto|none|tcmalloc|iomp|both``.

    vLLM's CPU worker warns when neither library is in ``LD_PRELOAD``; with Intel OpenMP
    preloaded it also sets ``KMP_BLOCKTIME=1`` and the other KMP settings (threads stop
    spinning at barriers soon, which matters when other processes share the cores).
    Measured on a 2-core Xeon (README, Benchmarks): neither beat the run-to-run noise,
    so the default is ``none``. ``auto`` takes whichever is present; a named library
    that is missing is logged and left out, never fatal.
    """
    if setting == "none":
        return Preload([], "vllm_preload none: nothing preloaded")
    wanted = {"auto": ("tcmalloc", "iomp"), "both": ("tcmalloc", "iomp")}.get(setting, (setting,))
    found = {"tcmalloc": find_tcmalloc(), "iomp": find_iomp()}
    hints = {
        "tcmalloc": f"{TCMALLOC} not found (Debian: apt install libtcmalloc-minimal4)",
        "iomp": f"{IOMP} not found (pip install intel-openmp)",
    }
    paths: list[Path] = []
    notes: list[str] = []
    for name in wanted:
        path = found[name]
        if path is None:
            notes.append(hints[name])
        else:
            paths.append(path)
            notes.append(f"{name} {path}")
    return Preload(paths, f"vllm_preload {setting}: " + "; ".join(notes))


def launch_env(
    ctx: Context, device: Literal["cpu", "gpu"], preload: Preload | None = None
) -> dict[str, str]:
    """Environment of the server process: offline, runtime LoRA updates allowed.

    On CPU it also carries the thread settings (``cpu_reserved_cores``,
    ``cpu_threads_bind``) and ``LD_PRELOAD`` of ``preload`` (before any the user set).
    """
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "VLLM_NO_USAGE_STATS": "1",
        # Read by acdc's vLLM plugin in the server processes (population/lora_kernel.py).
        "ACDC_LORA_KERNEL": ctx.lora_kernel,
        "ACDC_LORA_COMPILE": str(ctx.lora_compile).lower(),
    }
    if device == "cpu":
        env["VLLM_CPU_KVCACHE_SPACE"] = str(ctx.kv_cache_gib)
        # vLLM keeps a core per engine out of its OpenMP threads for the scheduler; on a
        # small machine that core is better spent on the model (see cpu_reserved_cores).
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(ctx.cpu_reserved_cores)
        # Where the model's OpenMP threads are pinned: vLLM's "auto" pins them to the
        # first cores, which a busy neighbour may hold; "nobind" lets the OS move them.
        if ctx.cpu_threads_bind:
            env["VLLM_CPU_OMP_THREADS_BIND"] = ctx.cpu_threads_bind
        if preload is not None and preload.paths:
            mine = [str(p) for p in preload.paths]
            theirs = [p for p in env.get("LD_PRELOAD", "").split(":") if p and p not in mine]
            env["LD_PRELOAD"] = ":".join(mine + theirs)
    return env
