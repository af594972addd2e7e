"""The SQL specialist as the shared jobs see it: data spec, syntax check, sample prompts."""

from __future__ import annotations

from specialists.job import Specialist
from specialists.sql.corpus import SQL
from specialists.sql.filters import sql_drop_reason


def sql_syntax_ok(code: str) -> bool:
    """Whether some SQL dialect reads `code`."""
    return sql_drop_reason(code) is None


SAMPLE_PROMPTS = (
    "CREATE TABLE users (\n    id SERIAL PRIMARY KEY,\n",
    "-- Ten customers with the highest total order value.\nSELECT",
    "CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger AS $$\nBEGIN\n",
    "-- Monthly sign-ups in 2024.\nSELECT date_trunc('month', created_at) AS month,",
    "CREATE INDEX",
    "WITH ranked AS (\n    SELECT",
)

SPECIALIST = Specialist(language=SQL, syntax_ok=sql_syntax_ok, sample_prompts=SAMPLE_PROMPTS)
