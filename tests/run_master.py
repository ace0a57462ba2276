"""Start a real master (uvicorn) for the API tests, optionally with the fake build stages.

Usage: python tests/run_master.py --data-dir D --port P [--fake-builds]
The database URL comes from LIVESTRAP_DATABASE_URL (as `livestrap serve` takes it), never
the command line: a PostgreSQL URL carries the test role's password, and argv is in `ps`.
LIVESTRAP_TEST_FAKE_STEP_S (fake_build.STEP_ENV; default 0.3) sets how long each fake
stage's steps take: master_process(env={...}) passes it on, e.g. to watch a log live.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).parent))

from fake_build import FAKE_STAGES
from livestrap.master.app import create_app
from livestrap.master.config import MasterSettings


def parse(argv: list[str] | None = None) -> tuple[MasterSettings, bool]:
    """The master's settings and whether to fake builds."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fake-builds", action="store_true")
    parser.add_argument("--public-url")
    parser.add_argument("--heartbeat-s", type=int, default=30)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--file-mirror-root", type=Path, action="append", default=[])
    parser.add_argument("--role", choices=("all", "api"), default="all")
    args = parser.parse_args(argv)
    settings = MasterSettings(
        data_dir=args.data_dir,
        port=args.port,
        database_url=os.environ.get("LIVESTRAP_DATABASE_URL") or None,
        public_url=args.public_url,
        heartbeat_s=args.heartbeat_s,
        cache_dir=args.cache_dir,
        file_mirror_roots=tuple(args.file_mirror_root),
        role=args.role,
    )
    return settings, args.fake_builds


def main() -> None:
    settings, fake_builds = parse()
    app = create_app(settings, build_stages=FAKE_STAGES if fake_builds else None)
    uvicorn.run(
        app, host="127.0.0.1", port=settings.port, log_level="warning", timeout_graceful_shutdown=5
    )


if __name__ == "__main__":
    main()
