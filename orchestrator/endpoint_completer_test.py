"""Specialists behind OpenAI-compatible endpoints: this repo's own server (a tiny real model) as
the remote engine over loopback, and httpx mock transports for retries and failures."""

import asyncio
import contextlib
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from core.completion import CompletionRequest, Completions, SamplingConfig
from core.inference import load_completer
from core.testing import tiny_completer, tiny_run_dir
from orchestrator import ask
from orchestrator.endpoint_completer import (
    EndpointCompleter,
    EndpointConfig,
    EndpointError,
    EndpointSpec,
    served_model,
)
from orchestrator.executor import ExecutionConfig
from orchestrator.pipeline import Orchestrator
from orchestrator.registry import build_registry
from orchestrator.rules_planner import RulePlanner
from orchestrator.server import create_app
from orchestrator.testing import serving

TOKEN = "remote-token"
REQUEST = "Build a web scraper in Python that saves to Postgres"
NO_WAIT = EndpointConfig(endpoint_retries=2, endpoint_backoff_s=0.0)
WAIT_S = 60  # a safety net only: every wait ends on an event long before


@contextlib.contextmanager
def remote(models, token=TOKEN):
    """This repo's server over `models`, as a remote engine: yields its base URL (…/v1)."""
    with ThreadPoolExecutor(4) as pool:
        orchestrator = Orchestrator(RulePlanner(), build_registry(models), pool)
        with serving(create_app(orchestrator, token)) as url:
            yield f"{url}/v1"


@pytest.fixture(scope="module")
def python_url():
    with remote({"python": tiny_completer(seed=0)}) as url:
        yield url


def test_an_endpoint_gives_exactly_the_local_models_completions(python_url):
    endpoint = EndpointCompleter.connect(EndpointSpec(python_url), "python", TOKEN)
    assert endpoint.model == "python"  # listed after "orchestrator": the one named like LANG
    request = CompletionRequest(
        ("def add(a, b):", "import os\n", "x ="), n_samples=2, max_new_tokens=12, stop=("\n\n",)
    )
    expected = tiny_completer(seed=0).complete(request)
    assert endpoint.complete(request) == expected
    # top_k travels too (vLLM's extension): top-1 sampling is the greedy answer.
    top1 = CompletionRequest(
        request.prompts,
        max_new_tokens=12,
        sampling=SamplingConfig(temperature=1.0, top_k=1),
        stop=request.stop,
        seed=4,
    )
    assert endpoint.complete(top1).texts == [texts[:1] for texts in expected.texts]


def test_an_endpoint_fills_in_the_middle_as_the_local_model(python_url):
    endpoint = EndpointCompleter.connect(EndpointSpec(python_url), "python", TOKEN)
    request = CompletionRequest(("def add(a, b):\n    ",), max_new_tokens=12, suffix="\n")
    expected = tiny_completer(seed=0).complete(request)
    assert endpoint.complete(request) == expected
    plain = tiny_completer(seed=0).complete(CompletionRequest(request.prompts, max_new_tokens=12))
    assert expected.prompt_tokens != plain.prompt_tokens  # the suffix reached the model


def test_a_4xx_is_one_line_naming_the_endpoint_and_its_message(python_url):
    wrong_model = EndpointCompleter(python_url, "cobol", TOKEN, NO_WAIT)
    with pytest.raises(EndpointError) as raised:
        wrong_model.complete(CompletionRequest(("x",)))
    message = str(raised.value)
    assert message == (
        f"specialist endpoint {python_url}/completions (model 'cobol'): HTTP 404: model 'cobol' "
        "does not exist; completions use a specialist: python"
    )
    with pytest.raises(EndpointError, match="HTTP 401: missing or wrong bearer token"):
        EndpointCompleter(python_url, "python", "guess", NO_WAIT).complete(
            CompletionRequest(("x",))
        )


def test_more_than_four_stops_is_an_error_naming_the_flag(python_url):
    endpoint = EndpointCompleter(python_url, "python", TOKEN)
    with pytest.raises(EndpointError, match=r"5 stop strings \(--stop\).*at most 4"):
        endpoint.complete(CompletionRequest(("x",), stop=tuple("abcde")))


class BlockedModel:
    """A model whose calls wait until `release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def complete(self, request):
        assert self.release.wait(WAIT_S)
        return Completions([["x"]] * len(request.prompts), [1], [1])


def test_a_request_without_an_answer_times_out_in_one_line():
    blocked = BlockedModel()
    with remote({"python": blocked}) as url:
        config = EndpointConfig(endpoint_timeout_s=0.2, endpoint_retries=3, endpoint_backoff_s=0)
        endpoint = EndpointCompleter(url, "python", TOKEN, config)
        try:
            with pytest.raises(EndpointError) as raised:
                endpoint.complete(CompletionRequest(("x",)))
        finally:
            blocked.release.set()
    assert str(raised.value) == (
        f"specialist endpoint {url}/completions (model 'python'): no answer within 0.2 s"
    )


def test_a_closed_port_is_retried_then_one_line():
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    endpoint = EndpointCompleter(url, "python", config=NO_WAIT)
    with pytest.raises(
        EndpointError, match=r"^specialist endpoint .*: ConnectError: .*\(3 attempts\)$"
    ):
        endpoint.complete(CompletionRequest(("x",)))


def reply(body, text="y", usage=(3, 1)):
    """A completions answer to `body` with n copies of `text`."""
    return httpx.Response(
        200,
        json={
            "choices": [{"index": i, "text": text} for i in reversed(range(body["n"]))],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1] * body["n"]},
        },
    )


def mock_endpoint(handler, config=NO_WAIT):
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return EndpointCompleter("http://engine:8000/v1/", "py", "k", config, client)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_5xx_and_429_are_retried(status):
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(status, json={"error": {"message": "busy"}})
        return reply(json.loads(request.content))

    completions = mock_endpoint(handler).complete(CompletionRequest(("x",), n_samples=2))
    assert completions == Completions([["y", "y"]], [3], [2])
    assert len(calls) == 3


def test_retries_are_bounded_and_the_last_failure_is_reported():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(503, json={"message": "model  is\nloading"})  # vLLM's older shape

    with pytest.raises(EndpointError) as raised:
        mock_endpoint(handler).complete(CompletionRequest(("x",)))
    assert len(calls) == 3
    assert str(raised.value) == (
        "specialist endpoint http://engine:8000/v1/completions (model 'py'): "
        "HTTP 503: model is loading (3 attempts)"
    )


def test_connection_errors_are_retried_and_a_read_timeout_is_not():
    errors = [httpx.ConnectError("refused"), httpx.ReadError("reset"), None]
    calls = []

    def handler(request):
        calls.append(request)
        error = errors[len(calls) - 1]
        if error is not None:
            raise error
        return reply(json.loads(request.content))

    assert mock_endpoint(handler).complete(CompletionRequest(("x",))).texts == [["y"]]
    assert len(calls) == 3

    def slow(request):
        calls.append(request)
        raise httpx.ReadTimeout("slow")

    calls.clear()
    with pytest.raises(EndpointError, match="no answer within 60 s$"):
        mock_endpoint(slow).complete(CompletionRequest(("x",)))
    assert len(calls) == 1


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>"),
        httpx.Response(200, json={"choices": [{"index": 0, "text": "y"}]}),
        httpx.Response(200, json={"choices": [], "usage": {"prompt_tokens": 1}}),
    ],
)
def test_an_answer_that_is_not_a_completion_is_one_line(response):
    with pytest.raises(
        EndpointError, match=r"^specialist endpoint .*: (not a completions|answered)"
    ):
        mock_endpoint(lambda request: response).complete(CompletionRequest(("x",)))


def test_each_prompt_is_its_own_request_all_in_flight_at_once():
    together = threading.Barrier(3)  # passed only when all three requests are in flight
    bodies = []

    def handler(request):
        body = json.loads(request.content)
        bodies.append(body)
        together.wait(WAIT_S)
        assert request.headers["authorization"] == "Bearer k"
        return reply(body, text=body["prompt"].upper(), usage=(len(body["prompt"]), 2))

    request = CompletionRequest(
        ("a", "bb", "ccc"),
        max_new_tokens=9,
        sampling=SamplingConfig(temperature=0.5, top_k=7, top_p=0.9),
        stop=("\n",),
        seed=11,
    )
    completions = mock_endpoint(handler).complete(request)
    assert completions == Completions([["A"], ["BB"], ["CCC"]], [1, 2, 3], [2, 2, 2])
    assert sorted(bodies, key=lambda body: body["prompt"])[0] == {
        "model": "py",
        "prompt": "a",
        "n": 1,
        "max_tokens": 9,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 7,
        "stop": ["\n"],
        "seed": 11,
    }
    greedy = []
    mock_endpoint(lambda r: greedy.append(json.loads(r.content)) or reply(greedy[-1])).complete(
        CompletionRequest(("a",))
    )
    assert "top_k" not in greedy[0] and "stop" not in greedy[0]  # plain OpenAI rejects top_k


@pytest.mark.parametrize(
    ("listing", "model"),
    [
        (httpx.Response(200, json={"data": [{"id": "other"}, {"id": "sql"}]}), "sql"),
        (httpx.Response(200, json={"data": [{"id": "/models/sql-export"}]}), "/models/sql-export"),
        (httpx.Response(200, json={"data": []}), "sql"),
        (httpx.Response(404, json={"error": {"message": "no"}}), "sql"),
        (httpx.Response(200, text="not json"), "sql"),
    ],
)
def test_the_model_name_defaults_to_the_listed_one(listing, model):
    client = httpx.Client(transport=httpx.MockTransport(lambda request: listing))
    assert served_model(client, "http://engine/v1", "sql", None, 1.0) == model


def test_specs_parse_url_and_model():
    assert EndpointSpec.parse("http://h:8000/v1/#python") == EndpointSpec(
        "http://h:8000/v1", "python"
    )
    assert EndpointSpec.parse("https://h/v1") == EndpointSpec("https://h/v1")
    assert str(EndpointSpec("http://h/v1", "m")) == "http://h/v1#m"
    with pytest.raises(EndpointError, match="not an http"):
        EndpointSpec.parse("http:///v1")


CONFIG = ExecutionConfig(max_new_tokens=12, max_repairs=2, seed=3)


def answer_with(models, config=CONFIG):
    with ThreadPoolExecutor(4) as pool:
        orchestrator = Orchestrator(RulePlanner(), build_registry(models), pool, config)
        return asyncio.run(orchestrator.answer(REQUEST))


def test_one_specialist_local_and_one_behind_an_endpoint_answer_as_both_local(python_url):
    local = {"python": tiny_completer(seed=0), "sql": tiny_completer(seed=1)}
    mixed = {
        "python": EndpointCompleter.connect(EndpointSpec(python_url), "python", TOKEN),
        "sql": local["sql"],
    }
    answer = answer_with(mixed)
    # Each Python part is alone in its level, so its resamples draw the same random numbers
    # locally and remotely: the same code, the same INVALID marks, the same answer.
    assert answer == answer_with(local)
    # Random weights: the parts do not parse, so the resamples went through the endpoint too.
    assert answer.count("> INVALID: still does not parse after 2 resamples") >= 1
    assert "### 3. web_scraper.py (python)\n```python\n" in answer


def test_an_unreachable_endpoint_fails_only_its_parts_in_one_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    models = {
        "python": tiny_completer(seed=0),
        "sql": EndpointCompleter(url, "sql", config=NO_WAIT),
    }
    answer = answer_with(models)
    failed = [line for line in answer.splitlines() if line.startswith("> FAILED")]
    assert len(failed) == 1
    assert failed[0].startswith(
        f"> FAILED: EndpointError: specialist endpoint {url}/completions (model 'sql'): "
        "ConnectError: "
    )
    assert "### 2. db.py (python)\n```python\n" in answer


def test_ask_takes_an_endpoint_specialist_and_the_api_key_from_the_environment(
    python_url, tmp_path, monkeypatch, capsys
):
    sql_dir = tiny_run_dir(tmp_path / "sql", seed=1)
    monkeypatch.setenv("OPENAI_API_KEY", TOKEN)
    code = ask.main(
        [
            f"--specialist=python={python_url}#python",
            f"--specialist=sql={sql_dir}",
            "--max-new-tokens=12",
            "--max-repairs=2",
            "--seed=3",
            "--endpoint-retries=0",
            REQUEST,
        ]
    )
    assert code == 0
    local = {"python": tiny_completer(seed=0), "sql": load_completer(sql_dir)}
    assert capsys.readouterr().out == answer_with(local)
