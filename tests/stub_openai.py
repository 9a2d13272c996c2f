"""A tiny OpenAI-compatible chat server on 127.0.0.1 that replays scripted replies.

It fakes only the LLM's words: each reply is a string (the message content), an int
(an HTTP error status), a float (seconds to stall before answering, to trigger
client timeouts) or a function of the request body returning the content. Requests
are recorded for assertions on the prompts sent.
"""

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = str | int | float | Callable[[dict[str, Any]], str]


class StubOpenAI:
    """Start with ``with StubOpenAI([...]) as stub:``; ``stub.url`` is the base URL."""

    def __init__(self, replies: list[Reply], default: Reply | None = None) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub._lock:
                    stub.requests.append(body)
                    reply = stub.replies.popleft() if stub.replies else stub.default
                if reply is None:
                    reply = 500
                if callable(reply):
                    reply = reply(body)
                if isinstance(reply, float):
                    time.sleep(reply)
                    reply = "{}"
                if isinstance(reply, int):
                    self._send(reply, {"error": {"message": "scripted failure"}})
                    return
                self._send(
                    200,
                    {
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
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def prompts(self) -> list[str]:
        """The last user message of every request received."""
        return [r["messages"][-1]["content"] for r in self.requests]

    def __enter__(self) -> "StubOpenAI":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
