"""The AC/DC loop as a LangGraph state machine (DESIGN.md section 4).

    bootstrap -> seed_tasks (loops per micro-batch) -> initial_archive -> breed
      -> evaluate -> archive -> [adapt_tasks -> reevaluate, every adapt_every generations]
      -> report -> breed | END

Nodes are thin: they read ids from the state, do their phase through ``phases``,
``task_phases`` and ``summary``, and return ids and counters. Every phase is safe to
re-run after a kill: children have deterministic ids, tasks are admitted to
``pool.json`` one by one, and evaluations are keyed records, so a resumed run redoes
at most the in-flight work.
"""

from typing import Any, Literal

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime

from acdc.context import Context
from acdc.graphs import global_scores, phases, summary, task_flow, task_phases
from acdc.graphs.resources import resources_for
from acdc.graphs.state import RunState
from acdc.graphs.watch import budget_stop_reason, watched


@watched("bootstrap")
def bootstrap(state: RunState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Start or attach to the server, record config and prompts, breed the first experts."""
    res = resources_for(runtime.context)
    phases.record_run(res)
    if state.get("archive"):
        return {}
    return {"archive": phases.initial_population(res), "generation": 0, "tokens": 0}


@watched("seed_tasks")
def seed_tasks(state: RunState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Load the seed tasks, then grow the pool to its target through the gates.

    Proposals are kept in flight throughout (``task_flow``); when a person reviews the
    admitted tasks, one micro-batch per step instead.
    """
    ctx = runtime.context
    res = resources_for(ctx)
    task_phases.load_seed_tasks(res)
    if not ctx.review_tasks:
        tokens = task_flow.grow_pool(res, generation=0)
        return {"task_round": ctx.task_rounds, "tokens": state["tokens"] + tokens}
    tokens = task_phases.grow_pool_batch(res, generation=0, batch_round=state.get("task_round", 0))
    return {"task_round": state.get("task_round", 0) + 1, "tokens": state["tokens"] + tokens}


def route_seed_tasks(
    state: RunState, runtime: Runtime[Context]
) -> Literal["seed_tasks", "initial_archive"]:
    """Loop until the pool reaches its target or the micro-batch budget is spent."""
    ctx = runtime.context
    res = resources_for(ctx)
    full = len(res.pool.active) >= ctx.pool_target
    done = full or state.get("task_round", 0) >= ctx.task_rounds
    return "initial_archive" if done else "seed_tasks"


@watched("initial_archive")
def initial_archive(state: RunState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Cut an initial population larger than ``archive_size`` by DNS, after evaluating it."""
    res = resources_for(runtime.context)
    if state["generation"] > 0 or len(state["archive"]) <= runtime.context.archive_size:
        return {}
    tokens = phases.evaluate_missing(res, phases.with_seeds(res, state["archive"]), generation=0)
    survivors = phases.select_archive(res, state["archive"], generation=0)
    return {"archive": survivors, "tokens": state["tokens"] + tokens}


@watched("breed")
def breed(state: RunState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Children of uniformly drawn survivors; gibberish children are dropped."""
    res = resources_for(runtime.context)
    generation = state["generation"] + 1
    children = phases.breed_children(res, state["archive"], generation)
    return {"children": children, "task_round": 0}


@watched("evaluate")
def evaluate(state: RunState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Every expert (and the seeds, for comparison) on every active task instance.

    Only the triples not evaluated yet are sent.
    """
    res = resources_for(runtime.context)
    experts = phases.with_seeds(res, state["archive"] + state.get("children", []))
    tokens = phases.evaluate_missing(res, experts, generation=state["generation"] + 1)
    return {"tokens": state["tokens"] + tokens}


@watched("archive")
def archive(state: RunState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Dominated Novelty Search (or top fitness) over archive and children."""
    res = resources_for(runtime.context)
    experts = list(dict.fromkeys(state["archive"] + state.get("children", [])))
    survivors = phases.select_archive(res, experts, generation=state["generation"] + 1)
    return {"archive": survivors, "children": []}


def route_adapt(state: RunState, runtime: Runtime[Context]) -> Literal["adapt_tasks", "report"]:
    """Adapt the task pool every ``adapt_every`` generations."""
    due = (state["generation"] + 1) % runtime.context.adapt_every == 0
    return "adapt_tasks" if due else "report"


@watched("adapt_tasks")
def adapt_tasks(state: RunState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Harder / novel variants of tasks by their pass rate; drop impossible ones; trim."""
    res = resources_for(runtime.context)
    adapt = task_phases.adapt_pool_batch if runtime.context.review_tasks else task_flow.adapt_pool
    tokens = adapt(res, state["archive"], generation=state["generation"] + 1)
    return {"tokens": state["tokens"] + tokens}


@watched("report")
def report(state: RunState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Score the archive on every task ever active, summarize; decide whether to go on."""
    res = resources_for(runtime.context)
    generation = state["generation"] + 1
    tokens = state["tokens"] + global_scores.complete(res, state["archive"], generation)
    return {
        "generation": generation,
        "tokens": tokens,
        "summary": summary.summarize(res, state["archive"], generation, tokens),
        "stop_reason": summary.stop_reason(res, generation, tokens) or budget_stop_reason(res),
    }


def route_report(state: RunState) -> Literal["breed", "__end__"]:
    """Loop until a budget is spent or a stop was requested."""
    return "__end__" if state.get("stop_reason") else "breed"  # "__end__" is langgraph's END


builder = StateGraph(RunState, context_schema=Context)
builder.add_node("bootstrap", bootstrap)
builder.add_node("seed_tasks", seed_tasks)
builder.add_node("initial_archive", initial_archive)
builder.add_node("breed", breed)
builder.add_node("evaluate", evaluate)
builder.add_node("archive", archive)
builder.add_node("adapt_tasks", adapt_tasks)
builder.add_node("reevaluate", evaluate)
builder.add_node("report", report)
builder.add_edge(START, "bootstrap")
builder.add_edge("bootstrap", "seed_tasks")
builder.add_conditional_edges("seed_tasks", route_seed_tasks)
builder.add_edge("initial_archive", "breed")
builder.add_edge("breed", "evaluate")
builder.add_edge("evaluate", "archive")
builder.add_conditional_edges("archive", route_adapt)
builder.add_edge("adapt_tasks", "reevaluate")
builder.add_edge("reevaluate", "report")
builder.add_conditional_edges("report", route_report)

graph = builder.compile(name="coevolution")
