"""What the CPU is, and busy neighbour processes that load it, for the serving bench.

Machines of one kind differ (an AVX-512 Xeon one session, an AVX2-only EPYC the next),
so every figure is printed beside the CPU's model and vector flags, and only ratios
taken in one run are compared. A shared machine is the usual one: ``background_load``
starts K CPU-bound pure-Python loops, one per core (pinned, cores in order, or left to
the OS scheduler as a user's own busy program is), for the "loaded" half of a
measurement, and always stops them.
"""

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

BUSY_LOOP = """
import ctypes, signal, sys, time
try:  # die with the bench (Linux): PR_SET_PDEATHSIG
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)
except (OSError, AttributeError):
    pass
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    for _ in range(200_000):
        pass
"""
"""A pure-Python CPU-bound loop that ends by itself after ``argv[1]`` seconds."""


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``<model name>; avx512: yes (avx512f, ...), avx2: yes; N cores`` for the top line."""
    model, flags = "unknown CPU", set[str]()
    with contextlib.suppress(OSError):
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    avx512 = sorted(f for f in flags if f.startswith("avx512"))
    shown = f"yes ({', '.join(avx512)})" if avx512 else "no"
    avx2 = "yes" if "avx2" in flags else "no"
    return f"CPU: {model}; avx512: {shown}; avx2: {avx2}; {usable_cores()} cores usable"


def usable_cores() -> list[int]:
    """The cores this process may run on, in order."""
    return sorted(os.sched_getaffinity(0))


@contextlib.contextmanager
def background_load(count: int, max_seconds: float, pinned: bool = True) -> Iterator[list[int]]:
    """Run ``count`` busy neighbours (at most one per core) while the block runs.

    Pinned, each runs on its own core, the first cores first (those vLLM's CPU build
    pins its OpenMP threads to by default); unpinned, the OS moves them between cores
    as it moves any other program, which disturbs every pinned thread in turn. They are
    bounded three ways: killed when the
    block ends (in a ``finally``), dead with the bench (``PR_SET_PDEATHSIG``), and ending
    by themselves after ``max_seconds`` whatever happens.

    Yields:
        The cores the neighbours run on (pinned) or may run on (unpinned).
    """
    cores = usable_cores()[: max(0, count)]
    neighbours: list[subprocess.Popen[bytes]] = []
    try:
        for core in cores:
            process = subprocess.Popen(
                [sys.executable, "-c", BUSY_LOOP, str(max_seconds)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
            neighbours.append(process)
            if pinned:
                os.sched_setaffinity(process.pid, {core})
        time.sleep(0.5)  # let them reach their loops before the measurement starts
        yield cores if pinned else usable_cores()
    finally:
        for process in neighbours:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        for process in neighbours:
            process.wait(timeout=30)


def compare(name: str, quiet: float, loaded: float, unit: str, neighbours: str) -> None:
    """Print the ``quiet:``, ``loaded:`` and ``loaded/quiet:`` lines of one measurement."""
    digits = 2 if unit == "s" else 1
    print(f"{name}, quiet: {quiet:.{digits}f} {unit}", flush=True)
    print(f"{name}, loaded: {loaded:.{digits}f} {unit} ({neighbours})", flush=True)
    print(f"{name}, loaded/quiet: {loaded / quiet:.2f}", flush=True)
