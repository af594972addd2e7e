"""The HTTP API driven by the official `openai` client over loopback (real uvicorn in a thread),
plus malformed and hostile requests sent raw."""

import asyncio
import concurrent.futures
import dataclasses
import http.client
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from core.completion import CompletionRequest
from core.config import ConfigError
from core.testing import tiny_completer
from orchestrator.executor import ExecutionConfig
from orchestrator.pipeline import Orchestrator
from orchestrator.registry import build_registry
from orchestrator.rules_planner import RulePlanner
from orchestrator.server import DRAIN_BYTES, ServerLimits, create_app
from orchestrator.testing import serving

TOKEN = "secret-token"
REQUEST = "Build a web scraper in Python that saves to Postgres"
LIMITS = ServerLimits(max_body_bytes=20_000, max_prompt_chars=2_000, max_tokens=32)
WAIT_S = 60  # a safety net only: every wait ends on an event long before


def app_for(orchestrator: Orchestrator):
    return create_app(orchestrator, TOKEN, LIMITS)


@pytest.fixture(scope="module")
def models():
    """The served specialists, also called directly (between requests) for expected answers."""
    return {"python": tiny_completer(seed=0), "sql": tiny_completer(seed=1)}


@pytest.fixture(scope="module")
def orchestrator(models):
    with ThreadPoolExecutor(8) as pool:
        yield Orchestrator(
            RulePlanner(),
            build_registry(models),
            pool,
            ExecutionConfig(max_new_tokens=8, max_repairs=0),
        )


@pytest.fixture(scope="module")
def base_url(orchestrator):
    with serving(app_for(orchestrator)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url):
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=TOKEN, max_retries=0)


def chat(client, **overrides):
    arguments = {
        "model": "orchestrator",
        "messages": [{"role": "user", "content": REQUEST}],
        "seed": 5,
    }
    return client.chat.completions.create(**(arguments | overrides))


def test_models_lists_the_orchestrator_and_each_specialist(client):
    assert [model.id for model in client.models.list()] == ["orchestrator", "python", "sql"]


def test_chat_answers_with_plan_and_code_blocks(client):
    response = chat(client)
    content = response.choices[0].message.content
    assert response.object == "chat.completion" and response.choices[0].finish_reason == "stop"
    assert content.startswith("Plan (rules planner, 3 parts):")
    assert "### 1. schema.sql (sql)\n```sql\n" in content
    assert "### 3. web_scraper.py (python)\n```python\n" in content


def test_streamed_chat_is_the_same_answer_in_pieces(client):
    chunks = list(chat(client, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(pieces) == 4  # the plan, then one piece per part
    assert len({chunk.id for chunk in chunks}) == 1
    assert "".join(pieces) == chat(client).choices[0].message.content


def test_completions_from_one_specialist(client):
    response = client.completions.create(
        model="python", prompt=["def f(", "x ="], max_tokens=8, temperature=0.0, n=2
    )
    assert response.object == "text_completion" and len(response.choices) == 4
    assert [c.index for c in response.choices] == [0, 1, 2, 3]
    assert response.choices[0].text == response.choices[1].text  # greedy samples agree
    echoed = client.completions.create(
        model="sql", prompt="SELECT", max_tokens=8, temperature=0.0, echo=True
    )
    assert echoed.choices[0].text.startswith("SELECT")
    streamed = client.completions.create(
        model="python", prompt=["def f(", "x ="], max_tokens=8, temperature=0.0, n=2, stream=True
    )
    assert [chunk.choices[0].text for chunk in streamed] == [c.text for c in response.choices]


def test_completions_with_a_suffix_answer_the_middle(client, models):
    prompt, suffix = "def add(a, b):\n    ", "\n    return c\n"
    response = client.completions.create(
        model="python", prompt=prompt, suffix=suffix, max_tokens=8, temperature=0.0
    )
    local = models["python"].complete(CompletionRequest((prompt,), max_new_tokens=8, suffix=suffix))
    assert [choice.text for choice in response.choices] == local.texts[0]
    assert response.usage.prompt_tokens == local.prompt_tokens[0]
    plain = models["python"].complete(CompletionRequest((prompt,), max_new_tokens=8))
    assert local.prompt_tokens != plain.prompt_tokens  # the model read the infill prompt


class NoInfillModel:
    """A specialist whose tokenizer has no FIM tokens."""

    def complete(self, request):
        raise ConfigError("the model's tokenizer has no <fim_prefix> token: it cannot fill in")


def test_a_specialist_that_cannot_fill_in_the_middle_answers_400():
    with ThreadPoolExecutor(2) as pool:
        registry = build_registry({"python": NoInfillModel()})
        app = app_for(Orchestrator(RulePlanner(), registry, pool))
        body = {"model": "python", "prompt": "def f(", "suffix": "):\n", "max_tokens": 4}
        response = TestClient(app).post(
            "/v1/completions", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "suffix"
    assert "cannot fill in" in response.json()["error"]["message"]


def test_completions_report_usage_in_the_specialists_own_tokens(client, models):
    prompts = ["def f(", "x ="]
    response = client.completions.create(
        model="python", prompt=prompts, max_tokens=8, temperature=0.0, n=2
    )
    local = models["python"].complete(
        CompletionRequest(tuple(prompts), n_samples=2, max_new_tokens=8)
    )
    assert [c.text for c in response.choices] == [t for texts in local.texts for t in texts]
    assert response.usage.prompt_tokens == sum(local.prompt_tokens) > 0
    assert response.usage.completion_tokens == sum(local.completion_tokens)
    assert response.usage.total_tokens == sum(local.prompt_tokens) + sum(local.completion_tokens)
    streamed = list(
        client.completions.create(
            model="python",
            prompt=prompts,
            max_tokens=8,
            temperature=0.0,
            n=2,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert [chunk.choices[0].text for chunk in streamed[:-1]] == [c.text for c in response.choices]
    assert all(chunk.usage is None for chunk in streamed[:-1])
    assert streamed[-1].choices == [] and streamed[-1].usage == response.usage


def test_chat_usage_sums_every_parts_tokens(client, orchestrator):
    response = chat(client)
    plan = RulePlanner().plan(REQUEST).plan
    config = dataclasses.replace(orchestrator.config, seed=5)
    parts = asyncio.run(orchestrator.executor.run(plan, config)).values()
    prompt_tokens = sum(part.prompt_tokens for part in parts)
    completion_tokens = sum(part.completion_tokens for part in parts)
    assert prompt_tokens > 0
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (
        prompt_tokens,
        completion_tokens,
    )
    assert response.usage.total_tokens == prompt_tokens + completion_tokens
    chunks = list(chat(client, stream=True, stream_options={"include_usage": True}))
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage == response.usage
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_top_k_reaches_the_specialist(client):
    def complete(**sampling):
        return (
            client.completions.create(
                model="python", prompt="def f(", max_tokens=8, seed=3, **sampling
            )
            .choices[0]
            .text
        )

    sampled = complete(temperature=1.0)
    assert sampled != complete(temperature=0.0)  # this seed's sample is not the greedy answer
    assert complete(temperature=1.0, extra_body={"top_k": 1}) == complete(temperature=0.0)
    assert complete(temperature=1.0, extra_body={"top_k": -1}) == sampled  # vLLM's "all"
    top1 = chat(client, temperature=1.0, extra_body={"top_k": 1})
    assert top1.choices[0].message.content == chat(client).choices[0].message.content


class GatedModel:
    """A real model whose calls wait at a gate; `entered` counts calls that reached it."""

    def __init__(self, model) -> None:
        self.model = model
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)

    def complete(self, request):
        self.entered.release()
        assert self.gate.wait(WAIT_S)
        return self.model.complete(request)


def test_concurrent_requests_all_succeed_while_health_answers_during_generation():
    gated = {"python": GatedModel(tiny_completer(seed=0)), "sql": GatedModel(tiny_completer(1))}
    with ThreadPoolExecutor(8) as pool:
        orchestrator = Orchestrator(
            RulePlanner(), build_registry(gated), pool, ExecutionConfig(max_new_tokens=8)
        )
        with serving(app_for(orchestrator)) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0)
            with concurrent.futures.ThreadPoolExecutor(4) as threads:
                answers = [threads.submit(chat, client, seed=9) for _ in range(4)]
                # A request's first part (the schema) is generating on the SQL model, which the
                # others queue behind...
                assert gated["sql"].entered.acquire(timeout=WAIT_S)
                # ...and the server still answers.
                health = httpx.get(f"{url}/health", timeout=WAIT_S)
                for model in gated.values():
                    model.gate.set()
                contents = {future.result().choices[0].message.content for future in answers}
    assert health.json() == {"status": "ok", "planner": "rules", "specialists": ["python", "sql"]}
    assert len(contents) == 1


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: chat(c, model="gpt-4"), openai.NotFoundError, "model 'gpt-4' does not exist"),
        (lambda c: chat(c, messages=[]), openai.BadRequestError, "messages: "),
        (
            lambda c: chat(c, messages=[{"role": "system", "content": "hi"}]),
            openai.BadRequestError,
            "messages must contain a user message",
        ),
        (
            lambda c: chat(c, messages=[{"role": "wizard", "content": "x"}]),
            openai.BadRequestError,
            "messages.0.role",
        ),
        (lambda c: chat(c, temperature=7), openai.BadRequestError, "temperature"),
        (lambda c: chat(c, n=3), openai.BadRequestError, "n: "),
        (lambda c: chat(c, max_tokens=10_000), openai.BadRequestError, "max_tokens is 10000"),
        (
            lambda c: chat(c, messages=[{"role": "user", "content": "x" * 3000}]),
            openai.BadRequestError,
            "limit is 2000",
        ),
        (
            lambda c: chat(c, messages=[{"role": "user", "content": "  "}]),
            openai.BadRequestError,
            "user message with text",
        ),
        (lambda c: c.completions.create(model="cobol", prompt="x"), openai.NotFoundError, "cobol"),
        (lambda c: c.completions.create(model="python", prompt=""), openai.BadRequestError, ""),
        (
            lambda c: c.completions.create(model="python", prompt="x", stop=["a"] * 5),
            openai.BadRequestError,
            "stop",
        ),
    ],
)
def test_bad_requests_get_openai_errors(client, call, error, message):
    with pytest.raises(error) as raised:
        call(client)
    body = raised.value.body
    assert set(body) == {"message", "type", "param", "code"}  # the client unwraps {"error": ...}
    assert message in body["message"]


def test_wrong_or_missing_token_is_401(base_url):
    wrong = openai.OpenAI(base_url=f"{base_url}/v1", api_key="guess", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    assert httpx.get(f"{base_url}/v1/models").status_code == 401


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, None),
        (b"[1, 2, 3]", 400, None),
        (b'{"model": "orchestrator", "messages": "hello"}', 400, None),
        (b'{"model": "orchestrator", "messages": [{"role": "user", "content": 5}]}', 400, None),
        (
            b'{"model": "orchestrator", "messages": ['
            + b'{"role": "user", "content": "x"},' * 2000
            + b"]}",
            413,
            "request_too_large",
        ),
    ],
)
def test_malformed_and_oversized_bodies(base_url, content, status, code):
    response = httpx.post(
        f"{base_url}/v1/chat/completions",
        content=content,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == code and error["message"]


def _raw(base_url, method, path, body=b"", content_type="application/json", chunked=False):
    """One request on its own connection, closed after the answer (`Connection: close`), from a
    client that sends its whole body before it reads: the status and the error object."""
    connection = http.client.HTTPConnection(*base_url.removeprefix("http://").split(":"))
    headers = {"Authorization": f"Bearer {TOKEN}", "Connection": "close"}
    if content_type:
        headers["Content-Type"] = content_type
    sent = (body[i : i + 65536] for i in range(0, len(body), 65536)) if chunked else body
    try:
        connection.request(method, path, sent, headers, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, json.loads(response.read())["error"]
    finally:
        connection.close()


COMPLETION = b'{"model": "python", "prompt": "x = ", "max_tokens": 2}'


BIG = b"x" * 12_000_000  # past what the kernel's socket buffers absorb, within DRAIN_BYTES


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "chunked", "status", "code"),
    [
        pytest.param("POST", "/v1/completions", b"{not json", "application/json", False, 400, None, id="invalid-json"),
        pytest.param("POST", "/v1/completions", b'{"model": "\xff\xfe"}', "application/json", False, 400, "400", id="invalid-utf8"),
        pytest.param("POST", "/v1/completions", COMPLETION, "text/plain", False, 415, "unsupported_media_type", id="content-type"),
        pytest.param("POST", "/v1/completions", BIG, "application/json", False, 413, "request_too_large", id="oversized"),
        pytest.param("POST", "/v1/completions", BIG, "application/json", True, 413, "request_too_large", id="oversized-chunked"),
        pytest.param("POST", "/v1/chat/completions", BIG, None, True, 413, "request_too_large", id="oversized-chunked-chat"),
        pytest.param("PUT", "/v1/completions", COMPLETION, "application/json", False, 405, "405", id="put"),
        pytest.param("GET", "/v1/chat/completions", b"", None, False, 405, "405", id="get-chat"),
        pytest.param("DELETE", "/health", b"", None, False, 405, "405", id="delete"),
        pytest.param("POST", "/v1/engines", b"x" * 15_000, "application/json", False, 404, "404", id="unknown-path"),
        pytest.param("POST", "/v1/engines", b"x" * 15_000, "application/json", True, 404, "404", id="unknown-path-chunked"),
    ],
)  # fmt: skip
def test_every_bad_request_gets_an_error_object_not_a_reset(
    base_url, method, path, body, content_type, chunked, status, code
):
    answer = _raw(base_url, method, path, body, content_type, chunked)
    assert answer[0] == status
    error = answer[1]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == code and error["message"]


def test_a_chunked_body_within_the_limit_is_served(base_url):
    connection = http.client.HTTPConnection(*base_url.removeprefix("http://").split(":"))
    try:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        connection.request("POST", "/v1/completions", iter([COMPLETION]), headers)
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["object"] == "text_completion"
    finally:
        connection.close()


def test_a_body_too_big_to_drain_is_answered_at_once(base_url):
    """Content-Length beyond what the server would read: the 413 comes before any body byte."""
    host, port = base_url.removeprefix("http://").split(":")
    length = LIMITS.max_body_bytes + DRAIN_BYTES + 1
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as sock:
        sock.sendall(
            f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n"
            "Content-Type: application/json\r\n\r\n".encode()
        )
        answer = b""
        while b"request_too_large" not in answer and (data := sock.recv(65536)):
            answer += data
    assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close" in answer.lower()


def test_unknown_paths_and_methods_get_error_objects(base_url):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    missing = httpx.get(f"{base_url}/v1/engines", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "Not Found"
    wrong_method = httpx.get(f"{base_url}/v1/chat/completions", headers=headers)
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


class BrokenPlanner:
    name = "broken"

    def plan(self, request):
        raise RuntimeError("planner bug")


def test_unexpected_failures_are_500_errors_in_openai_shape():
    with ThreadPoolExecutor(1) as pool:
        registry = build_registry({"python": tiny_completer()})
        app = create_app(Orchestrator(BrokenPlanner(), registry, pool))
        with TestClient(app, raise_server_exceptions=False) as http:
            response = http.post(
                "/v1/chat/completions",
                json={"model": "orchestrator", "messages": [{"role": "user", "content": "hi"}]},
            )
    assert response.status_code == 500
    assert response.json()["error"] == {
        "message": "internal error (RuntimeError); the server log has details",
        "type": "server_error",
        "param": None,
        "code": None,
    }
