"""Build the chat model of each role: the one seam where every role model is made.

A role model is the population server's base model (the default, no key needed), a
model at any OpenAI-compatible URL, or any ``init_chat_model`` spec (``openai:gpt-4o-mini``,
``anthropic:claude-...``). API keys come only from the environment. Retries are done by
the roles themselves (bounded, with the reason recorded), so clients retry nothing.
"""

import os
from dataclasses import dataclass
from typing import Literal

from langchain_core.language_models import BaseChatModel

from acdc.context import Context

Role = Literal["scientist", "judge", "curator"]


@dataclass(frozen=True)
class RoleSettings:
    """One role's model choice and call limits, read off the Context."""

    role: Role
    model: str
    base_url: str
    temperature: float
    max_tokens: int
    timeout: float
    retries: int
    concurrency: int

    @classmethod
    def of(cls, ctx: Context, role: Role) -> "RoleSettings":
        """The settings of ``role`` in ``ctx``."""
        return cls(
            role=role,
            model=getattr(ctx, f"{role}_model"),
            base_url=getattr(ctx, f"{role}_base_url"),
            temperature=getattr(ctx, f"{role}_temperature"),
            max_tokens=getattr(ctx, f"{role}_max_tokens"),
            timeout=getattr(ctx, f"{role}_timeout"),
            retries=getattr(ctx, f"{role}_retries"),
            concurrency=role_concurrency(ctx, role),
        )

    @property
    def local(self) -> bool:
        """Whether the role talks to an OpenAI-compatible server (vLLM's guided decoding)."""
        return bool(self.base_url) or not self.model or ":" not in self.model


HOSTED_CONCURRENCY = 8
"""Calls in flight at once to a role model elsewhere, when ``<role>_concurrency`` is 0."""


def role_concurrency(ctx: Context, role: Role) -> int:
    """Calls in flight at once for ``role``: ``<role>_concurrency`` when set.

    Unset (0), a role the population server serves gets the server's capacity
    (``max_num_seqs``: fewer leaves its batch half empty), a role elsewhere 8.
    """
    explicit = int(getattr(ctx, f"{role}_concurrency"))
    if explicit:
        return explicit
    model, url = getattr(ctx, f"{role}_model"), getattr(ctx, f"{role}_base_url")
    on_population_server = not url and ":" not in model
    return server_capacity(ctx) if on_population_server else HOSTED_CONCURRENCY


def server_capacity(ctx: Context) -> int:
    """Sequences one population server batches at once: ``max_num_seqs`` per engine."""
    return ctx.max_num_seqs * ctx.data_parallel_size


def subject_concurrency(ctx: Context) -> int:
    """Expert answers in flight at once: ``subject_concurrency`` when set.

    Unset (0), the capacity of every population server the answers are spread over: a
    smaller bound leaves the batch part empty while a phase's answers wait their turn.
    """
    return ctx.subject_concurrency or server_capacity(ctx) * max(1, len(ctx.attached_urls))


def load_chat_model(settings: RoleSettings, server_url: str, base_model_id: str) -> BaseChatModel:
    """The chat model of a role.

    Args:
        settings: the role's settings.
        server_url: the population server (used when the role names no model or URL).
        base_model_id: the base model's id on that server.
    """
    if settings.local:
        from langchain_openai import ChatOpenAI

        url = (settings.base_url or server_url).rstrip("/")
        return ChatOpenAI(
            model=settings.model or base_model_id,
            base_url=url if url.endswith("/v1") else url + "/v1",
            # A remote OpenAI-compatible server may want a key; vLLM ignores it.
            api_key=os.environ.get("OPENAI_API_KEY", "EMPTY"),  # type: ignore[arg-type]
            temperature=settings.temperature,
            max_completion_tokens=settings.max_tokens,
            timeout=settings.timeout,
            max_retries=0,
            use_responses_api=False,
        )
    try:
        from langchain.chat_models import init_chat_model
    except ImportError as err:  # pragma: no cover - langchain is a dependency
        raise RuntimeError("init_chat_model needs the 'langchain' package") from err
    try:
        return init_chat_model(
            settings.model,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            timeout=settings.timeout,
            max_retries=0,
        )
    except ImportError as err:
        provider = settings.model.split(":", 1)[0]
        raise RuntimeError(
            f"{settings.role}_model {settings.model!r} needs the package langchain-{provider}: "
            f"pip install langchain-{provider} (or the matching acdc extra)"
        ) from err
