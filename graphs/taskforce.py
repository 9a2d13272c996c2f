"""A task force answering one question, as a LangGraph graph (DESIGN.md section 4).

    plan -> answer (one branch per member, in parallel) -> select -> END

``plan`` names the members: the run's task force (``taskforce_members``, or N picked
by coverage), one member when the caller asks for that member's id, or the member the
router sends the question to (``taskforce_router``). ``answer`` asks one member on the
population server. ``select`` returns one answer with the member that gave it and why,
by the selector of the call (``judge``, ``majority``, ``tournament``; default from the
Context). A member that fails is left out of the selection; only when every member
fails does the graph return an ``error`` instead of an answer.

The web app (``graphs/webapp.py``) serves this graph as an OpenAI-compatible model,
and ``langgraph dev`` shows it in Studio next to the coevolution run.
"""

import hashlib
import random
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from typing_extensions import TypedDict  # pydantic needs it for Studio's schemas on 3.11

from acdc.agents import selectors
from acdc.agents.selectors import SelectorName
from acdc.context import Context
from acdc.graphs.taskforce_resources import taskforce_resources
from acdc.population.server import ServerError
from acdc.types import ExpertId

TASKFORCE_MODEL = "taskforce"
"""Model id of the whole task force (best-of-N, or routed)."""


class MemberAnswer(TypedDict):
    """One member's answer, or why there is none."""

    slot: int
    expert_id: ExpertId
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    error: str


def collect_answers(current: list[MemberAnswer], new: list[MemberAnswer]) -> list[MemberAnswer]:
    """Append the members' answers; the empty list ``plan`` writes starts a new question."""
    return current + new if new else []


class TaskForceInput(TypedDict, total=False):
    """A question for the task force; only ``question`` is required."""

    question: str
    """The question; also what the judge and the router read."""
    messages: list[dict[str, str]]
    """The whole chat sent to each member (default: the question as one user message)."""
    model: str
    """``taskforce`` (default) or one member's id to ask that member alone."""
    selector: SelectorName
    """``judge``, ``majority`` or ``tournament`` (default: the Context's ``selector``)."""
    max_tokens: int
    """Max new tokens per member (default: ``answer_max_tokens``)."""
    temperature: float
    """Members' temperature (default: ``answer_temperature``)."""


class TaskForceOutput(TypedDict, total=False):
    """The chosen answer, who gave it and why."""

    answer: str
    winner: ExpertId
    why: str
    decided_by: str
    """The selector that decided (``majority`` when the judge failed), or ``single``."""
    members: list[ExpertId]
    answers: list[MemberAnswer]
    tokens: int
    """Completion tokens of every member plus the judge's tokens."""
    error: str
    """Set (and ``answer`` empty) only when every member failed."""


class TaskForceState(TaskForceInput, total=False):
    """The input, what ``plan`` decides, the members' answers and the output."""

    members: list[ExpertId]
    route: str
    """Why the router chose its member ("" when it did not route)."""
    answers: Annotated[list[MemberAnswer], collect_answers]
    answer: str
    winner: ExpertId
    why: str
    decided_by: str
    tokens: int
    error: str


class MemberTask(TypedDict):
    """What one ``answer`` branch receives."""

    slot: int
    expert_id: ExpertId
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float


async def plan(state: TaskForceState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Name the members that answer: the task force, one asked member, or the routed one."""
    ctx = runtime.context
    res = taskforce_resources(ctx)
    members = res.members(ctx)
    model = state.get("model") or TASKFORCE_MODEL
    note = ""
    if model != TASKFORCE_MODEL:
        if model not in members:
            valid = ", ".join([TASKFORCE_MODEL, *dict.fromkeys(members)])
            raise ValueError(f"unknown model {model!r} (this task force serves: {valid})")
        members = [model]
    elif ctx.taskforce_router:
        chosen, note = await res.route(state["question"], members)
        members = [chosen]
    return {"members": members, "route": note, "answers": []}


def fan_out(state: TaskForceState, runtime: Runtime[Context]) -> list[Send]:
    """One ``answer`` branch per member, all at once."""
    ctx = runtime.context
    messages = state.get("messages") or [{"role": "user", "content": state["question"]}]
    return [
        Send(
            "answer",
            MemberTask(
                slot=slot,
                expert_id=expert_id,
                messages=messages,
                max_tokens=state.get("max_tokens") or ctx.answer_max_tokens,
                temperature=state.get("temperature", ctx.answer_temperature),
            ),
        )
        for slot, expert_id in enumerate(state["members"])
    ]


async def answer(task: MemberTask, runtime: Runtime[Context]) -> dict[str, Any]:
    """One member's answer; a server failure is recorded, not raised."""
    res = taskforce_resources(runtime.context)
    try:
        async with res.client() as client:
            chat = await client.chat(
                task["expert_id"],
                task["messages"],
                max_tokens=task["max_tokens"],
                temperature=task["temperature"],
            )
    except ServerError as err:
        failed = MemberAnswer(
            slot=task["slot"],
            expert_id=task["expert_id"],
            text="",
            prompt_tokens=0,
            completion_tokens=0,
            finish_reason="",
            error=str(err),
        )
        return {"answers": [failed]}
    done = MemberAnswer(
        slot=task["slot"],
        expert_id=task["expert_id"],
        text=chat.text,
        prompt_tokens=chat.prompt_tokens,
        completion_tokens=chat.completion_tokens,
        finish_reason=chat.finish_reason,
        error="",
    )
    return {"answers": [done]}


async def select(state: TaskForceState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Pick one answer by the call's selector; say which member gave it and why."""
    ctx = runtime.context
    answers = sorted(state["answers"], key=lambda a: a["slot"])
    tokens = sum(a["completion_tokens"] for a in answers)
    usable = [a for a in answers if not a["error"]]
    if not usable:
        error = "; ".join(f"{a['expert_id']}: {a['error']}" for a in answers)
        return {
            "answer": "",
            "winner": "",
            "why": "",
            "decided_by": "",
            "tokens": tokens,
            "error": f"every member failed: {error}",
        }
    if len(usable) == 1:
        only, failed = usable[0], len(answers) - 1
        alone = f"the only member that answered ({failed} failed)" if failed else "the only member"
        return {
            "answer": only["text"],
            "winner": only["expert_id"],
            "why": state.get("route") or alone,
            "decided_by": "single",
            "tokens": tokens,
            "error": "",
        }
    selector = state.get("selector") or ctx.selector
    judge = None if selector == "majority" else taskforce_resources(ctx).judge(ctx)
    question = state["question"]
    digest = hashlib.sha256(f"{ctx.random_seed}|{question}".encode()).hexdigest()
    pick = await selectors.select(
        selector,
        question,
        [a["text"] for a in usable],
        judge=judge,
        rng=random.Random(int(digest[:8], 16)),
    )
    winner = usable[pick.index]
    return {
        "answer": winner["text"],
        "winner": winner["expert_id"],
        "why": pick.why,
        "decided_by": pick.selector,
        "tokens": tokens + pick.tokens,
        "error": "",
    }


builder = StateGraph(
    TaskForceState,
    context_schema=Context,
    input_schema=TaskForceInput,
    output_schema=TaskForceOutput,
)
builder.add_node("plan", plan)
# langgraph's typing rejects input_schema on a named node; the call is as documented.
builder.add_node("answer", answer, input_schema=MemberTask)  # type: ignore[call-overload]
builder.add_node("select", select)
builder.add_edge(START, "plan")
builder.add_conditional_edges("plan", fan_out, ["answer"])
builder.add_edge("answer", "select")
builder.add_edge("select", END)

graph = builder.compile(name="taskforce")
