"""The plan schema: a request split into language-tagged subtasks with dependencies.

A plan is JSON of this shape (`PLAN_JSON_SCHEMA` is the full JSON Schema):

    {"subtasks": [
      {"id": "schema", "language": "sql", "task": "Database schema for scraped pages",
       "file": "schema.sql", "depends_on": []},
      {"id": "db", "language": "python", "task": "Database connection code that saves pages",
       "file": "db.py", "depends_on": ["schema"]},
      {"id": "scraper", "language": "python", "task": "Web scraper", "file": "scraper.py",
       "depends_on": ["db"], "code": ""}
    ]}

`id`s are unique; `depends_on` names earlier-or-later ids of the same plan and must not form a
cycle; a subtask sees the code its dependencies produced. `code` (optional) is the start of the
file, which the specialist continues (e.g. code the user pasted).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Annotated, Any, Protocol

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from orchestrator.languages import canonical_language

MAX_SUBTASKS = 16

SubtaskId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class PlanError(ValueError):
    """No usable plan: output that does not match the schema (the message names the offending
    field) or, from a planner, no output at all; `reason` is its kind, for counting."""

    def __init__(self, message: str, reason: str = "schema") -> None:
        super().__init__(message)
        self.reason = reason


class Subtask(BaseModel):
    """One part of the answer, for one language's specialist."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: SubtaskId
    language: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    task: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    file: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,127}$")]
    depends_on: tuple[SubtaskId, ...] = ()
    code: str = Field(default="", max_length=20000)

    @pydantic.field_validator("file")
    @classmethod
    def _relative(cls, file: str) -> str:
        if ".." in file.split("/"):
            raise ValueError("file must not leave its folder ('..')")
        return file

    @pydantic.field_validator("language")
    @classmethod
    def _canonical(cls, language: str) -> str:
        return canonical_language(language)


class Plan(BaseModel):
    """Subtasks with dependencies; validated to have unique ids and no unknown or cyclic deps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subtasks: tuple[Subtask, ...] = Field(min_length=1, max_length=MAX_SUBTASKS)

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Plan:
        ids = [subtask.id for subtask in self.subtasks]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate subtask id(s): {', '.join(duplicates)}")
        for subtask in self.subtasks:
            unknown = [d for d in subtask.depends_on if d not in ids or d == subtask.id]
            if unknown:
                raise ValueError(f"subtask {subtask.id!r} depends on unknown or itself: {unknown}")
        levels(self)  # raises on a cycle
        return self


PLAN_JSON_SCHEMA: dict[str, Any] = Plan.model_json_schema()


def levels(plan: Plan) -> list[list[Subtask]]:
    """Subtasks grouped in dependency levels: each level depends only on earlier ones.

    Within a level, subtasks keep their plan order, so the grouping is deterministic.
    """
    by_id = {subtask.id: subtask for subtask in plan.subtasks}
    level: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(subtask_id: str) -> int:
        if subtask_id in level:
            return level[subtask_id]
        if subtask_id in visiting:
            raise ValueError(f"dependency cycle through subtask {subtask_id!r}")
        visiting.add(subtask_id)
        deps = by_id[subtask_id].depends_on
        level[subtask_id] = 1 + max((depth(d) for d in deps), default=-1)
        visiting.discard(subtask_id)
        return level[subtask_id]

    for subtask in plan.subtasks:
        depth(subtask.id)
    grouped: list[list[Subtask]] = [[] for _ in range(max(level.values()) + 1)]
    for subtask in plan.subtasks:
        grouped[level[subtask.id]].append(subtask)
    return grouped


def dependency_order(plan: Plan) -> list[Subtask]:
    """Subtasks with every dependency before its dependents (schema before the code using it)."""
    return [subtask for level in levels(plan) for subtask in level]


def plan_from_data(data: Any) -> Plan:
    """Validate decoded JSON as a Plan; PlanError names the first bad field."""
    try:
        return Plan.model_validate(data)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "plan"
        raise PlanError(f"invalid plan: {where}: {first['msg']}") from error


def _json_object(text: str) -> str:
    """The outermost {...} in `text` (models often wrap JSON in prose or code fences)."""
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        raise PlanError("invalid plan: no JSON object in the output", "no JSON object")
    return match.group(0)


def plan_from_text(text: str) -> Plan:
    """Parse and validate a plan from model output that contains one JSON object."""
    try:
        data = json.loads(_json_object(text))
    except json.JSONDecodeError as error:
        raise PlanError(f"invalid plan: not JSON: {error}", "not JSON") from error
    return plan_from_data(data)


@dataclasses.dataclass(frozen=True)
class PlanResult:
    """A plan, which planner made it, and notes (e.g. why a fallback was used)."""

    plan: Plan
    planner: str
    notes: tuple[str, ...] = ()

    def noted(self, note: str) -> PlanResult:
        """This result with `note` added after its notes."""
        return dataclasses.replace(self, notes=(*self.notes, note))


class Planner(Protocol):
    """Turns a request into a plan; implementations never raise on bad model output."""

    name: str

    def plan(self, request: str) -> PlanResult: ...
