"""The HTTP API driven by the official `openai` client over loopback (real uvicorn in a thread),
plus malformed and hostile requests sent raw."""

import concurrent.futures
import contextlib
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
import uvicorn
from fastapi.testclient import TestClient

from core.testing import tiny_completer
from orchestrator.executor import ExecutionConfig
from orchestrator.pipeline import Orchestrator
from orchestrator.registry import build_registry
from orchestrator.rules_planner import RulePlanner
from orchestrator.server import ServerLimits, create_app

TOKEN = "secret-token"
REQUEST = "Build a web scraper in Python that saves to Postgres"
LIMITS = ServerLimits(max_body_bytes=20_000, max_prompt_chars=2_000, max_tokens=32)


WAIT_S = 60  # a safety net only: every wait ends on an event long before


class _Server(uvicorn.Server):
    """uvicorn, setting `ready` once it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextlib.contextmanager
def serving(orchestrator: Orchestrator, token: str | None = TOKEN) -> Iterator[str]:
    """The app over `orchestrator` served on a free loopback port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(create_app(orchestrator, token, LIMITS), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(WAIT_S)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        sock.close()


@pytest.fixture(scope="module")
def base_url():
    models = {"python": tiny_completer(seed=0), "sql": tiny_completer(seed=1)}
    with ThreadPoolExecutor(8) as pool:
        orchestrator = Orchestrator(
            RulePlanner(),
            build_registry(models),
            pool,
            ExecutionConfig(max_new_tokens=8, max_repairs=0),
        )
        with serving(orchestrator) as url:
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
        with serving(orchestrator) as url:
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
