"""The endpoint planner against a mock OpenAI-compatible server: valid plans, and fallbacks."""

import json

import httpx
import pytest

from orchestrator.endpoint_planner import PLANNER_INSTRUCTIONS, EndpointPlanner
from orchestrator.plan import PlanError
from orchestrator.rules_planner import RulePlanner

PLAN = {
    "subtasks": [
        {"id": "schema", "language": "sql", "task": "users table", "file": "schema.sql"},
        {
            "id": "api",
            "language": "python",
            "task": "users API",
            "file": "api.py",
            "depends_on": ["schema"],
        },
    ]
}
REQUEST = "Build a users API in Python on Postgres"


def planner_answering(handler, timeout_s=5.0):
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return EndpointPlanner(
        "http://planner.test/v1",
        "qwen-3b",
        RulePlanner(),
        api_key="k",
        timeout_s=timeout_s,
        client=client,
    )


def chat_reply(content):
    return httpx.Response(
        200, json={"choices": [{"message": {"role": "assistant", "content": content}}]}
    )


def test_valid_plan_from_the_endpoint_is_used():
    seen = {}

    def handler(request):
        seen["url"], seen["auth"] = str(request.url), request.headers["authorization"]
        seen["body"] = json.loads(request.content)
        return chat_reply("```json\n" + json.dumps(PLAN) + "\n```")

    result = planner_answering(handler).plan(REQUEST)
    assert result.planner == "endpoint" and result.notes == ()
    assert [s.id for s in result.plan.subtasks] == ["schema", "api"]
    assert seen["url"] == "http://planner.test/v1/chat/completions"
    assert seen["auth"] == "Bearer k"
    assert seen["body"]["model"] == "qwen-3b"
    assert seen["body"]["messages"] == [
        {"role": "system", "content": PLANNER_INSTRUCTIONS},
        {"role": "user", "content": REQUEST},
    ]


def raise_timeout(request):
    raise httpx.ReadTimeout("slow", request=request)


@pytest.mark.parametrize(
    ("handler", "message", "reason"),
    [
        (
            lambda request: chat_reply("Sure! First, the schema..."),
            "no JSON object",
            "no JSON object",
        ),
        (
            lambda request: chat_reply(json.dumps({"subtasks": [{"id": "a"}]})),
            "subtasks.0.language",
            "schema",
        ),
        (lambda request: httpx.Response(500, text="boom"), "HTTPStatusError", "HTTP error"),
        (
            lambda request: httpx.Response(200, json={"unexpected": True}),
            "choices",
            "not a chat answer",
        ),
        (raise_timeout, "no answer within 5 s", "timeout"),
    ],
)
def test_bad_output_or_timeout_falls_back_to_rules(handler, message, reason):
    result = planner_answering(handler).plan(REQUEST)
    assert result.planner == "rules"
    assert result.plan == RulePlanner().plan(REQUEST).plan
    assert len(result.notes) == 1 and result.notes[0].startswith("endpoint planner failed (")
    assert message in result.notes[0]
    with pytest.raises(PlanError, match=message) as error:  # ask: the same call, no fallback
        planner_answering(handler).ask(REQUEST)
    assert error.value.reason == reason
