"""OpenAI's wire format: request models (validated by pydantic), responses and the error shape.

Unknown request fields are ignored, as OpenAI-compatible servers do, so clients that send extra
options (user, ...) work; fields with no meaning here are rejected when set to something this
server cannot honour (n > 1 for chat, logprobs). `top_k` is vLLM's extension (-1 or 0: all).
Every response carries `usage`; a streamed one ends with a usage chunk when the client asks
(`stream_options: {"include_usage": true}`), as OpenAI's do.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.completion import CompletionRequest, SamplingConfig

Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
TopP = Annotated[float, Field(gt=0.0, le=1.0)]
TopK = Annotated[int, Field(ge=-1), AfterValidator(lambda k: max(k, 0))]  # vLLM's -1: all
MAX_STOPS = 4  # stop strings per request, OpenAI's limit (OpenAI-compatible servers share it)


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


class StreamOptions(BaseModel):
    """`stream_options`: whether a streamed response ends with a usage chunk."""

    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class StreamableBody(BaseModel):
    """The streaming fields of chat and completion requests."""

    stream: bool = False
    stream_options: StreamOptions | None = None

    @property
    def include_usage(self) -> bool:
        """Whether a streamed response ends with a usage chunk."""
        return self.stream_options is not None and self.stream_options.include_usage


class ChatBody(StreamableBody):
    """POST /v1/chat/completions."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    seed: int | None = None
    n: Literal[1] = 1


class CompletionBody(StreamableBody):
    """POST /v1/completions: a raw continuation from one specialist; with `suffix`, the middle
    between each prompt and it (fill-in-the-middle, as editor plugins ask)."""

    model_config = ConfigDict(extra="ignore")
    model: str
    prompt: str | list[str] = Field(min_length=1)
    suffix: str | None = None
    max_tokens: Annotated[int, Field(ge=1)] = 16
    temperature: Temperature = 1.0
    top_p: TopP = 1.0
    top_k: TopK = 0
    n: Annotated[int, Field(ge=1, le=8)] = 1
    stop: str | list[str] | None = Field(default=None)
    seed: int = 0
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
            sampling=SamplingConfig(
                temperature=self.temperature, top_k=self.top_k, top_p=self.top_p
            ),
            stop=tuple(self.stops()),
            seed=self.seed,
            suffix=self.suffix,
        )


def _envelope(kind: str, prefix: str, model: str) -> dict[str, Any]:
    return {
        "id": f"{prefix}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
    }


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """OpenAI's usage block."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(model: str, content: str, tokens: dict[str, int]) -> dict[str, Any]:
    """A complete chat.completion response; `tokens` is its usage block."""
    return _envelope("chat.completion", "chatcmpl", model) | {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": tokens,
    }


class ChatChunks:
    """chat.completion.chunk events of one streamed response (same id and timestamp); with
    `include_usage`, each carries `usage: null` until the final usage chunk."""

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self.envelope = _envelope("chat.completion.chunk", "chatcmpl", model)
        if include_usage:
            self.envelope["usage"] = None

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        """One chunk with `delta`."""
        return self.envelope | {
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ]
        }

    def usage_chunk(self, tokens: dict[str, int]) -> dict[str, Any]:
        """The last chunk of a stream that asked for usage: no choices, the usage block."""
        return self.envelope | {"choices": [], "usage": tokens}


def text_completion(model: str, texts: list[str], tokens: dict[str, int]) -> dict[str, Any]:
    """A text_completion response with one choice per text; `tokens` is its usage block."""
    return _envelope("text_completion", "cmpl", model) | {
        "choices": [
            {"index": i, "text": text, "finish_reason": "stop", "logprobs": None}
            for i, text in enumerate(texts)
        ],
        "usage": tokens,
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
