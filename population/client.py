"""Talk to the population servers: experts load on demand, with an LRU bound and retries.

One or several OpenAI-compatible vLLM servers (``server_urls``: one per node or GPU)
serve the population. Each request goes to the live server with the fewest requests in
flight (ties: one already holding the expert's adapter), and the adapter is loaded there
first if that server does not hold it; so an adapter lives only on the servers that
needed it. Per server, a registry mirrors which adapters it holds; when its bound is
reached the least recently used adapter with no request in flight is unloaded.

Failures: a server that stops answering after the bounded retries is marked down, its
registry is forgotten (a restarted vLLM holds no adapters), and the request moves to
another live server; a down server is probed again every ``revive_after`` seconds and
used again once healthy. Only when every server is down does a call raise
``ServerUnreachableError`` (callers leave such items missing, never score them). If a
server restarted unseen (it answers 404 for an adapter we thought loaded) its registry
is re-read and the request retried once.
"""

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from acdc.context import Context
from acdc.population.experts import ExpertStore
from acdc.population.server import ServerError
from acdc.types import ExpertId

log = logging.getLogger(__name__)


class AdapterRejectedError(ServerError):
    """vLLM refused to load an adapter; the message carries vLLM's reason."""


class ServerUnreachableError(ServerError):
    """Every attempt failed to connect or timed out: the server is down or overloaded."""


@dataclass(frozen=True)
class ChatResult:
    """One chat completion from one expert."""

    expert_id: ExpertId
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finish_reason: str
    server: str = ""
    """URL of the server that answered."""


@dataclass
class Replica:
    """One population server as the client sees it: adapters held, requests in flight."""

    url: str
    loaded: OrderedDict[ExpertId, None] = field(default_factory=OrderedDict)
    in_use: Counter[ExpertId] = field(default_factory=Counter)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    outstanding: int = 0
    answered: int = 0
    down: bool = False
    probe_at: float = 0.0


class PopulationClient:
    """Chat with any expert of a run through one or several vLLM servers."""

    def __init__(
        self,
        url: str | Sequence[str],
        store: ExpertStore,
        *,
        base_id: ExpertId,
        max_loaded: int,
        timeout: float = 300.0,
        retries: int = 3,
        backoff: float = 0.5,
        revive_after: float = 5.0,
    ) -> None:
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("PopulationClient needs at least one server URL")
        self.replicas = [Replica(u.rstrip("/")) for u in urls]
        self.url = self.replicas[0].url
        self.store = store
        self.base_id = base_id
        self.max_loaded = max_loaded
        self.retries = retries
        self.backoff = backoff
        self.revive_after = revive_after
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=1024, max_keepalive_connections=256),
        )

    @property
    def loaded(self) -> list[ExpertId]:
        """Adapters this client believes loaded (on any server), least recently used first."""
        return list(dict.fromkeys(e for r in self.replicas for e in r.loaded))

    @property
    def answered(self) -> dict[str, int]:
        """Chat requests each server answered, by URL."""
        return {r.url: r.answered for r in self.replicas}

    async def server_adapters(self) -> list[ExpertId]:
        """Adapter ids the live servers report in /v1/models (all of them together)."""
        ids: list[ExpertId] = []
        for replica in self._live():
            ids += await self._adapters_on(replica)
        return list(dict.fromkeys(ids))

    async def resync(self) -> None:
        """Align each registry with its server; a server that does not answer is marked down."""
        for replica in self.replicas:
            try:
                on_server = set(await self._adapters_on(replica))
            except ServerUnreachableError as err:
                self._mark_down(replica, err)
                continue
            replica.down = False
            async with replica.changed:
                for expert_id in [e for e in replica.loaded if e not in on_server]:
                    del replica.loaded[expert_id]
                for expert_id in on_server - set(replica.loaded):
                    replica.loaded[expert_id] = None
                replica.changed.notify_all()
        if not self._live():
            raise ServerUnreachableError(f"no population server answers: {self._urls()}")

    async def ensure_loaded(self, expert_id: ExpertId) -> None:
        """Load an expert's adapter on every live server unless loaded; idempotent."""
        for replica in self._live():
            async with self._acquire(replica, expert_id):
                pass

    async def unload(self, expert_id: ExpertId) -> None:
        """Unload an adapter everywhere (waits for its requests in flight); unknown ids pass."""
        for replica in self._live():
            await self._unload_when_idle(replica, expert_id)

    async def _unload_when_idle(self, replica: Replica, expert_id: ExpertId) -> None:
        async with replica.changed:
            await replica.changed.wait_for(lambda: replica.in_use[expert_id] == 0)
            if expert_id in replica.loaded:
                await self._unload_locked(replica, expert_id)

    async def chat(
        self,
        expert_id: ExpertId,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        **extra: Any,
    ) -> ChatResult:
        """One chat completion from ``expert_id`` on the least busy live server."""
        body = {
            "model": expert_id,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            **extra,
        }
        last: ServerUnreachableError | None = None
        for _ in range(2 * len(self.replicas)):
            try:
                replica = await self._pick(expert_id)
            except ServerUnreachableError as err:
                if last is None:
                    raise
                raise ServerUnreachableError(f"{err}; last error: {last}") from last
            replica.outstanding += 1
            try:
                return await self._chat_on(replica, expert_id, body)
            except ServerUnreachableError as err:
                self._mark_down(replica, err)
                last = err
            finally:
                replica.outstanding -= 1
        assert last is not None
        raise last

    async def _chat_on(
        self, replica: Replica, expert_id: ExpertId, body: dict[str, Any]
    ) -> ChatResult:
        for attempt in (1, 2):
            async with self._acquire(replica, expert_id):
                started = time.perf_counter()
                response = await self._request(
                    replica, "POST", "/v1/chat/completions", body, allow=(404,)
                )
            if response.status_code != 404:
                data = response.json()
                choice, usage = data["choices"][0], data.get("usage") or {}
                replica.answered += 1
                return ChatResult(
                    expert_id=expert_id,
                    text=choice["message"].get("content") or "",
                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    completion_tokens=int(usage.get("completion_tokens", 0)),
                    seconds=time.perf_counter() - started,
                    finish_reason=str(choice.get("finish_reason")),
                    server=replica.url,
                )
            if attempt == 1 and expert_id != self.base_id:
                log.warning("%s lost adapter %s (restarted?); re-loading", replica.url, expert_id)
                await self._resync_one(replica)
        raise ServerError(f"server does not serve model {expert_id!r}: {_error_text(response)}")

    async def _pick(self, expert_id: ExpertId) -> Replica:
        """The live server with the fewest requests in flight; probes down ones when due."""
        now = time.monotonic()
        for replica in self.replicas:
            if replica.down and replica.probe_at <= now:
                replica.probe_at = now + self.revive_after
                if await self._healthy(replica):
                    log.warning("population server %s is back", replica.url)
                    replica.down = False
        live = self._live()
        if not live:
            raise ServerUnreachableError(f"no population server answers: {self._urls()}")
        return min(
            live,
            key=lambda r: (r.outstanding, expert_id not in r.loaded, self.replicas.index(r)),
        )

    def _live(self) -> list[Replica]:
        return [r for r in self.replicas if not r.down]

    def _urls(self) -> str:
        return ", ".join(r.url for r in self.replicas)

    def _mark_down(self, replica: Replica, err: Exception) -> None:
        if not replica.down:
            log.warning("population server %s is down: %s", replica.url, err)
        replica.down = True
        replica.probe_at = time.monotonic() + self.revive_after
        replica.loaded.clear()  # a vLLM that comes back holds no adapters

    async def _healthy(self, replica: Replica) -> bool:
        try:
            response = await self._http.get(replica.url + "/health", timeout=3.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _adapters_on(self, replica: Replica) -> list[ExpertId]:
        response = await self._request(replica, "GET", "/v1/models")
        return [m["id"] for m in response.json()["data"] if m.get("parent")]

    async def _resync_one(self, replica: Replica) -> None:
        on_server = set(await self._adapters_on(replica))
        async with replica.changed:
            for expert_id in [e for e in replica.loaded if e not in on_server]:
                del replica.loaded[expert_id]
            replica.changed.notify_all()

    @asynccontextmanager
    async def _acquire(self, replica: Replica, expert_id: ExpertId) -> AsyncIterator[None]:
        """Make sure the adapter is loaded on ``replica`` and pin it while the block runs."""
        if expert_id == self.base_id:
            yield
            return
        async with replica.changed:
            if expert_id in replica.loaded:
                replica.loaded.move_to_end(expert_id)
            else:
                await self._load_locked(replica, expert_id)
            replica.in_use[expert_id] += 1
        try:
            yield
        finally:
            async with replica.changed:
                replica.in_use[expert_id] -= 1
                replica.changed.notify_all()

    async def _load_locked(self, replica: Replica, expert_id: ExpertId) -> None:
        while len(replica.loaded) >= self.max_loaded:
            idle = [e for e in replica.loaded if replica.in_use[e] == 0]
            if idle:
                await self._unload_locked(replica, idle[0])
            else:
                await replica.changed.wait()
        folder = self.store.adapter_dir(expert_id)
        if folder is None:
            raise ServerError(f"{expert_id} is the base model; it has no adapter")
        body = {"lora_name": expert_id, "lora_path": str(folder.resolve())}
        # vLLM answers 400/404 for a bad path and 500 when its worker refuses the weights
        # (rank above the cap, unsupported modules): retrying cannot help either way.
        response = await self._request(
            replica, "POST", "/v1/load_lora_adapter", body, allow=(400, 404, 500)
        )
        if response.status_code != 200 and "already been loaded" not in response.text:
            raise AdapterRejectedError(
                f"vLLM rejected adapter {expert_id} ({folder}): {_error_text(response)}"
            )
        replica.loaded[expert_id] = None
        log.debug("loaded adapter %s on %s", expert_id, replica.url)

    async def _unload_locked(self, replica: Replica, expert_id: ExpertId) -> None:
        body = {"lora_name": expert_id}
        await self._request(replica, "POST", "/v1/unload_lora_adapter", body, allow=(404,))
        replica.loaded.pop(expert_id, None)
        log.debug("unloaded adapter %s on %s", expert_id, replica.url)

    async def _request(
        self,
        replica: Replica,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send with bounded retries and exponential backoff on network errors and 5xx."""
        last, unreachable, url = "", False, replica.url + path
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), 30.0))
            try:
                response = await self._http.request(method, url, json=body)
            except httpx.TimeoutException as err:
                last, unreachable = f"timed out ({type(err).__name__})", True
                continue
            except httpx.TransportError as err:
                last, unreachable = f"unreachable ({type(err).__name__}: {err})", True
                continue
            if response.status_code < 400 or response.status_code in allow:
                return response
            last, unreachable = f"HTTP {response.status_code}: {_error_text(response)}", False
            if response.status_code < 500:
                break
        error = ServerUnreachableError if unreachable else ServerError
        raise error(f"{method} {url} failed after {attempt + 1} attempt(s): {last}")

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:500]


@asynccontextmanager
async def open_client(
    ctx: Context, url: str | Sequence[str], store: ExpertStore
) -> AsyncIterator[PopulationClient]:
    """A client configured by ``ctx``, aligned with the servers' adapters, closed after use."""
    client = PopulationClient(
        url,
        store,
        base_id=ctx.served_model_name,
        max_loaded=ctx.max_loaded_adapters,
        timeout=ctx.request_timeout,
        retries=ctx.request_retries,
    )
    try:
        await client.resync()
        yield client
    finally:
        await client.aclose()
