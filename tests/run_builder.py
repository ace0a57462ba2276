"""Start `livestrap builder`'s loop (master.builder_proc.run_builder) with the fake build
stages, for the tests of the privilege split (role "api" plus a builder process).

Usage: python tests/run_builder.py --data-dir D; the database URL comes from
LIVESTRAP_DATABASE_URL, as in tests/run_master.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fake_build import FAKE_STAGES
from livestrap.master.builder_proc import run_builder
from livestrap.master.config import MasterSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    url = os.environ.get("LIVESTRAP_DATABASE_URL") or None
    run_builder(MasterSettings(data_dir=args.data_dir, database_url=url), FAKE_STAGES)


if __name__ == "__main__":
    main()
