"""A planner that asks any OpenAI-compatible chat endpoint (vLLM, llama.cpp, ...) for a JSON plan.

The reply is validated against the plan schema; on a timeout, an HTTP error or output that is
not a valid plan, the rules planner answers instead and the result notes why (`ask` is the same
call without the fallback: it raises PlanError).
"""

from __future__ import annotations

import json

import httpx

from orchestrator.plan import PLAN_JSON_SCHEMA, Plan, PlanError, PlanResult, plan_from_text
from orchestrator.rules_planner import RulePlanner

_EXAMPLE = {
    "subtasks": [
        {
            "id": "schema",
            "language": "sql",
            "task": "PostgreSQL schema for scraped pages",
            "file": "schema.sql",
            "depends_on": [],
        },
        {
            "id": "db",
            "language": "python",
            "task": "Database code that saves pages to PostgreSQL",
            "file": "db.py",
            "depends_on": ["schema"],
        },
        {
            "id": "scraper",
            "language": "python",
            "task": "Web scraper that saves pages with db.py",
            "file": "scraper.py",
            "depends_on": ["db"],
        },
    ]
}

PLANNER_INSTRUCTIONS = (
    "You split a programming request into subtasks, one per file, each for one language's "
    "code model. Reply with one JSON object and nothing else, matching this JSON Schema:\n"
    f"{json.dumps(PLAN_JSON_SCHEMA)}\n"
    "depends_on lists the ids of subtasks whose code this one uses. Example for "
    '"Build a web scraper in Python that saves to Postgres":\n'
    f"{json.dumps(_EXAMPLE)}"
)


class EndpointPlanner:
    """Plans with a chat model behind `base_url` (e.g. http://localhost:8001/v1)."""

    name = "endpoint"

    def __init__(
        self,
        base_url: str,
        model: str,
        fallback: RulePlanner,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.fallback = fallback
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout_s = timeout_s
        self.client = client or httpx.Client()

    def ask(self, request: str) -> Plan:
        """The endpoint's plan; PlanError, with its reason, when there is none."""
        body = {
            "model": self.model,
            "temperature": 0.0,
            "messages": [
                {"role": "system", "content": PLANNER_INSTRUCTIONS},
                {"role": "user", "content": request},
            ],
        }
        try:
            response = self.client.post(
                self.url, json=body, headers=self.headers, timeout=self.timeout_s
            )
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
        except httpx.TimeoutException:
            raise PlanError(f"no answer within {self.timeout_s:g} s", "timeout") from None
        except httpx.HTTPError as error:
            raise PlanError(f"{type(error).__name__}: {error}", "HTTP error") from None
        except (KeyError, IndexError, TypeError, ValueError) as error:  # ValueError: JSON
            raise PlanError(str(error) or type(error).__name__, "not a chat answer") from None
        return plan_from_text(str(content))

    def plan(self, request: str) -> PlanResult:
        """The endpoint's plan, or the rules planner's with a note saying why."""
        try:
            return PlanResult(self.ask(request), self.name)
        except PlanError as error:
            note = f"endpoint planner failed ({error}); used rules"
            return self.fallback.plan(request).noted(note)
