"""The product's imports go one way: no cycle, no upward arrow, none hidden in a function.

Layers, lowest first; a module imports from its own layer and the layers below it:

1. core, ``acdc/`` (types, settings, tasks and the pool, the run folder, costs);
2. ``prompts/``: the role prompts and their loader;
3. ``vectorstore/``: the task index and the contamination gate;
4. ``population/``: experts, breeding, serving, the archive, task-force and coverage math;
5. ``agents/``: the roles, grading, the task pipeline, benchmark items;
6. ``graphs/``: the two graphs, their nodes, the run's resources, and the commands
   built on them (fork, the task-force web app, the coverage evaluation);
7. the entry points ``acdc/cli.py`` and ``acdc/runner.py``, which drive the graphs.

Core modules other than the entry points never import ``graphs/``; the tools in core
that read a whole run (the report) may read the layers between. A cycle, or an import
placed inside a function to dodge one, hides which module depends on which; so an
import of an acdc module inside a function is refused, except in the entry points
(each subcommand imports its work when it runs, so ``acdc --help`` and ``acdc plan``
start without torch, vLLM or LangGraph) and where a comment on the import (or just
above it) names the heavy third-party package it defers.

Imports are read with ``ast`` from the files that pyproject.toml maps to packages, so the
check needs nothing installed and sees every import, at module level and in functions.
"""

import ast
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LAYERS = {"prompts": 2, "vectorstore": 3, "population": 4, "agents": 5, "graphs": 6}
"""Rank of each sub-package (core is 1, the entry points 7)."""
ENTRY_POINTS = frozenset({"acdc.cli", "acdc.runner"})
HEAVY = ("torch", "vllm", "chromadb", "transformers", "peft", "sentence_transformers")
"""Third-party packages slow enough to import that a function may defer an acdc module."""


@dataclass(frozen=True)
class Import:
    """One acdc module imported by another."""

    source: str
    target: str
    line: int
    in_function: bool
    comment: str
    """The comments on the import's lines and in the comment lines just above it."""


def _modules() -> dict[str, Path]:
    """Every product module by its import name, from pyproject.toml's package-dir."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    modules: dict[str, Path] = {}
    for package, folder in folders.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
    return modules


MODULES = _modules()


def _resolve(name: str) -> str:
    """The product module ``name`` denotes (``acdc.graphs.skill_matrix.skills`` -> its module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str, path: Path) -> Iterator[Import]:
    source = path.read_text()
    lines = source.splitlines()

    def comment(node: ast.stmt) -> str:
        first, last = node.lineno - 1, node.end_lineno or node.lineno
        while first > 0 and lines[first - 1].strip().startswith("#"):
            first -= 1
        return " ".join(line.partition("#")[2] for line in lines[first:last])

    def visit(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                # `from acdc.graphs import phases` imports the module acdc.graphs.phases
                names = [
                    f"{child.module}.{alias.name}"
                    if f"{child.module}.{alias.name}" in MODULES
                    else child.module
                    for alias in child.names
                ]
            for name in names:
                if name == "acdc" or name.startswith("acdc."):
                    target = _resolve(name)
                    if target and target != module:
                        yield Import(module, target, child.lineno, nested, comment(child))
            yield from visit(child, nested)

    yield from visit(ast.parse(source), False)


IMPORTS = [i for module, path in MODULES.items() for i in _imports(module, path)]


def _rank(module: str) -> int:
    if module in ENTRY_POINTS:
        return 7
    parts = module.split(".")
    return LAYERS.get(parts[1], 1) if len(parts) > 1 else 1


def _listed(found: Iterable[Import]) -> list[str]:
    """One line per offending import, each once."""
    return list(
        dict.fromkeys(
            f"{MODULES[i.source].relative_to(ROOT)}:{i.line} imports {i.target}" for i in found
        )
    )


def test_the_check_sees_the_product() -> None:
    """A mapping read wrong would make every other check pass on nothing."""
    assert {"acdc.context", "acdc.graphs.coevolution", "acdc.population.archive"} <= set(MODULES)
    assert any(i.target == "acdc.context" for i in IMPORTS)


def test_every_import_is_absolute() -> None:
    """One spelling per import (``acdc.x``), which is also the only one this check reads."""
    relative = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in MODULES.values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.level
    ]
    assert not relative, "relative imports:\n" + "\n".join(relative)


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in IMPORTS:
        graph[i.source].add(i.target)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_layer_imports_a_higher_one() -> None:
    upward = _listed(
        i for i in IMPORTS if i.source.split(".")[1] in LAYERS and _rank(i.target) > _rank(i.source)
    )
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_only_the_entry_points_of_core_import_the_graphs() -> None:
    wrong = _listed(
        i for i in IMPORTS if _rank(i.source) == 1 and i.target.startswith("acdc.graphs")
    )
    assert not wrong, "core modules importing graphs/:\n" + "\n".join(wrong)


def test_no_acdc_import_inside_a_function() -> None:
    hidden = _listed(
        i
        for i in IMPORTS
        if i.in_function
        and i.source not in ENTRY_POINTS
        and not any(package in i.comment for package in HEAVY)
    )
    assert not hidden, (
        "acdc modules imported inside a function (move the import to the top, breaking the "
        "cycle it dodges; or name the heavy package it defers in a comment):\n" + "\n".join(hidden)
    )
