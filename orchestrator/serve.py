"""Serve the orchestrator over an OpenAI-compatible HTTP API.

python -m orchestrator.serve --specialist python=outputs/python-test --port 8000
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from core.cli import add_dataclass_args, dataclass_from_args, run_main
from orchestrator.cli import add_orchestrator_args, build_orchestrator
from orchestrator.server import ServerLimits, create_app

GENERATION_THREADS = 16


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, load the specialists and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="orchestrator.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument("--token", help="require `Authorization: Bearer TOKEN` on /v1/*")
    add_orchestrator_args(parser)
    add_dataclass_args(parser, ServerLimits)
    args = parser.parse_args(argv)

    def run() -> int:
        with ThreadPoolExecutor(GENERATION_THREADS, thread_name_prefix="generate") as pool:
            limits = dataclass_from_args(ServerLimits, args)
            app = create_app(build_orchestrator(args, pool), args.token, limits)
            uvicorn.run(app, host=args.host, port=args.port)
            pool.shutdown(cancel_futures=True)
        return 0

    return run_main(run)


if __name__ == "__main__":
    sys.exit(main())
