"""A specialist served by any OpenAI-compatible completions endpoint (an exported specialist
under `vllm serve DIR`, this repo's own server, ...).

Each prompt of a request is one POST /completions, all sent at once, so the server batches them
itself (as vLLM does) and each prompt's `usage` is exact; a request's `suffix` is sent as OpenAI's
`suffix` (fill-in-the-middle). Connection errors, 5xx and 429 answers
are retried with exponential backoff; a request that gets no answer within the timeout, or a
4xx, fails with one line naming the endpoint.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from core.cli import flag_field
from core.completion import CompletionRequest, Completions
from core.config import ConfigError
from orchestrator.openai_api import MAX_STOPS


class EndpointError(ValueError):
    """A specialist endpoint that cannot answer; the message names it."""


@dataclasses.dataclass(frozen=True)
class EndpointConfig:
    """How requests to specialist endpoints are timed out and retried."""

    endpoint_timeout_s: float = flag_field(60.0, "seconds a specialist endpoint has per request")
    endpoint_retries: int = flag_field(
        3, "retries of a specialist endpoint request after a connection error, 5xx or 429"
    )
    endpoint_backoff_s: float = flag_field(
        0.5, "seconds before the first retry; each later retry waits twice as long"
    )

    def __post_init__(self) -> None:
        if self.endpoint_timeout_s <= 0:
            raise ConfigError(
                f"--endpoint-timeout-s must be positive, got {self.endpoint_timeout_s}"
            )
        if self.endpoint_retries < 0:
            raise ConfigError(f"--endpoint-retries must be >= 0, got {self.endpoint_retries}")
        if self.endpoint_backoff_s < 0:
            raise ConfigError(f"--endpoint-backoff-s must be >= 0, got {self.endpoint_backoff_s}")


@dataclasses.dataclass(frozen=True)
class EndpointSpec:
    """An endpoint's base URL (…/v1) and, if given, the model name it serves the specialist as."""

    url: str
    model: str | None = None

    @classmethod
    def parse(cls, text: str) -> EndpointSpec:
        """`URL` or `URL#MODEL`."""
        url, _, model = text.partition("#")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as error:
            raise EndpointError(f"{url!r} is not a URL: {error}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise EndpointError(f"{url!r} is not an http(s) URL with a host")
        return cls(url.rstrip("/"), model.strip() or None)

    def __str__(self) -> str:
        return self.url + (f"#{self.model}" if self.model else "")


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _error_message(response: httpx.Response) -> str:
    """An error answer's message on one line: OpenAI's {"error": {"message"}}, vLLM's older
    {"message"}, or the body's text."""
    try:
        data = response.json()
    except ValueError:
        data = response.text
    if isinstance(data, dict):
        error = data.get("error", data)
        data = error.get("message", error) if isinstance(error, dict) else error
    message = " ".join(str(data).split())[:300]
    return message or response.reason_phrase


def served_model(
    client: httpx.Client, base_url: str, language: str, api_key: str | None, timeout_s: float
) -> str:
    """The model to ask for `language` at `base_url`: the listed model named like the language
    if there is one, else the first listed (GET /models); the language itself when the listing
    fails or is empty (what `vllm serve DIR --served-model-name LANGUAGE` serves)."""
    try:
        response = client.get(f"{base_url}/models", headers=_headers(api_key), timeout=timeout_s)
        response.raise_for_status()
        ids = [str(model["id"]) for model in response.json()["data"]]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return language
    return language if language in ids or not ids else ids[0]


class EndpointCompleter:
    """The Completer of one model behind an OpenAI-compatible endpoint; safe to call from many
    threads at once."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        config: EndpointConfig | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/completions"
        self.model = model
        self.headers = _headers(api_key)
        self.config = config or EndpointConfig()
        self.client = client or httpx.Client()

    @classmethod
    def connect(
        cls,
        spec: EndpointSpec,
        language: str,
        api_key: str | None = None,
        config: EndpointConfig | None = None,
        client: httpx.Client | None = None,
    ) -> EndpointCompleter:
        """The completer for `spec`, its model named by the spec or found by `served_model`."""
        config = config or EndpointConfig()
        client = client or httpx.Client()
        model = spec.model or served_model(
            client, spec.url, language, api_key, config.endpoint_timeout_s
        )
        return cls(spec.url, model, api_key, config, client)

    @property
    def where(self) -> str:
        """The endpoint and model, as error messages name them."""
        return f"specialist endpoint {self.url} (model {self.model!r})"

    def complete(self, request: CompletionRequest) -> Completions:
        """One POST per prompt, all at once; texts and token counts as the endpoint reports."""
        if len(request.stop) > MAX_STOPS:
            raise EndpointError(
                f"{len(request.stop)} stop strings (--stop): an OpenAI-compatible endpoint "
                f"takes at most {MAX_STOPS}"
            )
        bodies = [self._body(prompt, request) for prompt in request.prompts]
        if len(bodies) == 1:
            return self._post(bodies[0])
        with ThreadPoolExecutor(len(bodies), thread_name_prefix="endpoint") as threads:
            return Completions.concatenate(list(threads.map(self._post, bodies)))

    def _body(self, prompt: str, request: CompletionRequest) -> dict[str, Any]:
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "n": request.n_samples,
            "max_tokens": request.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": request.seed,
        }
        if sampling.top_k > 0:  # vLLM's extension: plain OpenAI servers reject it
            body["top_k"] = sampling.top_k
        if request.stop:
            body["stop"] = list(request.stop)
        if request.suffix is not None:
            body["suffix"] = request.suffix
        return body

    def _post(self, body: dict[str, Any]) -> Completions:
        """One prompt's completions, retrying connection errors, 5xx and 429."""
        config = self.config
        failure = ""
        for attempt in range(config.endpoint_retries + 1):
            if attempt:
                time.sleep(config.endpoint_backoff_s * 2 ** (attempt - 1))
            try:
                response = self.client.post(
                    self.url, json=body, headers=self.headers, timeout=config.endpoint_timeout_s
                )
            except httpx.TimeoutException as error:
                if not isinstance(error, httpx.ConnectTimeout):
                    raise EndpointError(
                        f"{self.where}: no answer within {config.endpoint_timeout_s:g} s"
                    ) from None
                failure = f"{type(error).__name__}: {error}"
                continue
            except httpx.TransportError as error:
                failure = f"{type(error).__name__}: {error}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                failure = f"HTTP {response.status_code}: {_error_message(response)}"
                continue
            if response.is_error:
                raise EndpointError(
                    f"{self.where}: HTTP {response.status_code}: {_error_message(response)}"
                )
            return self._completions(response, body["n"])
        attempts = config.endpoint_retries + 1
        raise EndpointError(f"{self.where}: {failure} ({attempts} attempt{'s' * (attempts > 1)})")

    def _completions(self, response: httpx.Response, n: int) -> Completions:
        try:
            data = response.json()
            choices = sorted(data["choices"], key=lambda choice: int(choice["index"]))
            texts = [str(choice["text"]) for choice in choices]
            usage = data["usage"]
            counts = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
        except (ValueError, KeyError, TypeError) as error:
            raise EndpointError(
                f"{self.where}: not a completions answer with usage ({type(error).__name__}: "
                f"{error})"
            ) from None
        if len(texts) != n:
            raise EndpointError(f"{self.where}: answered {len(texts)} choices for n={n}")
        return Completions([texts], [counts[0]], [counts[1]])
