"""The task force as an OpenAI-compatible HTTP server (``acdc taskforce serve``).

Any OpenAI client can then use a task force like one model: model ``taskforce``
answers best-of-N with the configured selector (or asks the routed member, with
``taskforce_router``), and each member's id asks that member alone. Only what a chat
client needs is served: ``GET /v1/models`` and ``POST /v1/chat/completions``. A reply is
a standard chat completion plus an ``acdc`` object naming the winning member, why it
won, and every member's answer. The request may carry ``selector`` (``extra_body`` in
the OpenAI client) to override the selector.

With ``stream=True`` the reply is server-sent events as any OpenAI-compatible server
sends them, but only once the pick is made (best-of-N needs every member's whole
answer first): the role, the chosen answer in chunks, a last chunk with the finish
reason and the ``acdc`` object, then (``stream_options.include_usage``) a usage chunk
with no choices, then ``[DONE]``. A failure before the pick is a plain JSON error.
"""

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from acdc.agents.selectors import SelectorName
from acdc.context import Context
from acdc.graphs.taskforce import TASKFORCE_MODEL, TaskForceInput, graph
from acdc.graphs.taskforce_resources import taskforce_resources

log = logging.getLogger(__name__)


class ChatMessage(BaseModel):
    """One chat message; list content keeps only its text parts."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    """OpenAI's ``stream_options``: ``include_usage`` adds a usage chunk at the end."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """The OpenAI chat completion request; parameters not listed are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0)
    stream: bool = False
    stream_options: StreamOptions | None = None
    selector: SelectorName | None = None


def error(status: int, message: str, kind: str) -> JSONResponse:
    """An error in the shape OpenAI clients read."""
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status)


def create_app(ctx: Context) -> FastAPI:
    """The web app of ``ctx``'s task force; opens the run's resources (and server) first.

    Raises:
        FileNotFoundError: The run folder does not exist.
        ValueError: The task force cannot be formed (no evaluations, unknown members).
    """
    members = taskforce_resources(ctx).members(ctx)
    models = list(dict.fromkeys([TASKFORCE_MODEL, *members]))
    app = FastAPI(title="acdc task force", description=__doc__)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return error(400, f"invalid request: {problems}", "invalid_request_error")

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "acdc"} for m in models]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(
        request: ChatRequest,
    ) -> JSONResponse | StreamingResponse | dict[str, Any]:
        if request.model not in models:
            message = f"model {request.model!r} does not exist; this server has: {models}"
            return error(404, message, "model_not_found")
        user = [m.text() for m in request.messages if m.role == "user"]
        if not user or not user[-1].strip():
            return error(400, "the last user message is empty", "invalid_request_error")
        state = TaskForceInput(
            question=user[-1],
            messages=[{"role": m.role, "content": m.text()} for m in request.messages],
            model=request.model,
        )
        max_tokens = request.max_completion_tokens or request.max_tokens
        if max_tokens is not None:
            state["max_tokens"] = max_tokens
        if request.temperature is not None:
            state["temperature"] = request.temperature
        if request.selector is not None:
            state["selector"] = request.selector
        result = await graph.ainvoke(state, context=ctx)
        if result["error"]:
            return error(502, result["error"], "server_error")
        body = completion(request.model, result)
        if request.stream:
            usage = request.stream_options is not None and request.stream_options.include_usage
            return StreamingResponse(sse_events(body, usage), media_type="text/event-stream")
        return body

    return app


def completion(model: str, result: dict[str, Any]) -> dict[str, Any]:
    """The chat completion body of a task force result."""
    answers = result["answers"]
    won = next(a for a in answers if a["expert_id"] == result["winner"] and not a["error"])
    prompt_tokens = sum(a["prompt_tokens"] for a in answers)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result["answer"]},
                "finish_reason": won["finish_reason"] or "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": result["tokens"],
            "total_tokens": prompt_tokens + result["tokens"],
        },
        "acdc": {
            "winner": result["winner"],
            "why": result["why"],
            "decided_by": result["decided_by"],
            "members": result["members"],
            "answers": [
                {"expert_id": a["expert_id"], "text": a["text"], "error": a["error"]}
                for a in answers
            ],
        },
    }


STREAM_PIECE = 16
"""Characters per content chunk of a streamed answer (cut at whitespace when possible)."""


def pieces(text: str, size: int = STREAM_PIECE) -> list[str]:
    """``text`` cut into chunks of about ``size`` characters that join back to it."""
    out: list[str] = []
    while text:
        cut = text.find(" ", size)
        cut = cut + 1 if 0 <= cut < 4 * size else size
        out.append(text[:cut])
        text = text[cut:]
    return out


def sse_events(body: dict[str, Any], include_usage: bool) -> Iterator[str]:
    """The server-sent events of a chat completion ``body`` streamed as chunks.

    Every chunk has the completion's id, creation time and model; the chunk with the
    finish reason carries ``acdc``, and the usage chunk (asked for) has no choices.
    """
    head = {k: body[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    choice = body["choices"][0]

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        payload = head | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(payload | extra)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in pieces(choice["message"]["content"]):
        yield chunk({"content": piece})
    yield chunk({}, choice["finish_reason"], acdc=body["acdc"])
    if include_usage:
        yield f"data: {json.dumps(head | {'choices': [], 'usage': body['usage']})}\n\n"
    yield "data: [DONE]\n\n"


def serve(ctx: Context, host: str, port: int) -> None:
    """Serve ``ctx``'s task force until Ctrl-C (the population server stops at exit)."""
    app = create_app(ctx)
    members = taskforce_resources(ctx).members(ctx)
    how = "routed to one member" if ctx.taskforce_router else f"best-of-N by {ctx.selector}"
    print(f"task force of run {ctx.run_id}: {', '.join(members)}")
    print(f"models: {TASKFORCE_MODEL} ({how}); each member's id asks that member alone")
    print(f"serving at http://{host}:{port}/v1; press Ctrl-C to stop")
    uvicorn.run(app, host=host, port=port, log_level="warning")
