"""A scripted OpenAI-compatible chat-completions server on loopback.

It plays a model's turns from a script: each POST to `/v1/chat/completions`
gets the next reply, and every request is kept so a test can check what the
agent sent (the tool results above all).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def tool_call(code: str, call_id: str = "call_1") -> dict[str, Any]:
    """A turn in which the model calls `run_code(code)`."""
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": "run_code", "arguments": json.dumps({"code": code})},
            }
        ],
    }


def answer(text: str) -> dict[str, Any]:
    """A turn in which the model answers."""
    return {"role": "assistant", "content": text}


class ChatServer:
    """Serves `turns` in order on 127.0.0.1 (a free port) until stopped."""

    def __init__(self, turns: list[dict[str, Any]]) -> None:
        self.turns = list(turns)
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(body)
                if not self.path.endswith("/chat/completions") or not server.turns:
                    self.send_response(404 if server.turns else 500)
                    self.end_headers()
                    return
                message = server.turns.pop(0)
                reply = {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "scripted"),
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def tool_results(self) -> list[str]:
        """The `tool` messages of the last request, in order."""
        last = self.requests[-1]["messages"] if self.requests else []
        return [m["content"] for m in last if m.get("role") == "tool"]
