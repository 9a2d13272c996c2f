"""The figures of a run's report, each rendered to PNG bytes.

They take plain numbers rather than a run folder, so :mod:`acdc.report` owns all the
reading and these stay small and testable. Every figure draws a "no data yet" note
instead of failing when a run has just started. Figures are drawn on the Agg canvas
directly, without pyplot, so nothing global (the backend, open figures) is touched in
the process that calls them.
"""

import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

NO_DATA = "no data yet"
DPI = 100


@dataclass(frozen=True)
class LineageNode:
    """One expert in the lineage plot: where it sits and how it was made."""

    id: str
    generation: int
    parents: list[str] = field(default_factory=list)
    operators: list[str] = field(default_factory=list)
    is_base: bool = False


def _png(fig: Figure) -> bytes:
    """Render ``fig`` with Agg and return the PNG file's bytes."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _note(ax: Axes, text: str = NO_DATA) -> None:
    """Write ``text`` in the middle of an empty panel."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def progress_png(
    generations: Sequence[int],
    coverage: Sequence[float],
    best_fitness: Sequence[float],
    global_coverage: Sequence[float | None] = (),
    global_best_fitness: Sequence[float | None] = (),
) -> bytes:
    """Global coverage and best fitness (solid) beside the active pool's (dashed), 0-1.

    The global series are on every task ever active; a generation logged before they
    existed is None and left as a gap. The active-pool lines are drawn after them and
    thinner: they rise whenever the pool sheds tasks nobody passes.
    """
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Progress")
    if not generations:
        _note(ax)
        return _png(fig)
    for values, marker, label in (
        (global_coverage, "o", "global coverage (every task ever active)"),
        (global_best_fitness, "s", "global best fitness"),
    ):
        if any(v is not None for v in values):
            points = [np.nan if v is None else v for v in values]
            ax.plot(generations, points, marker=marker, linewidth=2, label=label)
    ax.plot(
        generations,
        coverage,
        marker="o",
        linestyle="--",
        linewidth=1,
        label="coverage (active pool)",
    )
    ax.plot(
        generations,
        best_fitness,
        marker="s",
        linestyle="--",
        linewidth=1,
        label="best fitness (active pool)",
    )
    ax.set_xlabel("generation")
    ax.set_ylabel("share (0-1)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(list(generations))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _png(fig)


def radar_png(
    capabilities: Sequence[str], series: Mapping[str, Sequence[float]], highlight: str = ""
) -> bytes:
    """Spider plot: one polygon per series of per-capability shares (0-1).

    ``highlight`` names the series drawn dashed and thick (the seed).
    """
    fig = Figure(figsize=(7, 6), layout="constrained")
    if not capabilities or not series:
        ax = fig.add_subplot()
        ax.set_title("Task force by capability")
        _note(ax)
        return _png(fig)
    polar = fig.add_subplot(projection="polar")
    polar.set_title("Task force: share of tasks passed per capability", pad=28)
    angles = np.linspace(0.0, 2 * np.pi, len(capabilities), endpoint=False)
    closed = np.append(angles, angles[0])
    for label, values in series.items():
        ring = np.append(np.asarray(values, dtype=float), values[0])
        seed = label == highlight
        polar.plot(
            closed,
            ring,
            marker="o",
            label=label,
            linestyle="--" if seed else "-",
            linewidth=2.5 if seed else 1.5,
        )
        polar.fill(closed, ring, alpha=0.08)
    polar.set_xticks(angles, [c if len(c) <= 20 else c[:19] + "…" for c in capabilities])
    polar.set_ylim(0.0, 1.0)
    polar.set_yticks([0.25, 0.5, 0.75, 1.0])
    polar.legend(loc="upper right", bbox_to_anchor=(1.35, 1.1), fontsize="small")
    return _png(fig)


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Rows of ``vectors`` on their first two principal components, shape ``(n, 2)``.

    Components beyond the data's rank (one or two rows) are left at zero.
    """
    centered = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centered, full_matrices=False)
    points = np.zeros((len(vectors), 2))
    k = min(2, components.shape[0])
    points[:, :k] = centered @ components[:k].T
    return points


def task_pool_png(
    vectors: np.ndarray, generations: Sequence[int], accepted: Sequence[bool], note: str = ""
) -> bytes:
    """Task embeddings (``vectors``, one row per task) projected by PCA, colored by generation.

    Circles are accepted tasks, crosses rejected candidates; ``note`` replaces the plot
    (e.g. why embeddings are missing).
    """
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Task pool (PCA of task embeddings)")
    if note or len(vectors) == 0:
        _note(ax, note or NO_DATA)
        return _png(fig)
    points = pca_2d(np.asarray(vectors, dtype=float))
    gens = np.asarray(generations, dtype=float)
    norm = Normalize(vmin=gens.min(), vmax=max(gens.max(), gens.min() + 1))
    cmap = colormaps["viridis"]
    mask = np.asarray(accepted, dtype=bool)
    for keep, marker in ((mask, "o"), (~mask, "x")):
        if keep.any():
            x, y = points[keep, 0], points[keep, 1]
            ax.scatter(x, y, c=gens[keep], cmap=cmap, norm=norm, marker=marker, s=50)
    fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap),
        ax=ax,
        label="generation created",
        ticks=MaxNLocator(integer=True),
    )
    ax.legend(
        handles=[
            Line2D([], [], marker="o", linestyle="", color="grey", label="accepted"),
            Line2D([], [], marker="x", linestyle="", color="grey", label="rejected"),
        ],
        loc="best",
    )
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    return _png(fig)


def _lineage_positions(nodes: Mapping[str, LineageNode]) -> dict[str, tuple[float, float]]:
    """Node places: x is the generation, y spreads a generation, near the parents' heights."""
    by_generation: dict[int, list[str]] = {}
    for node in sorted(nodes.values(), key=lambda n: (n.generation, n.id)):
        by_generation.setdefault(node.generation, []).append(node.id)
    positions: dict[str, tuple[float, float]] = {}
    for generation in sorted(by_generation):

        def parent_height(expert_id: str) -> float:
            heights = [positions[p][1] for p in nodes[expert_id].parents if p in positions]
            return sum(heights) / len(heights) if heights else 0.0

        column = sorted(by_generation[generation], key=lambda e: (parent_height(e), e))
        for i, expert_id in enumerate(column):
            positions[expert_id] = (float(generation), i - (len(column) - 1) / 2)
    return positions


def lineage_png(nodes: Mapping[str, LineageNode], survivors: Sequence[str]) -> bytes:
    """Family tree of the survivors: arrows parent -> child colored by the child's operators."""
    positions = _lineage_positions(nodes)
    per_generation = Counter(x for x, _ in positions.values())
    tallest = max(per_generation.values(), default=1)
    width = min(20.0, max(8.0, 2.0 + 1.8 * len(per_generation)))
    height = min(16.0, max(4.5, 1.5 + 0.45 * tallest))
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Lineage of the latest archive's survivors")
    if not nodes:
        _note(ax)
        return _png(fig)
    palette = colormaps["tab10"]
    colors: dict[str, tuple[float, float, float, float]] = {}
    for node in sorted(nodes.values(), key=lambda n: (n.generation, n.id)):
        known = [p for p in node.parents if p in positions]
        if not known:
            continue
        label = "+".join(node.operators) or "(no operator)"
        color = colors.setdefault(label, palette(len(colors) % 10))
        for parent in known:
            ax.annotate(
                "",
                xy=positions[node.id],
                xytext=positions[parent],
                arrowprops={
                    "arrowstyle": "->",
                    "color": color,
                    "shrinkA": 7,
                    "shrinkB": 7,
                    "linewidth": 1.3,
                },
            )
    kept = set(survivors)

    def kind(node: LineageNode) -> str:
        return "survivor" if node.id in kept else "base" if node.is_base else "ancestor"

    for name, marker, fill, size in (
        ("ancestor", "o", "#9ab", 90),
        ("base", "s", "#678", 90),
        ("survivor", "*", "gold", 260),
    ):
        picked = [positions[n.id] for n in nodes.values() if kind(n) == name]
        if picked:
            xs, ys = zip(*picked, strict=True)
            ax.scatter(
                xs, ys, marker=marker, c=fill, s=size, edgecolors="black", zorder=3, label=name
            )
    crowded = len(nodes) > 60
    for node in nodes.values():
        if not crowded or node.id in kept or node.is_base:
            x, y = positions[node.id]
            ax.annotate(
                node.id,
                (x, y),
                xytext=(8, 4),
                textcoords="offset points",
                fontsize=7,
                fontweight="bold" if node.id in kept else "normal",
            )
    handles: list[Artist] = [Line2D([], [], color=c, label=op) for op, c in colors.items()]
    handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    generations = sorted({n.generation for n in nodes.values()})
    ax.set_xticks(generations)
    ax.set_xlim(min(generations) - 0.4, max(generations) + 0.6)
    ax.set_xlabel("generation")
    ax.set_yticks([])
    return _png(fig)


def _stacked_bars(
    ax: Axes, generations: Sequence[int], rows: Sequence[Mapping[str, float]], unit: str
) -> None:
    """One bar per generation, stacked by key (role or phase)."""
    keys = sorted({key for row in rows for key in row})
    if not generations or not keys:
        _note(ax)
        return
    x = np.arange(len(generations))
    bottom = np.zeros(len(generations))
    for key in keys:
        values = np.array([float(row.get(key) or 0.0) for row in rows])
        ax.bar(x, values, bottom=bottom, label=key)
        bottom += values
    ax.set_xticks(x, [str(g) for g in generations])
    ax.set_xlabel("generation")
    ax.set_ylabel(unit)
    ax.legend(fontsize="small")


def roles_png(
    generations: Sequence[int],
    tokens: Sequence[Mapping[str, float]],
    seconds: Sequence[Mapping[str, float]],
) -> bytes:
    """Tokens per role (left) and seconds per phase (right), one stacked bar per generation."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.set_title("Tokens per role")
    right.set_title("Time per phase")
    _stacked_bars(left, generations, tokens, "tokens")
    _stacked_bars(right, generations, seconds, "seconds")
    return _png(fig)


def dynamics_png(generations: Sequence[int], rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Coevolution per generation: difficulty and fitness (left), task turnover (right).

    Left: the archive's mean pass rate on the active pool with its spread across tasks,
    the archive's best and mean fitness and the seed's, all on the same tasks. Right:
    tasks admitted per adaptation kind (up) and retired per cause (down), with the
    discoveries (tasks some member passes and the seed fails) as a line.
    """
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.set_title("Pool difficulty and fitness")
    right.set_title("Task turnover")
    have = [(g, r) for g, r in zip(generations, rows, strict=True) if "pool_pass_rate" in r]
    if not have:
        _note(left)
        _note(right)
        return _png(fig)
    gens = [g for g, _ in have]
    rate = np.array([float(r["pool_pass_rate"]) for _, r in have])
    spread = np.array([float(r.get("pool_pass_rate_std") or 0.0) for _, r in have])
    left.plot(gens, rate, marker="o", label="pool pass rate (archive)")
    left.fill_between(gens, rate - spread, rate + spread, alpha=0.2)
    for key, label in (
        ("archive_best_fitness", "best fitness"),
        ("archive_mean_fitness", "mean fitness"),
        ("seed_fitness", "seed fitness"),
    ):
        left.plot(gens, [float(r.get(key) or 0.0) for _, r in have], marker=".", label=label)
    left.set_ylim(-0.02, 1.02)
    left.set_xlabel("generation")
    left.set_ylabel("share (0-1)")
    left.set_xticks(gens)
    left.grid(alpha=0.3)
    left.legend(fontsize="small")
    x = np.arange(len(gens))
    admitted = [
        {k: float(v.get("admitted", 0)) for k, v in (r.get("adaptation") or {}).items()}
        for _, r in have
    ]
    retired = [{k: -float(v) for k, v in (r.get("retired") or {}).items()} for _, r in have]
    for stacks, prefix in ((admitted, "admitted"), (retired, "retired")):
        bottom = np.zeros(len(gens))
        for key in sorted({k for row in stacks for k in row}):
            values = np.array([row.get(key, 0.0) for row in stacks])
            right.bar(x, values, bottom=bottom, label=f"{prefix}: {key}")
            bottom += values
    right.plot(x, [int(r.get("discoveries") or 0) for _, r in have], "k-o", label="discoveries")
    right.axhline(0, color="grey", linewidth=0.8)
    right.set_xticks(x, [str(g) for g in gens])
    right.set_xlabel("generation")
    right.set_ylabel("tasks")
    right.legend(fontsize="small")
    return _png(fig)
