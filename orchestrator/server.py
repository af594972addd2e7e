"""The OpenAI-compatible HTTP API (FastAPI): chat via the orchestrator, raw specialist completions.

POST /v1/chat/completions (stream: true sends server-sent events), POST /v1/completions (with
OpenAI's `suffix`, the middle between prompt and suffix), GET /v1/models, GET /health. Every
error, down to a malformed or oversized body, is answered in OpenAI's error shape. Responses
carry OpenAI's `usage`: a completion's tokens as its specialist counts them; a chat answer's,
summed over its parts (every attempt, repairs included, each in its own specialist's tokens; the
planner's are not counted). Generation runs in the orchestrator's thread pool on thread-safe
specialist models (sharing.py: one call at a time, or concurrent calls merged), so the event loop
keeps serving while the models work.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage

from core.config import ConfigError
from orchestrator.executor import PartResult
from orchestrator.languages import canonical_language
from orchestrator.openai_api import (
    MAX_STOPS,
    APIError,
    ChatBody,
    ChatChunks,
    CompletionBody,
    chat_completion,
    error_body,
    model_list,
    text_completion,
    usage,
)
from orchestrator.pipeline import Orchestrator, Piece
from orchestrator.plan import PlanError

ORCHESTRATOR_MODEL = "orchestrator"
# How much of an oversized body is read (and dropped) before the 413 is sent: a client that is
# still sending when the server closes the connection meets a reset instead of the answer.
DRAIN_BYTES = 16 * 2**20


@dataclasses.dataclass(frozen=True)
class ServerLimits:
    """What one request may ask for."""

    max_body_bytes: int = dataclasses.field(
        default=1_000_000, metadata={"help": "largest request body accepted (413 above)"}
    )
    max_prompt_chars: int = dataclasses.field(
        default=8000, metadata={"help": "longest request text or completion prompt"}
    )
    max_tokens: int = dataclasses.field(
        default=512, metadata={"help": "largest max_tokens per chat part or completion"}
    )

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if getattr(self, field.name) <= 0:
                raise ConfigError(
                    f"--{field.name.replace('_', '-')} must be positive, got "
                    f"{getattr(self, field.name)}"
                )


class BodyLimit:
    """ASGI middleware: reads each request's whole body before the app runs, so that no answer
    (413, 401, 404, ...) is sent while the client is still sending.

    A body over `max_bytes` (by Content-Length or as received, e.g. chunked) is answered 413
    with `Connection: close` once it has been read; reading stops DRAIN_BYTES past the limit
    (and a Content-Length beyond that is answered at once): a bigger sender may meet a reset.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        undrainable = length.isdigit() and int(length) > self.max_bytes + DRAIN_BYTES
        received, chunks, more = 0, [], not undrainable
        while more and received <= self.max_bytes + DRAIN_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received <= self.max_bytes:
                chunks.append(chunk)
            more = message.get("more_body", False)
        if undrainable or received > self.max_bytes:
            response = JSONResponse(
                error_body(
                    f"request body exceeds {self.max_bytes} bytes", code="request_too_large"
                ),
                status_code=413,
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> ASGIMessage:
            nonlocal replayed
            if replayed:
                return await receive()  # what follows the body: the client's disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"data: {payload}\n\n".encode()


def _check_prompt(text: str, limits: ServerLimits, param: str) -> None:
    if len(text) > limits.max_prompt_chars:
        raise APIError(
            400,
            f"{param} has {len(text)} characters; the limit is {limits.max_prompt_chars}",
            "context_length_exceeded",
            param,
        )


def _check_max_tokens(value: int | None, limits: ServerLimits, param: str) -> None:
    if value is not None and value > limits.max_tokens:
        raise APIError(400, f"{param} is {value}; the limit is {limits.max_tokens}", None, param)


def _request_text(request: ChatBody) -> str:
    users = [m for m in request.messages if m.role == "user" and m.text().strip()]
    if not users:
        raise APIError(400, "messages must contain a user message with text", None, "messages")
    return users[-1].text()


def create_app(
    orchestrator: Orchestrator, token: str | None = None, limits: ServerLimits | None = None
) -> FastAPI:
    """The API app over `orchestrator`; with `token`, /v1/* needs `Authorization: Bearer token`."""
    limits = limits or ServerLimits()
    app = FastAPI(title="codefactory orchestrator", docs_url=None, redoc_url=None)
    created = int(time.time())

    @app.exception_handler(APIError)
    async def api_error(_: Request, error: APIError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part != "body") or "body"
        return JSONResponse(error_body(f"{where}: {first['msg']}", param=where), status_code=400)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, error: Exception) -> JSONResponse:
        message = f"internal error ({type(error).__name__}); the server log has details"
        return JSONResponse(error_body(message, kind="server_error"), status_code=500)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(str(error.detail), code=str(error.status_code)),
            status_code=error.status_code,
        )

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    async def authorised(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise APIError(
                401, "missing or wrong bearer token", "invalid_api_key", kind="authentication_error"
            )

    async def json_body(request: Request) -> None:
        content_type = request.headers.get("content-type", "")
        media = content_type.partition(";")[0].strip().lower()
        json_type = media == "application/json" or (
            media.startswith("application/") and media.endswith("+json")
        )
        if media and not json_type:  # no Content-Type is read as JSON, as FastAPI does
            raise APIError(
                415,
                f"Content-Type must be application/json, got {content_type!r}",
                "unsupported_media_type",
            )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "planner": orchestrator.planner.name,
            "specialists": orchestrator.registry.languages,
        }

    @app.get("/v1/models", dependencies=[Depends(authorised)])
    async def models() -> dict[str, Any]:
        return model_list([ORCHESTRATOR_MODEL, *orchestrator.registry.languages], created)

    posted = [Depends(authorised), Depends(json_body)]

    @app.post("/v1/chat/completions", dependencies=posted)
    async def chat(request: ChatBody):
        if request.model != ORCHESTRATOR_MODEL:
            raise APIError(
                404,
                f"model {request.model!r} does not exist; chat uses {ORCHESTRATOR_MODEL!r}",
                "model_not_found",
                "model",
            )
        text = _request_text(request)
        _check_prompt(text, limits, "messages")
        max_tokens = request.max_completion_tokens or request.max_tokens
        _check_max_tokens(max_tokens, limits, "max_tokens")
        base = orchestrator.config
        sampling = dataclasses.replace(
            base.sampling,
            **{
                name: value
                for name, value in (
                    ("temperature", request.temperature),
                    ("top_p", request.top_p),
                    ("top_k", request.top_k),
                )
                if value is not None
            },
        )
        config = dataclasses.replace(
            base,
            sampling=sampling,
            seed=base.seed if request.seed is None else request.seed,
            max_new_tokens=max_tokens or base.max_new_tokens,
        )
        pieces = orchestrator.stream(text, config)
        try:
            first = await anext(pieces)  # plan errors surface here, before any bytes are sent
        except PlanError as error:
            raise APIError(400, str(error), None, "messages") from error
        if not request.stream:
            rest = [piece async for piece in pieces]
            content = first.text + "".join(piece.text for piece in rest)
            return chat_completion(request.model, content, _parts_usage(rest))
        return StreamingResponse(
            _chat_events(request.model, first, pieces, request.include_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    @app.post("/v1/completions", dependencies=posted)
    async def completions(request: CompletionBody):
        entry = orchestrator.registry.entries.get(canonical_language(request.model))
        if entry is None:
            raise APIError(
                404,
                f"model {request.model!r} does not exist; completions use a "
                f"specialist: {', '.join(orchestrator.registry.languages)}",
                "model_not_found",
                "model",
            )
        prompts = request.prompts()
        if len(prompts) > 8:
            raise APIError(
                400, f"prompt has {len(prompts)} entries; the limit is 8", None, "prompt"
            )
        for prompt in prompts:
            _check_prompt(prompt, limits, "prompt")
        if request.suffix is not None:
            _check_prompt(request.suffix, limits, "suffix")
        _check_max_tokens(request.max_tokens, limits, "max_tokens")
        if len(request.stops()) > MAX_STOPS:
            raise APIError(400, f"stop has more than {MAX_STOPS} entries", None, "stop")

        try:
            completions = await asyncio.get_running_loop().run_in_executor(
                orchestrator.pool, entry.model.complete, request.to_request()
            )
        except ConfigError as error:  # a request this specialist cannot serve (no FIM tokens)
            raise APIError(400, str(error), None, "suffix" if request.suffix else None) from error
        texts = [
            (prompt if request.echo else "") + text
            for prompt, outputs in zip(prompts, completions.texts, strict=True)
            for text in outputs
        ]
        tokens = usage(sum(completions.prompt_tokens), sum(completions.completion_tokens))
        body = text_completion(request.model, texts, tokens)
        if not request.stream:
            return body
        return StreamingResponse(
            _completion_events(body, request.include_usage), media_type="text/event-stream"
        )

    return app


def _parts_usage(pieces: list[Piece]) -> dict[str, int]:
    """The usage block of an answer: its parts' tokens summed."""
    parts: list[PartResult] = [piece.part for piece in pieces if piece.part is not None]
    return usage(
        sum(part.prompt_tokens for part in parts), sum(part.completion_tokens for part in parts)
    )


async def _chat_events(
    model: str, first: Piece, pieces: AsyncIterator[Piece], include_usage: bool
) -> AsyncIterator[bytes]:
    chunks = ChatChunks(model, include_usage)
    yield _sse(chunks.chunk({"role": "assistant", "content": ""}))
    yield _sse(chunks.chunk({"content": first.text}))
    rest = []
    async for piece in pieces:
        rest.append(piece)
        yield _sse(chunks.chunk({"content": piece.text}))
    yield _sse(chunks.chunk({}, "stop"))
    if include_usage:
        yield _sse(chunks.usage_chunk(_parts_usage(rest)))
    yield _sse("[DONE]")


async def _completion_events(body: dict[str, Any], include_usage: bool) -> AsyncIterator[bytes]:
    """The response's choices one chunk each (usage null, as OpenAI streams them when asked
    for usage), then the usage chunk if asked."""
    chunk = {key: value for key, value in body.items() if key != "usage"}
    if include_usage:
        chunk["usage"] = None
    for choice in body["choices"]:
        yield _sse(chunk | {"choices": [choice]})
    if include_usage:
        yield _sse(chunk | {"choices": [], "usage": body["usage"]})
    yield _sse("[DONE]")
