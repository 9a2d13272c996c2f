"""The ``acdc`` command line: each subcommand offers the settings it reads as options.

The settings come by topic (:data:`acdc.context.GROUPS`); :data:`COMMANDS` names the
topics each subcommand reads, and its ``--help`` lists their settings under one heading
per topic. A setting of another topic can still come from ``--config`` or ``ACDC_<FIELD>``.

One file over 400 lines on purpose: it is the whole command line (the parser, the
table of subcommands and one thin handler each that calls into the package), so a
reader finds every subcommand and its exit codes in one place; the work itself lives in
the modules the handlers call.
"""

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from acdc import setting_bounds
from acdc.context import GROUP_CLASSES, GROUPS, ConfigError, Context, parse_value

log = logging.getLogger("acdc")

DEMO_QUESTION = "In one sentence, why is the sky blue?"


def _add_context_options(parser: argparse.ArgumentParser, topics: Sequence[str]) -> None:
    """``--config`` and one option per setting of ``topics``, under a heading per topic."""
    parser.add_argument("--config", help="YAML file of settings (field: value)")
    hints = get_type_hints(Context)
    fields = {f.name: f for f in dataclasses.fields(Context)}
    for topic in topics:
        doc = (GROUP_CLASSES[topic].__doc__ or "").strip()
        group = parser.add_argument_group(f"{topic} settings", doc)
        for name in GROUPS[topic]:
            # argparse expands %-placeholders in help ("80 %" broke every --help).
            help_text = fields[name].metadata.get("description", "").replace("%", "%%")
            group.add_argument(
                "--" + name.replace("_", "-"),
                dest=name,
                default=None,
                metavar=name.upper(),
                help=f"{help_text} [env ACDC_{name.upper()}]",
                type=_option_parser(name, hints[name]),
            )


def _option_parser(name: str, hint: Any) -> Callable[[str], Any]:
    """Parse one option's raw string as the type of its Context field."""
    return lambda raw: parse_value(name, hint, raw)


def _count(setting: str, low: int = 0) -> Callable[[str], int]:
    """Parse a command's own integer option, within ``low`` and the bound of ``setting``."""
    high = setting_bounds.int_max(setting)

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {raw[:40]!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low}..{high:,}, got {raw[:40]}")
        return value

    return parse


def _explicit(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as options (the subcommand's own options left out)."""
    names = {f.name for f in dataclasses.fields(Context)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def _context(args: argparse.Namespace) -> Context:
    return Context.load(args.config, **_explicit(args))


def _resolved(
    args: argparse.Namespace, source: str | None, run_id: str | None = None
) -> tuple[Context, dict[str, str]]:
    """The settings of ``acdc run`` (and ``acdc config``), with each one's source.

    With ``source`` (a run id under runs_dir, resumed or forked): the run's recorded
    config.yaml, overridden by the ``--config`` file, then the options, and ``run_id``.
    """
    from acdc.rundir import RunDir, load_run_config

    explicit = _explicit(args)
    if not source:
        return Context.resolve(args.config, **explicit)
    runs_dir = Path(explicit.get("runs_dir") or Context().runs_dir)
    ctx, sources = Context.resolve(
        args.config,
        base=load_run_config(runs_dir / source),
        base_name=str(RunDir(runs_dir / source, read_only=True).config_file),
        **{**explicit, "run_id": run_id},
    )
    if run_id == source:
        sources["run_id"] = "option --resume"
    return ctx, sources


def cmd_seed(args: argparse.Namespace) -> None:
    """Prepare the base model and register the seed experts (or, with --from-data, make one)."""
    from acdc.population.bootstrap import bootstrap

    if args.from_data or args.name:
        _seed_from_data(args)
        return
    population = bootstrap(_context(args))
    print(f"base model: {population.base_dir}")
    print(f"experts:    {population.store.root}")
    print(f"seeds:      {', '.join(population.seed_ids)}")


def _seed_from_data(args: argparse.Namespace) -> None:
    """Fine-tune a seed adapter from an instruction/answer JSONL file."""
    from acdc.population.finetune import FinetuneSettings
    from acdc.population.seed import prepare_base, seed_from_data

    if not (args.from_data and args.name):
        raise ConfigError("seed: give both --from-data FILE.jsonl and --name NAME", "from_data")
    ctx = _context(args)
    cache = Path(ctx.cache_dir)
    settings = FinetuneSettings(
        steps=ctx.specialize_steps,
        learning_rate=ctx.specialize_learning_rate,
        rank=ctx.specialize_rank,
        batch_size=ctx.specialize_batch_size,
    )
    folder = seed_from_data(
        Path(args.from_data),
        args.name,
        prepare_base(ctx.base_model or None, cache),
        cache / "seeds",
        settings=settings,
        rank_cap=ctx.lora_rank,
        benchmark_files=ctx.benchmark_files,
        seed=ctx.random_seed,
    )
    print(f"seed adapter: {folder}")
    print(f"use it with:  --seed-adapters {folder}")


def cmd_breed(args: argparse.Namespace) -> None:
    """Breed one child from the given parents and print its id."""
    from acdc.population.bootstrap import bootstrap, make_breeder

    ctx = _context(args)
    population = bootstrap(ctx)
    breeder = make_breeder(ctx, population)
    started = time.perf_counter()
    record = breeder.breed(args.parents, seed=args.seed, generation=args.generation)
    log.info("breeding took %.1f s", time.perf_counter() - started)
    print(record.id)


def cmd_serve(args: argparse.Namespace) -> None:
    """Start the population server, load the chosen experts and wait for Ctrl-C."""
    from acdc.population.bootstrap import bootstrap
    from acdc.population.client import open_client
    from acdc.population.server import PopulationServer

    ctx = _context(args)
    population = bootstrap(ctx)
    to_load = args.experts or [e for e in population.store.ids() if e != ctx.served_model_name]
    with PopulationServer(ctx, population.base_dir) as server:

        async def load_all() -> None:
            async with open_client(ctx, server.urls, population.store) as client:
                for expert_id in to_load[: ctx.max_loaded_adapters]:
                    await client.ensure_loaded(expert_id)

        asyncio.run(load_all())
        print(f"serving at {server.url}/v1; model ids: {ctx.served_model_name} {' '.join(to_load)}")
        print("press Ctrl-C to stop")
        _wait_for_interrupt()


def cmd_demo(args: argparse.Namespace) -> None:
    """Bootstrap the seed, start the server, breed two children, let each answer."""
    from acdc.population.bootstrap import bootstrap, make_breeder
    from acdc.population.client import open_client
    from acdc.population.gibberish import check_expert
    from acdc.population.server import PopulationServer

    ctx = _context(args)
    population = bootstrap(ctx)
    breeder = make_breeder(ctx, population)
    seeds = population.seed_ids
    first = breeder.breed(seeds, seed=ctx.random_seed, generation=1)
    second = breeder.breed([first.id, *seeds], seed=ctx.random_seed + 1, generation=1)
    children = [first.id, second.id]
    print(f"bred {first.id} (from {', '.join(first.parents)})")
    print(f"bred {second.id} (from {', '.join(second.parents)})")
    with PopulationServer(ctx, population.base_dir) as server:

        async def ask() -> None:
            async with open_client(ctx, server.urls, population.store) as client:
                for expert_id in [ctx.served_model_name, *children]:
                    if expert_id != ctx.served_model_name:
                        verdict = await check_expert(client, expert_id)
                        status = "passes" if verdict.ok else f"FAILS ({verdict.reason})"
                        print(f"gibberish check: {expert_id} {status}")
                    messages = [{"role": "user", "content": DEMO_QUESTION}]
                    answer = await client.chat(expert_id, messages, max_tokens=64)
                    print(f"\n[{expert_id}] {DEMO_QUESTION}\n  -> {answer.text.strip()}")

        asyncio.run(ask())
    print(f"\ndemo done; experts are in {population.store.root}")


def _wait_for_interrupt() -> None:
    stop = False

    def handler(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, handler)
    try:
        while not stop:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass


def cmd_run(args: argparse.Namespace) -> None:
    """Run the coevolution loop (--resume RUN_ID, or --fork RUN_ID --at-generation K)."""
    from acdc.runner import run

    if args.fork and (args.resume or args.at_generation is None or not args.run_id):
        raise ConfigError("fork: give --fork RUN --at-generation K --run-id NEW (no --resume)")
    source = args.resume or args.fork
    ctx, _ = _resolved(args, source, args.run_id if args.fork else args.resume)
    if args.fork:
        from acdc.graphs.fork import fork_run
        from acdc.runner import checkpointer

        with (
            checkpointer(dataclasses.replace(ctx, run_id=args.fork)) as old,
            checkpointer(ctx) as new,
        ):
            fork_run(ctx, args.fork, args.at_generation, old, new)
        print(f"run {ctx.run_id}: forked from {args.fork} after generation {args.at_generation}")
    run(ctx, resume=bool(source))


def _run_context(args: argparse.Namespace) -> Context:
    """Settings of the run ``--run`` (an id under runs_dir, or a run folder).

    The run's recorded settings (its base model, rank cap, server), overridden by the
    ``--config`` file's values, then by the options given.
    """
    from acdc.rundir import RunDir, load_run_config

    explicit = _explicit(args)
    folder = Path(args.run)
    if not RunDir(folder, read_only=True).config_file.is_file():
        folder = Path(explicit.get("runs_dir") or Context().runs_dir) / args.run
    where = {"runs_dir": str(folder.parent), "run_id": folder.name}
    recorded = load_run_config(folder)
    base_name = str(RunDir(folder, read_only=True).config_file)
    overrides = {**explicit, **where}
    return Context.load(args.config, base=recorded, base_name=base_name, **overrides)


def cmd_taskforce(args: argparse.Namespace) -> None:
    """serve: the run's task force as an OpenAI-compatible endpoint (/v1/chat/completions)."""
    from acdc.graphs.webapp import serve

    serve(_run_context(args), args.host, args.port)


def cmd_eval(args: argparse.Namespace) -> None:
    """coverage: the run's task force and its baselines on a JSONL benchmark."""
    from acdc.graphs.coverage_eval import evaluate_coverage

    ctx = _run_context(args)
    evaluate_coverage(ctx, Path(args.benchmark), args.n or ctx.taskforce_size)


def cmd_plan(args: argparse.Namespace) -> None:
    """Validate a config and estimate its calls, tokens, hours and dollars; starts nothing."""
    ctx = _context(args)  # before the imports below (seconds): a bad setting fails at once
    import json

    from acdc.planner import plan
    from acdc.planner_measure import measure
    from acdc.planner_render import render, text
    from acdc.runner import preflight

    preflight(ctx, reach=False)
    engines = ctx.tensor_parallel_size * ctx.data_parallel_size
    if args.gpus and not ctx.attached_urls and engines > args.gpus:
        raise ConfigError(
            f"tensor_parallel_size x data_parallel_size = {engines} GPUs, but --gpus {args.gpus}"
        )
    measured = measure(Path(args.from_run)) if args.from_run else None
    data = render(ctx, plan(ctx, measured), args.gpus, args.gpu_tokens_per_s)
    print(json.dumps(data, indent=2) if args.json else text(data))


def cmd_report(args: argparse.Namespace) -> None:
    """Write the HTML report of a run (figures embedded) into its report/ folder."""
    from acdc.report import write_report
    from acdc.rundir import RunDir

    folder = Path(args.run)
    if not RunDir(folder, read_only=True).is_run():
        # write_report would create report/ in any folder, even a mistyped one.
        raise ConfigError(f"{folder} is not an acdc run folder (no config.yaml or metrics.jsonl)")
    started = time.perf_counter()
    path = write_report(folder)
    print(f"report: {path} ({time.perf_counter() - started:.1f} s)")


def cmd_config(args: argparse.Namespace) -> None:
    """Print every effective setting by topic, with its source; the output loads as --config.

    Sources: default, environment ACDC_<FIELD>, file (--config), option, or run (the
    recorded config.yaml of --resume RUN), merged exactly as ``acdc run`` merges them.
    """
    ctx, sources = _resolved(args, args.resume, args.resume)
    for topic, names in GROUPS.items():
        print(f"# [{topic}] {(GROUP_CLASSES[topic].__doc__ or '').strip()}")
        lines = [f"{name}: {_as_yaml(getattr(ctx, name))}" for name in names]
        width = max(map(len, lines))
        for line, name in zip(lines, names, strict=True):
            print(f"{line.ljust(width)}  # {sources[name]}")
        print()


def _as_yaml(value: Any) -> str:
    """``value`` as one line of YAML that reads back as the same value."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31, allow_unicode=True)
    return text.rstrip("\n").removesuffix("\n...")


ALL_TOPICS = tuple(GROUPS)
RUN_FOLDER_TOPICS = ("run", "serving", "breeding", "judge", "taskforce", "storage")
"""What a run's task force reads: the run's experts, their server, the judge selector."""

COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], None], str, tuple[str, ...]]] = {
    "run": (cmd_run, "run the coevolution loop (the main job)", ALL_TOPICS),
    "seed": (
        cmd_seed,
        "prepare the base model and seed experts",
        ("run", "serving", "breeding", "curator", "storage"),
    ),
    "breed": (cmd_breed, "breed a child expert from parents", ("serving", "breeding", "storage")),
    "serve": (
        cmd_serve,
        "start the population server and keep it running",
        ("serving", "breeding", "storage"),
    ),
    "demo": (
        cmd_demo,
        "seed, serve, breed two children and let each answer a question",
        ("run", "serving", "breeding", "storage"),
    ),
    "taskforce": (
        cmd_taskforce,
        "serve a run's task force as an OpenAI-compatible model",
        RUN_FOLDER_TOPICS,
    ),
    "eval": (
        cmd_eval,
        "evaluate a run's task force and its baselines on a benchmark",
        RUN_FOLDER_TOPICS,
    ),
    "report": (cmd_report, "write the HTML report of a run", ()),
    "plan": (
        cmd_plan,
        "validate a config and estimate its calls, tokens, time and dollars",
        ALL_TOPICS,
    ),
    "config": (cmd_config, "print every effective setting with its source", ALL_TOPICS),
}
"""Each subcommand: its function, its one-line help, and the setting topics it reads."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per entry of COMMANDS."""
    parser = argparse.ArgumentParser(prog="acdc", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (func, help_text, topics) in COMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=func.__doc__)
        if topics:
            _add_context_options(child, topics)
        if name == "seed":
            child.add_argument(
                "--from-data",
                metavar="FILE.jsonl",
                help='fine-tune a seed adapter from {"instruction", "answer"} lines',
            )
            child.add_argument("--name", help="name of that seed adapter (with --from-data)")
        if name == "breed":
            child.add_argument("--parents", nargs="+", required=True, help="parent expert ids")
            child.add_argument(
                "--seed", type=_count("random_seed"), default=0, help="random seed of this child"
            )
            child.add_argument(
                "--generation", type=_count("generations"), default=1, help="generation number"
            )
        if name == "run":
            child.add_argument("--resume", metavar="RUN_ID", help="continue this run")
            child.add_argument(
                "--fork", metavar="RUN_ID", help="start a new run (--run-id) from this run's state"
            )
            child.add_argument(
                "--at-generation",
                type=_count("generations"),
                metavar="K",
                help="the generation --fork starts after",
            )
        if name == "report":
            child.add_argument("run", help="run folder")
        if name == "config":
            child.add_argument(
                "--resume", metavar="RUN_ID", help="the settings this run would resume with"
            )
        if name == "serve":
            child.add_argument("--experts", nargs="*", help="experts to load (default: all)")
        if name == "plan":
            child.add_argument(
                "--gpus", type=_count("gpus", 1), default=1, help="GPUs serving the run"
            )
            child.add_argument(
                "--gpu-tokens-per-s", type=float, help="generated tokens per second per GPU"
            )
            child.add_argument("--from-run", help="a previous run folder: measured tokens/call")
            child.add_argument("--json", action="store_true", help="print the plan as JSON")
        if name in ("taskforce", "eval"):
            actions = ["serve"] if name == "taskforce" else ["coverage"]
            child.add_argument("action", choices=actions, help="what to do")
            child.add_argument(
                "--run", required=True, help="run id under --runs-dir, or a run folder"
            )
        if name == "taskforce":
            child.add_argument("--host", default="127.0.0.1", help="address to listen on")
            child.add_argument(
                "--port", type=_count("taskforce_port", 1), default=8012, help="port to listen on"
            )
        if name == "eval":
            child.add_argument("--benchmark", required=True, help="JSONL benchmark file")
            child.add_argument(
                "--n",
                type=_count("taskforce_size", 1),
                help="task force size (default: taskforce_size)",
            )
        child.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``acdc`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "httpx2"):  # one INFO line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        args.func(args)
    except (ConfigError, OSError, KeyError, ValueError, RuntimeError) as err:
        log.error("%s", err)
        sys.exit(2)


if __name__ == "__main__":
    main()
