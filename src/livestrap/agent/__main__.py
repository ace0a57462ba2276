"""`python3 -m livestrap.agent`: the systemd service's entry point.

--print shows what would be reported (needs no master); --once sends one report
and exits 0 if the master accepted it; the default reports until killed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import AGENT_VERSION
from .collect import ROOT, collect_all
from .config import DEFAULT_CMDLINE, DEFAULT_CONFIG, ConfigError, load_config
from .report import Reporter

log = logging.getLogger("livestrap.agent")


def build_parser() -> argparse.ArgumentParser:
    """Command-line flags (the kernel command line carries the real settings)."""
    parser = argparse.ArgumentParser(
        prog="python3 -m livestrap.agent", description="livestrap discovery agent"
    )
    parser.add_argument("--version", action="version", version=AGENT_VERSION)
    parser.add_argument("--print", action="store_true", help="print the facts as JSON and exit")
    parser.add_argument("--once", action="store_true", help="send one report and exit")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="config file")
    parser.add_argument("--cmdline", type=Path, default=DEFAULT_CMDLINE, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", help="log heartbeats too")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the agent; returns the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,  # journald adds timestamps and the unit name
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        config, warnings = load_config(args.cmdline, args.config)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    for warning in warnings:
        log.warning("%s", warning)

    def collect() -> dict[str, object]:
        return collect_all(config, root=args.root)

    if args.print:
        json.dump(collect(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    try:
        reporter = Reporter(config, collect)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    log.info("livestrap agent %s reporting to %s", AGENT_VERSION, reporter.url)
    if args.once:
        reporter.step()
        return 0 if reporter.last_ok else 1
    reporter.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
