"""The task force endpoint on the real stack: the openai client, vLLM CPU, SmolLM2 experts.

Two children are bred from the seed; the task force (seed and children) is served by
the web app in a thread while the real population server hosts the experts, and the
real judge (the base model, guided JSON) picks among their answers.
"""

import dataclasses
import threading
import time
from collections.abc import Iterator

import openai
import pytest
import uvicorn

from acdc.context import Context
from acdc.graphs.taskforce_resources import close_all
from acdc.graphs.webapp import create_app
from acdc.population.bootstrap import Population, make_breeder
from acdc.population.server import PopulationServer
from tests.integration_tests.conftest import free_port

pytestmark = pytest.mark.integration
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def endpoint(
    ctx: Context, population: Population, server: PopulationServer
) -> Iterator[tuple[openai.OpenAI, list[str]]]:
    breeder = make_breeder(ctx, population)
    children = [breeder.breed(population.seed_ids, seed=s, generation=1).id for s in (11, 12)]
    members = [ctx.served_model_name, *children]
    served = dataclasses.replace(
        ctx,
        server_url=server.url,
        taskforce_members=members,
        answer_max_tokens=32,
        judge_max_tokens=320,
        judge_retries=0,
    )
    port = free_port()
    web = uvicorn.Server(
        uvicorn.Config(create_app(served), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not web.started:
        assert time.monotonic() < deadline, "the task force endpoint did not start"
        time.sleep(0.1)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", timeout=300)
    try:
        yield client, members
    finally:
        web.should_exit = True
        thread.join(timeout=30)
        close_all()


def test_the_task_force_answers_as_one_openai_model(
    endpoint: tuple[openai.OpenAI, list[str]],
) -> None:
    client, members = endpoint
    assert [m.id for m in client.models.list()] == ["taskforce", *members]

    reply = client.chat.completions.create(model="taskforce", messages=QUESTION, max_tokens=32)
    assert reply.model == "taskforce" and reply.choices[0].message.content.strip()
    details = (reply.model_extra or {})["acdc"]
    assert details["members"] == members and details["winner"] in members
    assert details["decided_by"] in ("judge", "majority") and details["why"]
    assert [a["expert_id"] for a in details["answers"]] == members
    assert all(a["text"].strip() and not a["error"] for a in details["answers"])
    winner = members.index(details["winner"])
    assert reply.choices[0].message.content == details["answers"][winner]["text"]
    assert reply.usage is not None and reply.usage.completion_tokens > 0

    voted = client.chat.completions.create(
        model="taskforce", messages=QUESTION, max_tokens=32, extra_body={"selector": "majority"}
    )
    assert (voted.model_extra or {})["acdc"]["decided_by"] == "majority"


def test_a_member_id_asks_that_member_alone(endpoint: tuple[openai.OpenAI, list[str]]) -> None:
    client, members = endpoint
    child = members[1]
    reply = client.chat.completions.create(model=child, messages=QUESTION, max_tokens=32)
    details = (reply.model_extra or {})["acdc"]
    assert (details["winner"], details["decided_by"]) == (child, "single")
    assert reply.choices[0].message.content.strip()
    chunks = list(
        client.chat.completions.create(
            model=child,
            messages=QUESTION,
            max_tokens=32,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed.strip() and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens
    assert (chunks[-2].model_extra or {})["acdc"]["winner"] == child
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="no-such-expert", messages=QUESTION)
