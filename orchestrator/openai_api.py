"""OpenAI's wire format: request models (validated by pydantic), responses and the error shape.

Unknown request fields are ignored, as OpenAI-compatible servers do, so clients that send extra
options (user, stream_options, ...) work; fields with no meaning here are rejected when set to
something this server cannot honour (n > 1 for chat, logprobs).
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.completion import CompletionRequest, SamplingConfig

Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
TopP = Annotated[float, Field(gt=0.0, le=1.0)]


class APIError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.kind = (
            status,
            message,
            code,
            param,
            kind,
        )

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI clients parse."""
        return error_body(self.message, self.kind, self.param, self.code)


def error_body(
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class ContentPart(BaseModel):
    """A part of a multi-part message; only text parts carry the request."""

    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text (text parts joined)."""
        if isinstance(self.content, list):
            return "\n".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatBody(BaseModel):
    """POST /v1/chat/completions."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    stream: bool = False
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    seed: int | None = None
    n: Literal[1] = 1


class CompletionBody(BaseModel):
    """POST /v1/completions: a raw continuation from one specialist."""

    model_config = ConfigDict(extra="ignore")
    model: str
    prompt: str | list[str] = Field(min_length=1)
    max_tokens: Annotated[int, Field(ge=1)] = 16
    temperature: Temperature = 1.0
    top_p: TopP = 1.0
    n: Annotated[int, Field(ge=1, le=8)] = 1
    stop: str | list[str] | None = Field(default=None)
    seed: int = 0
    stream: bool = False
    echo: bool = False
    logprobs: None = None

    def prompts(self) -> list[str]:
        """The prompt(s) as a list."""
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def stops(self) -> list[str]:
        """The stop strings as a list."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def to_request(self) -> CompletionRequest:
        """The same completion as the one request type the models serve."""
        return CompletionRequest(
            tuple(self.prompts()),
            n_samples=self.n,
            max_new_tokens=self.max_tokens,
            sampling=SamplingConfig(temperature=self.temperature, top_p=self.top_p),
            stop=tuple(self.stops()),
            seed=self.seed,
        )


def _envelope(kind: str, prefix: str, model: str) -> dict[str, Any]:
    return {
        "id": f"{prefix}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
    }


def chat_completion(model: str, content: str) -> dict[str, Any]:
    """A complete chat.completion response."""
    return _envelope("chat.completion", "chatcmpl", model) | {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ]
    }


class ChatChunks:
    """chat.completion.chunk events of one streamed response (same id and timestamp)."""

    def __init__(self, model: str) -> None:
        self.envelope = _envelope("chat.completion.chunk", "chatcmpl", model)

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        """One chunk with `delta`."""
        return self.envelope | {
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ]
        }


def text_completion(model: str, texts: list[str]) -> dict[str, Any]:
    """A text_completion response with one choice per text."""
    return _envelope("text_completion", "cmpl", model) | {
        "choices": [
            {"index": i, "text": text, "finish_reason": "stop", "logprobs": None}
            for i, text in enumerate(texts)
        ]
    }


def model_list(ids: list[str], created: int) -> dict[str, Any]:
    """GET /v1/models."""
    return {
        "object": "list",
        "data": [
            {"id": model_id, "object": "model", "created": created, "owned_by": "codefactory"}
            for model_id in ids
        ],
    }
