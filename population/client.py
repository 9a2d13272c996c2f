"""Talk to the population server: experts load on demand, with an LRU bound and retries.

The registry mirrors which adapters the server holds. A request for an expert not loaded
loads it first; when the bound is reached the least recently used adapter with no
request in flight is unloaded. If the server restarted (it answers 404 for an adapter
we thought loaded) the registry forgets its view, re-loads and retries once.
"""

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
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


class PopulationClient:
    """Chat with any expert of a run through one OpenAI-compatible vLLM server."""

    def __init__(
        self,
        url: str,
        store: ExpertStore,
        *,
        base_id: ExpertId,
        max_loaded: int,
        timeout: float = 300.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.url = url.rstrip("/")
        self.store = store
        self.base_id = base_id
        self.max_loaded = max_loaded
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=1024, max_keepalive_connections=256),
        )
        self._loaded: OrderedDict[ExpertId, None] = OrderedDict()
        self._in_use: Counter[ExpertId] = Counter()
        self._changed = asyncio.Condition()

    @property
    def loaded(self) -> list[ExpertId]:
        """Adapters this client believes the server holds, least recently used first."""
        return list(self._loaded)

    async def server_adapters(self) -> list[ExpertId]:
        """Adapter ids the server reports in /v1/models."""
        response = await self._request("GET", "/v1/models")
        return [m["id"] for m in response.json()["data"] if m.get("parent")]

    async def resync(self) -> None:
        """Align the registry with the server (after a restart it holds no adapters)."""
        on_server = set(await self.server_adapters())
        async with self._changed:
            for expert_id in [e for e in self._loaded if e not in on_server]:
                del self._loaded[expert_id]
            for expert_id in on_server - set(self._loaded):
                self._loaded[expert_id] = None
            self._changed.notify_all()

    async def ensure_loaded(self, expert_id: ExpertId) -> None:
        """Load an expert's adapter unless it is loaded; idempotent."""
        async with self._acquire(expert_id):
            pass

    async def unload(self, expert_id: ExpertId) -> None:
        """Unload an adapter (waits for its requests in flight); unknown ids are ignored."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._in_use[expert_id] == 0)
            if expert_id in self._loaded:
                await self._unload_locked(expert_id)

    async def chat(
        self,
        expert_id: ExpertId,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        **extra: Any,
    ) -> ChatResult:
        """One chat completion from ``expert_id``, loading its adapter if needed."""
        body = {
            "model": expert_id,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            **extra,
        }
        for attempt in (1, 2):
            async with self._acquire(expert_id):
                started = time.perf_counter()
                response = await self._request("POST", "/v1/chat/completions", body, allow=(404,))
            if response.status_code != 404:
                data = response.json()
                choice, usage = data["choices"][0], data.get("usage") or {}
                return ChatResult(
                    expert_id=expert_id,
                    text=choice["message"].get("content") or "",
                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    completion_tokens=int(usage.get("completion_tokens", 0)),
                    seconds=time.perf_counter() - started,
                    finish_reason=str(choice.get("finish_reason")),
                )
            if attempt == 1 and expert_id != self.base_id:
                log.warning("server lost adapter %s (restarted?); re-loading", expert_id)
                await self.resync()
        raise ServerError(f"server does not serve model {expert_id!r}: {_error_text(response)}")

    @asynccontextmanager
    async def _acquire(self, expert_id: ExpertId) -> AsyncIterator[None]:
        """Make sure the adapter is loaded and pin it while the block runs."""
        if expert_id == self.base_id:
            yield
            return
        async with self._changed:
            if expert_id in self._loaded:
                self._loaded.move_to_end(expert_id)
            else:
                await self._load_locked(expert_id)
            self._in_use[expert_id] += 1
        try:
            yield
        finally:
            async with self._changed:
                self._in_use[expert_id] -= 1
                self._changed.notify_all()

    async def _load_locked(self, expert_id: ExpertId) -> None:
        while len(self._loaded) >= self.max_loaded:
            idle = [e for e in self._loaded if self._in_use[e] == 0]
            if idle:
                await self._unload_locked(idle[0])
            else:
                await self._changed.wait()
        folder = self.store.adapter_dir(expert_id)
        if folder is None:
            raise ServerError(f"{expert_id} is the base model; it has no adapter")
        body = {"lora_name": expert_id, "lora_path": str(folder.resolve())}
        # vLLM answers 400/404 for a bad path and 500 when its worker refuses the weights
        # (rank above the cap, unsupported modules): retrying cannot help either way.
        response = await self._request("POST", "/v1/load_lora_adapter", body, allow=(400, 404, 500))
        if response.status_code != 200 and "already been loaded" not in response.text:
            raise AdapterRejectedError(
                f"vLLM rejected adapter {expert_id} ({folder}): {_error_text(response)}"
            )
        self._loaded[expert_id] = None
        log.debug("loaded adapter %s", expert_id)

    async def _unload_locked(self, expert_id: ExpertId) -> None:
        body = {"lora_name": expert_id}
        await self._request("POST", "/v1/unload_lora_adapter", body, allow=(404,))
        self._loaded.pop(expert_id, None)
        log.debug("unloaded adapter %s", expert_id)

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send with bounded retries and exponential backoff on network errors and 5xx."""
        last, unreachable = "", False
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), 30.0))
            try:
                response = await self._http.request(method, self.url + path, json=body)
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
        raise error(f"{method} {self.url}{path} failed after {attempt + 1} attempt(s): {last}")

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
    ctx: Context, url: str, store: ExpertStore
) -> AsyncIterator[PopulationClient]:
    """A client configured by ``ctx``, aligned with the server's adapters, closed after use."""
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
