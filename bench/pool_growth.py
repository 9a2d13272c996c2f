"""Benchmark: growing the task pool in micro-batches vs with proposals kept in flight.

Both modes run side by side in one run, on one vLLM server (the default config's
settings: SmolLM2 as scientist, judge and curator), each from a fresh pool of the seed
tasks, until it has made ``--proposals`` proposals (the pool target is set out of
reach, so neither stops early). By default that is the config's own growth phase,
``task_batch x task_rounds`` proposals (24 in ``configs/default.yaml``): the pipeline's
gain depends on how many proposals it can keep in flight, so the bench measures the
workload a run has.

(s) sequential micro-batches (the old path, ``task_phases.grow_pool_batch``): ``task_batch``
    proposals at once, then their checks, then the curator one by one, then the next
    micro-batch;
(p) pipelined (``task_flow.grow_pool``): up to the scientist's concurrency of proposals
    in flight throughout, each through its gates as soon as it arrives.

Prints each mode's wall time, proposals per minute, admitted tasks, and the server's
busy share and generated tokens/s (from its ``/metrics``), then last ``speedup: X.X``
(proposals per minute of p over s).

Usage: .venv/bin/python bench/pool_growth.py [--config configs/default.yaml] [--proposals 24]
"""

import argparse
import dataclasses
import socket
import tempfile
import time
from pathlib import Path

from acdc.context import Context
from acdc.graphs import task_flow, task_phases
from acdc.graphs.resources import close_all, resources_for
from acdc.population.bootstrap import bootstrap
from acdc.population.server import PopulationServer
from acdc.population.utilization import UtilizationSampler


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def grow(ctx: Context, mode: str, proposals: int) -> tuple[float, int, str]:
    """Grow a fresh pool by ``proposals`` proposals; (seconds, admitted, server use)."""
    res = resources_for(ctx)
    task_phases.load_seed_tasks(res)
    before = len(res.pool.active)
    sampler = UtilizationSampler([res.server.url], interval=0.5).start()
    started = time.perf_counter()
    if mode == "pipelined":
        task_flow.grow_pool(res, generation=0)
    else:
        for batch_round in range(proposals // ctx.task_batch):
            task_phases.grow_pool_batch(res, generation=0, batch_round=batch_round)
    seconds = time.perf_counter() - started
    used = sampler.stop()
    admitted = len(res.pool.active) - before
    return seconds, admitted, used.line() if used else "no server metrics"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument(
        "--proposals",
        type=int,
        default=0,
        help="proposals per mode (0 = the config's growth phase: task_batch x task_rounds)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="acdc-bench-growth-"))
    base = Context.load(args.config, runs_dir=str(work), run_id="server", vllm_port=free_port())
    # The target out of reach: both modes make exactly --proposals proposals.
    wanted = args.proposals or base.task_batch * base.task_rounds
    rounds = max(1, wanted // base.task_batch)
    base = dataclasses.replace(
        base, initial_pool=10_000, pool_max=10_000, task_rounds=rounds, benchmark_files=[]
    )
    proposals = rounds * base.task_batch
    population = bootstrap(base)
    print(
        f"workload: {proposals} proposals per mode; task_batch {base.task_batch}, "
        f"reflection rounds {base.reflection_rounds}, scientist max tokens "
        f"{base.scientist_max_tokens}; config {args.config}",
        flush=True,
    )
    rates = {}
    with PopulationServer(base, population.base_dir, work / "vllm.log") as server:
        for mode in ("sequential", "pipelined"):
            ctx = dataclasses.replace(base, run_id=mode, server_url=server.url)
            seconds, admitted, used = grow(ctx, mode, proposals)
            close_all()
            rates[mode] = proposals / (seconds / 60)
            print(
                f"({mode[0]}) {mode:<11} {seconds:7.1f} s  {rates[mode]:5.1f} proposals/min  "
                f"admitted {admitted:3d}  server: {used}",
                flush=True,
            )
    print(f"speedup: {rates['pipelined'] / rates['sequential']:.1f}")


if __name__ == "__main__":
    main()
