"""Tiny OpenAI-compatible servers on 127.0.0.1 that fake only the model's words.

``StubOpenAI`` replays scripted chat replies: each reply is a string (the message
content), an int (an HTTP error status), a float (seconds to stall before answering, to
trigger client timeouts) or a function of the request body returning the content.
Requests are recorded for assertions on the prompts sent.
"""

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = str | int | float | Callable[[dict[str, Any]], str]


class _Server(ThreadingHTTPServer):
    """Many requests in flight at once (the subjects' concurrency) and a reusable port."""

    request_queue_size = 512
    allow_reuse_address = True
    daemon_threads = True


class LocalJsonServer:
    """JSON in, JSON out over HTTP POST on a free loopback port; subclasses answer."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner._lock:
                    owner.requests.append(body)
                    owner.headers.append(dict(self.headers))
                self._send(*owner.respond_at(self.path, body))

            def do_GET(self) -> None:
                self._send(*owner.respond_get(self.path))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = _Server(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        # A short poll: shutdown() waits up to one poll, and tests close hundreds of stubs.
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def respond(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """HTTP status and JSON payload for one request."""
        raise NotImplementedError

    def respond_at(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer a POST to ``path``; by default every path gets ``respond``."""
        return self.respond(body)

    def respond_get(self, path: str) -> tuple[int, dict[str, Any]]:
        """Answer a GET; by default nothing is there."""
        return 404, {"error": {"message": f"no GET {path}"}}

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "LocalJsonServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StubOpenAI(LocalJsonServer):
    """``with StubOpenAI([...]) as stub:``; ``stub.url`` is the base URL."""

    def __init__(self, replies: list[Reply], default: Reply | None = None) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.default = default
        super().__init__()

    def __enter__(self) -> "StubOpenAI":
        return self

    def prompts(self) -> list[str]:
        """The last user message of every request received."""
        return [r["messages"][-1]["content"] for r in self.requests]

    def respond(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            reply = self.replies.popleft() if self.replies else self.default
        if reply is None:
            reply = 500
        if callable(reply):
            reply = reply(body)
        if isinstance(reply, float):
            time.sleep(reply)
            reply = "{}"
        if isinstance(reply, int):
            return reply, {"error": {"message": "scripted failure"}}
        return 200, {
            "id": "stub",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "stub"),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": reply},
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
