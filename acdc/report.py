"""``acdc report RUN``: one self-contained HTML page that shows how a run is going.

A run folder is exact but hard to read at a glance: JSON logs, archives, one file per
expert and per task. The report turns it into six figures (progress, the task force by
capability, a map of the task pool, the survivors' lineage, where tokens and time go,
and whether the two populations coevolve) and a table of the numbers of each
generation. The PNGs are embedded in the HTML as data URIs, so the one file can be
mailed or opened offline; they are also written next to it. Nothing of the run but its
``report/`` folder is written, so a report can be made while the run goes on; what it
shows is read by ``acdc/report_data.py`` (with the run's recorded settings), and a
figure without data says so instead of failing.
"""

import base64
import datetime as dt
import html
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
from pydantic import ValidationError

from acdc import atomic, plots
from acdc.agents.calibration import load_calibration
from acdc.population.coverage import coverage, coverage_by_capability
from acdc.population.diversity import gains_text
from acdc.report_data import RunData, Skills, load_run, skills
from acdc.rundir import RunDir
from acdc.tasks import Task

log = logging.getLogger(__name__)

EmbedFn: TypeAlias = Callable[[list[str]], Sequence[Sequence[float] | np.ndarray]]
"""Texts in, one embedding vector per text out (a ChromaDB embedding function fits)."""

FIGURES: dict[str, tuple[str, str]] = {  # captions name the run's settings in braces
    "progress.png": (
        "Progress",
        "Global coverage (archive and seeds on every task ever active) and the archive's "
        "global best fitness per generation (solid), beside the same figures on the active "
        "pool alone (dashed), which rise whenever the pool sheds tasks nobody passes.",
    ),
    "taskforce_radar.png": (
        "Task force by capability",
        "Share of tasks passed per capability by the {taskforce_size} experts picked by "
        "greedy coverage over all tasks ever active (the seed always in), and by them together.",
    ),
    "task_pool.png": (
        "Task pool",
        "Tasks embedded with MiniLM and projected on two principal components; color is the "
        "generation created, circles were accepted, crosses rejected.",
    ),
    "lineage.png": (
        "Lineage",
        "Survivors of the latest archive (stars) and their ancestors; arrows go from parent "
        "to child, colored by the operators that made the child.",
    ),
    "roles.png": ("Cost", "Tokens per role and seconds per phase in each generation."),
    "dynamics.png": (
        "Coevolution",
        "Left: the archive's mean pass rate on the active pool (band: spread across tasks) "
        "and the archive's and the seed's fitness on the same tasks. Right: tasks admitted "
        "per adaptation kind and retired per cause, and discoveries (tasks some archive "
        "member passes and the seed fails).",
    ),
}


def _task_text(task: dict[str, Any]) -> str:
    """The text the task index embeds; built by hand for a candidate that is not a valid Task."""
    from acdc.vectorstore.tasks import task_text  # here: it loads chromadb

    try:
        return str(task_text(Task.model_validate(task)))
    except ValidationError:
        instances = task.get("instances") or [{}]
        first = instances[0] if isinstance(instances[0], dict) else {}
        return f"{task.get('description', '')}\n\n{first.get('instruction', '')}"


def _task_pool_png(data: RunData, embed: EmbedFn | None) -> bytes:
    """Embed accepted and rejected tasks, project them, and plot them."""
    entries = [(t, int(t.get("generation") or 0), True) for t in data.tasks.values()]
    entries += [
        (r["task"], int(r.get("generation", r["task"].get("generation")) or 0), False)
        for r in data.rejected
    ]
    if not entries:
        return plots.task_pool_png(np.zeros((0, 2)), [], [])
    try:
        if embed is None:
            # chromadb and the MiniLM model: loaded only when no embedding function is given
            from acdc.vectorstore.embeddings import make_embedding_function

            embed = make_embedding_function()
        vectors = np.asarray(embed([_task_text(task) for task, _, _ in entries]), dtype=float)
    except Exception as exc:  # a missing model must not cost the rest of the report
        return plots.task_pool_png(np.zeros((0, 2)), [], [], note=f"no embeddings: {exc}")
    return plots.task_pool_png(vectors, [g for _, g, _ in entries], [a for _, _, a in entries])


def lineage_nodes(data: RunData) -> dict[str, plots.LineageNode]:
    """The latest survivors and all their known ancestors, as lineage nodes."""
    nodes: dict[str, plots.LineageNode] = {}
    start = int(data.archive.get("generation") or 0)
    todo = [(str(s), start) for s in data.archive.get("survivors") or []]
    while todo:
        expert_id, guess = todo.pop()
        if expert_id in nodes:
            continue
        record = data.experts.get(expert_id, {})
        generation = int(record.get("generation", guess) or 0)
        parents = [str(p) for p in record.get("parents") or []]
        ops = [op for op in record.get("operators") or [] if isinstance(op, dict)]
        operators = [str(op["name"]) for op in ops if "name" in op]
        nodes[expert_id] = plots.LineageNode(
            expert_id, generation, parents, operators, bool(record.get("is_base"))
        )
        todo += [(p, max(0, generation - 1)) for p in parents]
    return nodes


def _numbers(mapping: Any) -> dict[str, float]:
    """The numeric values of a ``{name: number}`` mapping; anything else is dropped."""
    if not isinstance(mapping, dict):
        return {}
    return {str(k): float(v) for k, v in mapping.items() if isinstance(v, int | float)}


def render_figures(data: RunData, skill: Skills, embed: EmbedFn | None) -> dict[str, bytes]:
    """The figures of the report as PNG bytes, by file name."""
    gens = data.generations
    numbers = [g["generation"] for g in gens]
    seed, members = skill.seed, skill.members
    capability_of = [str(data.tasks.get(t, {}).get("capability") or "unknown") for t in skill.tasks]
    capabilities = list(dict.fromkeys(capability_of))
    series: dict[str, list[float]] = {}
    for member in members:
        shares = coverage_by_capability(skill.solved, skill.rows([member]), capability_of)
        series[f"{member} (seed)" if member == seed else member] = list(shares.values())
    if len(members) > 1:
        together = coverage_by_capability(skill.solved, skill.rows(members), capability_of)
        series["task force (any member)"] = list(together.values())
    return {
        "progress.png": plots.progress_png(
            numbers,
            [float(g.get("coverage") or 0.0) for g in gens],
            [float(g.get("best_fitness") or 0.0) for g in gens],
            [_number(g.get("global_coverage")) for g in gens],
            [_number(g.get("global_best_fitness")) for g in gens],
        ),
        "taskforce_radar.png": plots.radar_png(capabilities, series, highlight=f"{seed} (seed)"),
        "task_pool.png": _task_pool_png(data, embed),
        "lineage.png": plots.lineage_png(
            lineage_nodes(data), [str(s) for s in data.archive.get("survivors") or []]
        ),
        "roles.png": plots.roles_png(
            numbers,
            [_numbers(g.get("tokens_by_role")) for g in gens],
            [_numbers(g.get("seconds_by_phase")) for g in gens],
        ),
        "dynamics.png": plots.dynamics_png(numbers, gens),
    }


def _cell(value: Any, spec: str = "") -> str:
    """A table cell's text: ``value`` formatted with ``spec``, or a dash when missing."""
    if value is None or value == "":
        return "-"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _number(value: Any) -> float | None:
    """``value`` as a float, or None for a record from before the figure existed."""
    return float(value) if isinstance(value, int | float) else None


def _gains(value: Any) -> list[float]:
    """Coverage gains of the greedy task force (``graphs/diversity.py``); [] if absent."""
    if not isinstance(value, list):
        return []
    return [float(v) for v in value if isinstance(v, int | float)]


def generation_rows(data: RunData) -> list[list[str]]:
    """One row of display strings per generation, in the order of :data:`TABLE_HEADER`."""
    rows = []
    for g in data.generations:
        rejected = _numbers(g.get("tasks_rejected"))
        detail = ", ".join(f"{k} {v:g}" for k, v in sorted(rejected.items()))
        tokens = _numbers(g.get("tokens_by_role"))
        seconds = _numbers(g.get("seconds_by_phase"))
        cost = _numbers(g.get("cost_usd_by_role"))
        spent = ", ".join(f"{k} {v:.4f}" for k, v in sorted(cost.items()))
        busy = {k: u.get("busy_share") for k, u in (g.get("utilization_by_phase") or {}).items()}
        rows.append(
            [
                _cell(g.get("generation")),
                _cell(g.get("archive_size")),
                _cell(g.get("global_tasks")),
                _cell(g.get("global_coverage"), ".1%"),
                _cell(g.get("global_best_fitness"), ".3f"),
                _cell(g.get("seed_global_fitness"), ".3f"),
                _cell(g.get("best_expert")),
                _cell(g.get("best_fitness"), ".3f"),
                _cell(g.get("coverage"), ".1%"),
                _cell(g.get("pool_size"))
                + (f" / {g['pool_target']}" if isinstance(g.get("pool_target"), int) else ""),
                _cell(g.get("tasks_accepted")),
                f"{sum(rejected.values()):g}" + (f" ({detail})" if detail else ""),
                _cell(sum(tokens.values()) if tokens else None, ",.0f"),
                _cell(g.get("tokens_total"), ","),
                _cell(sum(seconds.values()) if seconds else None, ".1f"),
                f"{sum(cost.values()):.4f} ({spent})" if cost else "0",
                ", ".join(f"{k} {v:.0%}" for k, v in busy.items() if isinstance(v, float)),
                _cell(g.get("disagreement"), ".2f"),
                _gains_cell(g),
            ]
        )
    return rows


def _gains_cell(g: dict[str, Any]) -> str:
    """The greedy force's gains, never on a pool the same row calls empty or unpassed."""
    gains = _gains(g.get("coverage_gains"))
    size, cover = g.get("pool_size"), g.get("coverage")
    if not gains or not isinstance(size, int) or not isinstance(cover, int | float):
        return ", ".join(f"+{v:.0%}" for v in gains) or "-"
    return gains_text(gains, size, float(cover))


TABLE_HEADER = ["generation", "archive", "tasks ever active", "global coverage"]
TABLE_HEADER += ["global best fitness", "seed global fitness"]
TABLE_HEADER += ["best expert (active pool)", "best fitness (active pool)"]
TABLE_HEADER += ["coverage (active pool)", "active pool (target)"]
TABLE_HEADER += ["accepted", "rejected", "tokens", "tokens (run total)", "seconds"]
TABLE_HEADER += ["cost USD (by role)", "server busy (by phase)"]
TABLE_HEADER += ["disagreement", "greedy force gains"]


def _overview(data: RunData, skill: Skills) -> list[tuple[str, str]]:
    """Headline facts of the run, as (label, value) pairs."""
    seed, members, rows = skill.seed, skill.members, skill.rows(skill.members)
    last = data.generations[-1] if data.generations else {}
    facts = [("latest generation", str(last.get("generation", "none yet")))]
    if "global_tasks" in last:  # the run's own progress figures first, on every task
        facts += [
            (
                f"global coverage ({last['global_tasks']} tasks ever active)",
                _cell(last.get("global_coverage"), ".1%"),
            ),
            ("global best fitness", _cell(last.get("global_best_fitness"), ".3f")),
            ("seed global fitness", _cell(last.get("seed_global_fitness"), ".3f")),
            ("global pass rate", _cell(last.get("global_pass_rate"), ".2f")),
            (
                f"active pool coverage ({last.get('pool_size', '-')} tasks)",
                _cell(last.get("coverage"), ".1%"),
            ),
        ]
    facts += [
        ("experts", str(len(data.experts))),
        ("experts evaluated", str(len(skill.experts))),
        ("tasks ever active", str(len(skill.tasks))),
        ("rejected candidates kept", str(len(data.rejected))),
        ("settings", data.settings_source),
        ("pass threshold", f"{data.settings.pass_threshold:g}"),
        ("task force size", str(data.settings.taskforce_size)),
        ("seed", seed or "-"),
        ("task force", ", ".join(members) or "-"),
        (
            "task force coverage",
            f"{coverage(skill.solved, rows, skill.known):.1%}" if rows else "-",
        ),
        ("skill cells not evaluated (masked)", f"{skill.missing} of {skill.solved.size}"),
    ]
    calibration = load_calibration(data.root)
    facts.append(("judge", calibration.line() if calibration else "not calibrated"))
    if seed in skill.experts:
        solo = coverage(skill.solved, skill.rows([seed]), skill.known)
        facts.append(("seed coverage", f"{solo:.1%}"))
    return facts


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td:nth-child(7), .facts td { text-align: left; }
figure { margin: 2em 0; }
img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
"""


def render_html(data: RunData, skill: Skills, figures: dict[str, bytes]) -> str:
    """The report page: overview, per-generation table, and the figures embedded."""
    esc = html.escape
    made = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    facts = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _overview(data, skill)
    )
    header = "".join(f"<th>{esc(h)}</th>" for h in TABLE_HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>\n"
        for row in generation_rows(data)
    )
    table = f'<table id="generations"><tr>{header}</tr>\n{body}</table>'
    if not data.generations:
        table += "<p>No generation finished yet.</p>"
    sections = []
    for name, png in figures.items():
        title, caption = FIGURES[name]
        caption = caption.format(taskforce_size=data.settings.taskforce_size)
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        sections.append(
            f'<figure id="{esc(name)}"><h2>{esc(title)}</h2>'
            f'<img src="{uri}" alt="{esc(title)}">'
            f"<figcaption>{esc(caption)} ({esc(name)})</figcaption></figure>"
        )
    title = f"acdc run {data.root.name}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>\n"
        f"<h1>{esc(title)}</h1><p>Report made {made} from {esc(str(data.root))}.</p>\n"
        f'<table class="facts">{facts}</table>\n'
        f"<h2>Generations</h2>\n{table}\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def write_report(run_dir: Path, embed: EmbedFn | None = None) -> Path:
    """Write ``<run>/report/report.html`` and the figures as ``<run>/report/*.png``.

    Each file is written atomically, the HTML last, so a reader never sees a half one.

    Args:
        run_dir: The run folder; only read.
        embed: Embedding function for the task map; None means the bundled MiniLM.

    Returns:
        The path of the HTML file.
    """
    data = load_run(run_dir)
    skill = skills(data)
    figures = render_figures(data, skill, embed)
    run = RunDir(run_dir, read_only=True)
    for name, png in figures.items():
        atomic.write_bytes(run.report_dir / name, png)
    path = run.report_file
    atomic.write_text(path, render_html(data, skill, figures))
    return path
