"""Answer one request from the command line, printing the answer as it is produced.

python -m orchestrator.ask "Build a web scraper in Python that saves to Postgres"
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from core.cli import run_main
from orchestrator.cli import add_orchestrator_args, build_orchestrator
from orchestrator.pipeline import Orchestrator


async def _print_answer(orchestrator: Orchestrator, request: str) -> None:
    async for piece in orchestrator.stream(request):
        print(piece.text, end="", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, plan and answer the request; one-line errors exit 2."""
    parser = argparse.ArgumentParser(prog="orchestrator.ask", description=__doc__.splitlines()[0])
    parser.add_argument("request", help="what to build, in plain words")
    add_orchestrator_args(parser)
    args = parser.parse_args(argv)

    def run() -> int:
        with ThreadPoolExecutor(thread_name_prefix="generate") as pool:
            asyncio.run(_print_answer(build_orchestrator(args, pool), args.request))
        return 0

    return run_main(run)


if __name__ == "__main__":
    sys.exit(main())
