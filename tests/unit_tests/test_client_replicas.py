"""Several population servers behind one client: spread, adapters where needed, failover.

The servers are real HTTP servers speaking vLLM's endpoints with scripted words
(tests/fake_stack.FakePopulation); the adapters are real files in an expert store.
"""

import asyncio
import time

import pytest

from acdc.population.base import BaseWeights
from acdc.population.client import PopulationClient, ServerUnreachableError
from acdc.population.experts import ExpertStore
from tests.fake_stack import FakePopulation

QUESTION = [{"role": "user", "content": "Say something."}]


def port_of(server: FakePopulation) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


def urls(*servers: FakePopulation) -> list[str]:
    return [s.url.removesuffix("/v1") for s in servers]


def client_for(store: ExpertStore, *servers: FakePopulation) -> PopulationClient:
    return PopulationClient(
        urls(*servers), store, base_id="base", max_loaded=4, retries=1, backoff=0.05,
        revive_after=0.2,
    )  # fmt: skip


def test_concurrent_requests_spread_over_both_servers(
    store_with_parents: tuple[ExpertStore, BaseWeights],
) -> None:
    store, _ = store_with_parents
    with FakePopulation({}) as a, FakePopulation({}) as b:

        async def scenario() -> dict[str, int]:
            client = client_for(store, a, b)
            try:
                replies = await asyncio.gather(
                    *(client.chat(e, QUESTION) for e in ["p1", "base"] * 10)
                )
                assert {r.server for r in replies} == set(urls(a, b))
                return client.answered
            finally:
                await client.aclose()

        answered = asyncio.run(scenario())
    assert sum(answered.values()) == 20
    assert min(answered.values()) >= 5, answered  # fewest-in-flight, not all on the first


def test_an_adapter_loads_only_on_the_servers_that_serve_it(
    store_with_parents: tuple[ExpertStore, BaseWeights],
) -> None:
    store, _ = store_with_parents
    with FakePopulation({}) as a, FakePopulation({}) as b:

        async def scenario() -> None:
            client = client_for(store, a, b)
            try:
                for expert in ["p1", "p1", "p2", "base", "p1"]:  # one at a time: a tie each
                    await client.chat(expert, QUESTION)
            finally:
                await client.aclose()

        asyncio.run(scenario())
        assert a.loaded == {"p1", "p2"}
        assert b.loaded == set()  # never needed: nothing was loaded there
        assert [r["lora_name"] for r in a.requests if "lora_name" in r] == ["p1", "p2"]


def test_one_server_dies_and_returns_and_every_request_is_answered_once(
    store_with_parents: tuple[ExpertStore, BaseWeights],
) -> None:
    store, _ = store_with_parents
    a, b = FakePopulation({}), FakePopulation({})
    port_b = port_of(b)
    slow = asyncio.Semaphore(4)

    async def ask(client: PopulationClient, expert: str) -> str:
        async with slow:
            await asyncio.sleep(0.05)  # the fake's own answers are instant
            return (await client.chat(expert, QUESTION)).server

    async def scenario() -> tuple[list[str], list[str], dict[str, int]]:
        client = client_for(store, a, b)
        try:
            first = asyncio.gather(*(ask(client, e) for e in ["p1", "p2"] * 30))
            while not b.chats:  # b answered once (a fixed wait is too short on a busy host)
                await asyncio.sleep(0.02)
            await asyncio.to_thread(b.close)  # mid-way: its in-flight and later requests move to a
            before = await first
            revived = FakePopulation({}, port=port_b)  # back on the same address, empty
            try:
                await asyncio.sleep(0.3)  # past revive_after: the next pick probes it
                after = await asyncio.gather(*(ask(client, e) for e in ["p1", "p2"] * 10))
                assert revived.loaded == {"p1", "p2"}  # re-loaded where it is used again
            finally:
                revived.close()
            return before, after, client.answered
        finally:
            await client.aclose()

    try:
        before, after, answered = asyncio.run(scenario())
    finally:
        a.close()
    assert len(before) == 60 and len(after) == 20
    assert set(before) == set(urls(a, b))  # b served some before it died
    assert set(after) == set(urls(a, b))  # and some again after it came back
    assert sum(answered.values()) == 80


def test_every_server_down_raises_unreachable_so_items_stay_missing(
    store_with_parents: tuple[ExpertStore, BaseWeights],
) -> None:
    store, _ = store_with_parents
    a, b = FakePopulation({}), FakePopulation({})
    a.close()
    b.close()

    async def scenario() -> None:
        client = client_for(store, a, b)
        try:
            with pytest.raises(ServerUnreachableError, match="no population server answers"):
                await client.chat("p1", QUESTION)
        finally:
            await client.aclose()

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 10


def test_a_single_url_string_still_works(
    store_with_parents: tuple[ExpertStore, BaseWeights],
) -> None:
    store, _ = store_with_parents
    with FakePopulation({}) as a:

        async def scenario() -> str:
            client = PopulationClient(
                a.url.removesuffix("/v1"), store, base_id="base", max_loaded=2
            )
            try:
                await client.resync()
                return (await client.chat("p1", QUESTION)).server
            finally:
                await client.aclose()

        assert asyncio.run(scenario()) == urls(a)[0]


def test_the_run_attaches_to_every_server_and_is_healthy_while_one_answers() -> None:
    from acdc.context import Context
    from acdc.population.server import PopulationServer

    a, b = FakePopulation({}), FakePopulation({})
    server = PopulationServer(Context(server_urls=urls(a, b), server_start_timeout=5)).start()
    assert server.urls == urls(a, b) and server.url == urls(a)[0] and not server.owned
    a.close()
    assert server.healthy()  # b still answers: nothing to restart
    b.close()
    assert not server.healthy()
    server.stop()  # attached servers are never stopped by the run
