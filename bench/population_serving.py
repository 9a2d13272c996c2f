"""Benchmark: serve a population of experts three ways on one workload, in one run.

(a) acdc's design: one vLLM server, every expert hot-loaded as a LoRA adapter, all
    requests in flight together;
(b) full weights one expert at a time: merge each adapter into the base (PEFT), start a
    server on the merged checkpoint, answer its prompts, stop (what in-place weight
    swapping becomes with current vLLM);
(c) the ceiling: the base model alone, no LoRA, answering the same number of requests.

Every request generates exactly ``--max-tokens`` tokens (greedy, EOS ignored). Prints
wall time and tokens/s of each, ``ceiling: Y %`` (serving tokens/s of a over c), the
serving time per generated token of a and c (what LoRA adds to each token) and last
``speedup: X.X`` (time of b over time of a, server starts included in both). Also times
one breeding step (crossover + mutation + save) on the seed.

The first line names the CPU (model, AVX-512 / AVX2 flags): machines of one kind differ,
so compare only ratios taken in one run. ``--background-load K`` measures (c), (a) and
the breeding step twice in the same run, quiet and then with K busy neighbour processes
(pure-Python loops, one per core, pinned to the first cores or with ``--unpinned``
placed by the OS, ``bench/cpu_load.py``), and prints ``quiet:``,
``loaded:`` and ``loaded/quiet:`` for each (the loaded requests use other prompts of
the same length, so the server's prefix cache does not favour them). Last, the bench
starts the LoRA server once more, its caches warm, and prints ``warm start: S s``
(launch to the first generated token). Settings of the server and of torch in this
process (``vllm_preload``, ``cpu_threads_bind``, ``cpu_reserved_cores``,
``torch_threads``) come from ``ACDC_<NAME>`` environment variables as for a run.

Usage: .venv/bin/python bench/population_serving.py [--experts 8] [--prompts 32] ...
"""

import argparse
import asyncio
import dataclasses
import os
import socket
import tempfile
import time
from pathlib import Path

from cpu_load import background_load, compare, cpu_description

from acdc.context import Context
from acdc.population.bootstrap import Population, bootstrap, make_breeder
from acdc.population.breeding import Breeder
from acdc.population.client import PopulationClient
from acdc.population.server import PopulationServer

TOPICS = [
    "photosynthesis",
    "the water cycle",
    "gravity",
    "volcanoes",
    "the moon's phases",
    "rainbows",
    "magnets",
    "sound waves",
    "the immune system",
    "tides",
    "earthquakes",
    "electric circuits",
    "the seasons",
    "fossils",
    "clouds",
    "the heart",
    "plate tectonics",
    "friction",
    "evaporation",
    "the solar system",
    "DNA",
    "bees and pollination",
    "batteries",
    "lightning",
    "the internet",
    "compound interest",
    "prime numbers",
    "recycling",
    "black holes",
    "vaccines",
    "the printing press",
    "glaciers",
]


def prompts(count: int, loaded: bool = False) -> list[str]:
    """The workload's prompts; ``loaded``: the same length in other words (no cache hits)."""
    verb = "Describe" if loaded else "Explain"
    return [f"{verb} {TOPICS[i % len(TOPICS)]} to a curious child." for i in range(count)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve_all(
    url: str, population: Population, jobs: list[tuple[str, str]], max_tokens: int, base_id: str
) -> tuple[float, int]:
    """Send every (model, prompt) job at once; return (seconds, generated tokens)."""
    # Every request of a mode finishes near the end of its batch, so a per-request timeout
    # shorter than the whole mode (a busy machine) resends all of them and doubles the
    # work: wait as long as the mode takes, and never resend.
    client = PopulationClient(
        url, population.store, base_id=base_id, max_loaded=64, timeout=3600.0, retries=0
    )
    try:
        for model in sorted({m for m, _ in jobs} - {base_id}):
            await client.ensure_loaded(model)
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                client.chat(
                    model,
                    [{"role": "user", "content": prompt}],
                    max_tokens=max_tokens,
                    ignore_eos=True,
                )
                for model, prompt in jobs
            )
        )
        return time.perf_counter() - started, sum(r.completion_tokens for r in results)
    finally:
        await client.aclose()


def merge_expert(population: Population, expert_id: str, out_dir: Path) -> None:
    """Full weights of one expert: its adapter merged into the base with PEFT."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(str(population.base_dir), dtype=torch.bfloat16)
    adapter = population.store.adapter_dir(expert_id)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out_dir))
    AutoTokenizer.from_pretrained(str(population.base_dir)).save_pretrained(str(out_dir))


def report(name: str, seconds: float, tokens: int, serve_seconds: float) -> None:
    print(
        f"{name:<44} wall {seconds:7.1f} s   serving {serve_seconds:6.1f} s   "
        f"{tokens / serve_seconds:7.1f} tokens/s",
        flush=True,
    )


def breeding_step(breeder: Breeder, parents: list[str], seed: int) -> tuple[str, float]:
    """One crossover + mutation + save; returns the child and the seconds it took."""
    started = time.perf_counter()
    child = breeder.breed(parents, seed=seed, generation=1).id
    return child, time.perf_counter() - started


def serve_quiet_and_loaded(
    url: str,
    population: Population,
    jobs: list[tuple[str, str]],
    loaded_jobs: list[tuple[str, str]],
    args: argparse.Namespace,
    base_id: str,
) -> tuple[tuple[float, int], tuple[float, int] | None]:
    """(seconds, tokens) of ``jobs`` quiet, then of ``loaded_jobs`` with the neighbours.

    With neighbours, one untimed request per model first: a fresh server's first batch
    pays one-time costs that would otherwise count against the quiet half only.
    """
    if args.background_load:
        warm = [(model, "Hello!") for model in sorted({m for m, _ in jobs})]
        asyncio.run(serve_all(url, population, warm, args.max_tokens, base_id))
    quiet = asyncio.run(serve_all(url, population, jobs, args.max_tokens, base_id))
    if not args.background_load:
        return quiet, None
    with background_load(args.background_load, args.load_max_seconds, not args.unpinned):
        loaded = asyncio.run(serve_all(url, population, loaded_jobs, args.max_tokens, base_id))
    return quiet, loaded


def warm_start(ctx: Context, population: Population, log: Path, base_id: str) -> float:
    """Seconds from launching the LoRA server again (caches warm) to its first token."""
    started = time.perf_counter()
    with PopulationServer(ctx, population.base_dir, log) as server:
        asyncio.run(serve_all(server.url, population, [(base_id, "Hello!")], 1, base_id))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=32, help="prompts per expert")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rank", type=int, default=16, help="adapter rank cap")
    parser.add_argument("--max-num-seqs", type=int, default=256)
    parser.add_argument("--skip-full-weights", action="store_true", help="skip (b)")
    parser.add_argument("--lora-kernel", default=None, help="grouped or vllm (default: config)")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--background-load",
        type=int,
        default=0,
        metavar="K",
        help="also measure with K busy neighbour processes, one per core (0: quiet only)",
    )
    parser.add_argument(
        "--unpinned",
        action="store_true",
        help="let the OS place the neighbours (as a user's own busy program) instead of "
        "pinning one to each of the first cores",
    )
    parser.add_argument(
        "--load-max-seconds",
        type=float,
        default=3600.0,
        help="the neighbours end by themselves after this long, whatever happens",
    )
    args = parser.parse_args()

    print(cpu_description(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="acdc-bench-"))
    overrides = {"lora_kernel": args.lora_kernel} if args.lora_kernel else {}
    ctx = Context(
        runs_dir=str(work),
        run_id="bench",
        vllm_port=args.port or free_port(),
        lora_rank=args.rank,
        max_loras=args.experts,
        max_loaded_adapters=max(args.experts, 16),
        max_num_seqs=args.max_num_seqs,
        **overrides,
    )
    print(
        f"workload: {args.experts} experts x {args.prompts} prompts, {args.max_tokens} new "
        f"tokens each, greedy; rank {args.rank}, max-num-seqs {args.max_num_seqs}, "
        f"lora kernel {ctx.lora_kernel}; {os.cpu_count()} CPUs; server: cpu_reserved_cores "
        f"{ctx.cpu_reserved_cores}, cpu_threads_bind {ctx.cpu_threads_bind or 'default'}, "
        f"vllm_preload {ctx.vllm_preload}; torch_threads {ctx.torch_threads}",
        flush=True,
    )
    population = bootstrap(ctx)
    import torch  # loaded by bootstrap already; the count it left is what breeding uses

    print(f"torch threads in this process: {torch.get_num_threads()}", flush=True)
    breeder = make_breeder(ctx, population)
    started = time.perf_counter()
    first = breeder.breed(population.seed_ids, seed=0, generation=1)
    print(f"breeding step (mutation of the seed + save):   {time.perf_counter() - started:5.2f} s")
    experts = [first.id]
    for index in range(1, args.experts):
        child, seconds = breeding_step(breeder, [experts[-1], population.seed_ids[0]], index)
        experts.append(child)
        if index == 1:
            print(f"breeding step (crossover + mutation + save):  {seconds:5.2f} s")
            breed_quiet = seconds
    neighbours = ""
    if args.background_load:
        if args.experts < 2:
            _, breed_quiet = breeding_step(breeder, [experts[0], population.seed_ids[0]], 10_000)
        with background_load(
            args.background_load, args.load_max_seconds, not args.unpinned
        ) as cores:
            count = args.background_load if args.unpinned else len(cores)
            where = "unpinned, on" if args.unpinned else "on"
            neighbours = f"{count} busy neighbour{'s' * (count != 1)} {where} core(s) {cores}"
            _, breed_loaded = breeding_step(breeder, [experts[0], population.seed_ids[0]], 10_001)
        compare("breeding step", breed_quiet, breed_loaded, "s", neighbours)
    texts = prompts(args.prompts)
    jobs = [(expert, text) for text in texts for expert in experts]
    loaded_jobs = [(expert, text) for text in prompts(args.prompts, True) for expert in experts]
    base_id = ctx.served_model_name

    # (c) the ceiling: base model, no LoRA, same number of requests.
    started = time.perf_counter()
    with PopulationServer(ctx, population.base_dir, work / "c.log", lora=False) as server:
        print(f"server start (c): {time.perf_counter() - started:.1f} s", flush=True)
        (c_serve, c_tokens), c_loaded = serve_quiet_and_loaded(
            server.url,
            population,
            [(base_id, text) for _, text in jobs],
            [(base_id, text) for _, text in loaded_jobs],
            args,
            base_id,
        )
    c_wall = time.perf_counter() - started
    report("(c) ceiling: base model alone", c_wall, c_tokens, c_serve)
    if c_loaded is not None:
        loaded_rate = c_loaded[1] / c_loaded[0]
        compare("base alone (c)", c_tokens / c_serve, loaded_rate, "tok/s", neighbours)

    # (a) one server, every expert a hot-loaded adapter.
    started = time.perf_counter()
    with PopulationServer(ctx, population.base_dir, work / "a.log") as server:
        (a_serve, a_tokens), a_loaded = serve_quiet_and_loaded(
            server.url, population, jobs, loaded_jobs, args, base_id
        )
    a_wall = time.perf_counter() - started
    report("(a) one server, all experts as LoRA adapters", a_wall, a_tokens, a_serve)
    if a_loaded is not None:
        loaded_rate = a_loaded[1] / a_loaded[0]
        compare("LoRA population (a)", a_tokens / a_serve, loaded_rate, "tok/s", neighbours)

    if not args.skip_full_weights:
        # (b) one expert at a time, full merged weights, one server start each.
        started = time.perf_counter()
        b_serve, b_tokens = 0.0, 0
        for expert in experts:
            merged = work / f"merged-{expert}"
            merge_expert(population, expert, merged)
            # Eager mode spares each start the ~70 s torch.compile costs on CPU, for a
            # serving speed within 5 % of compiled: the fairest setting for (b).
            one = dataclasses.replace(
                ctx, served_model_name=expert, vllm_extra_args=["--enforce-eager"]
            )
            with PopulationServer(one, merged, work / f"b-{expert}.log", lora=False) as server:
                own_jobs = [(expert, text) for text in texts]
                seconds, tokens = asyncio.run(
                    serve_all(server.url, population, own_jobs, args.max_tokens, expert)
                )
            b_serve += seconds
            b_tokens += tokens
        b_wall = time.perf_counter() - started
        report("(b) full weights, one expert at a time", b_wall, b_tokens, b_serve)

    print(f"warm start: {warm_start(ctx, population, work / 'warm.log', base_id):.1f} s")
    print(f"ceiling: {100 * (a_tokens / a_serve) / (c_tokens / c_serve):.0f} %")
    base_ms, lora_ms = 1000 * c_serve / c_tokens, 1000 * a_serve / a_tokens
    print(
        f"serving time per generated token: base alone {base_ms:.2f} ms, LoRA population "
        f"{lora_ms:.2f} ms (+{lora_ms - base_ms:.2f} ms; bench/lora_step.py times the "
        "LoRA products of one step alone)"
    )
    if not args.skip_full_weights:
        print(f"speedup: {b_wall / a_wall:.1f}")


if __name__ == "__main__":
    main()
