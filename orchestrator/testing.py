"""Test helpers: an app served by real uvicorn on a free loopback port, in a thread, and a fake
OpenAI-compatible chat server to serve."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

WAIT_S = 60  # a safety net only: the server is up long before


class _Server(uvicorn.Server):
    """uvicorn, setting `ready` once it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` served on a free 127.0.0.1 port until the block ends; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        if not server.ready.wait(WAIT_S):
            raise RuntimeError(f"uvicorn did not start within {WAIT_S} s")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        sock.close()


def chat_app(answer: Callable[[str], str], model: str = "teacher") -> FastAPI:
    """An OpenAI-compatible chat server listing one model, whose reply to a conversation is
    `answer(its last message)`; sync handlers, so concurrent requests run in parallel threads."""
    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model, "object": "model"}]}

    @app.post("/v1/chat/completions")
    def chat(body: dict[str, Any]) -> dict[str, Any]:
        message = {"role": "assistant", "content": answer(body["messages"][-1]["content"])}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return {"object": "chat.completion", "model": body["model"], "choices": [choice]}

    return app
