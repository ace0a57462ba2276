"""Node actions: the orders in a heartbeat answer, validated again here, and run one by one.

The kinds and their arguments are fixed (the master validates them too; this is the
node's own check, since a node obeys nothing it cannot verify):

- install    {"packages": [{"name": str, "version": str | null}, ...]}  1..64 items,
             name ^[a-z0-9][a-z0-9+.-]{0,99}$ and not ending in "-" (apt-get would
             remove it; a trailing "+", as in g++, is a name), version
             ^[A-Za-z0-9.+~:-]{1,100}$ or null
- reinspect  {}     reboot  {}     poweroff  {}

An order needs a UUID `id` (it goes into the result's URL); without one it cannot be
answered and is dropped with a log line. Any other fault (unknown kind, an extra or
missing argument, a bad package name, more than MAX_ORDERS in one answer) makes an
Order with `problem` set: it is reported failed with that reason and never run.
Unknown keys beside id/kind/args are ignored, as in the rest of the answer.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import AGENT_VERSION, VERSION_FILE, installed_version
from .aptinstall import InstallResult, Package, install
from .runner import Runner

log = logging.getLogger("livestrap.agent")

KINDS = ("install", "reinspect", "reboot", "poweroff")
MAX_ORDERS = 8  # one answer; the master hands one at a time today
MAX_SCANNED = 64  # entries looked at in one answer at all
MAX_PACKAGES = 64
SYSTEMCTL_TIMEOUT_S = 60.0
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]{0,99}")
_VERSION = re.compile(r"[A-Za-z0-9.+~:-]{1,100}")

Install = Callable[[Sequence[Package], str, Runner], InstallResult]
Reinspect = Callable[[], "str | None"]  # sends a report with facts; returns why it failed


@dataclass(frozen=True)
class Order:
    """One action to run, or (problem set) one to report failed without running it."""

    id: str
    kind: str
    packages: tuple[Package, ...] = ()
    problem: str | None = None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_packages(args: dict[str, Any]) -> tuple[Package, ...]:
    """install's arguments; ValueError names the fault."""
    extra = sorted(set(args) - {"packages"})
    if extra:
        raise ValueError(f"install takes only 'packages', not {_short(extra[0])}")
    items = args.get("packages")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_PACKAGES:
        raise ValueError(f"packages must be a list of 1 to {MAX_PACKAGES} packages")
    packages = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or "name" not in item:
            raise ValueError(f"packages[{n}] is not an object with a name")
        extra = sorted(set(item) - {"name", "version"})
        if extra:
            raise ValueError(f"packages[{n}] has an unknown key {_short(extra[0])}")
        name, version = item["name"], item.get("version")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"packages[{n}].name {_short(name)} is not a package name")
        if name.endswith("-"):
            raise ValueError(f"packages[{n}].name {_short(name)} ends in '-' (apt-get removes it)")
        bad_version = not isinstance(version, str) or not _VERSION.fullmatch(version)
        if version is not None and bad_version:
            raise ValueError(f"packages[{n}].version {_short(version)} is not a version")
        packages.append(Package(name, version))
    return tuple(packages)


def check_order(order_id: str, kind: Any, args: Any) -> Order:
    """The order, or the same with `problem` saying why it must not run."""
    if not isinstance(kind, str) or kind not in KINDS:
        return Order(order_id, "unknown", problem=f"unknown action kind {_short(kind)}")
    if not isinstance(args, dict):
        return Order(order_id, kind, problem=f"{kind}: args is not an object")
    if kind != "install":
        if args:
            extra = _short(sorted(args)[0])
            return Order(order_id, kind, problem=f"{kind} takes no arguments, got {extra}")
        return Order(order_id, kind)
    try:
        return Order(order_id, kind, check_packages(args))
    except ValueError as exc:
        return Order(order_id, kind, problem=f"install: {exc}")


def parse_orders(raw: Any) -> list[Order]:
    """The answer's `actions`, hostile until checked: see the module docstring."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        log.warning("answer's actions is not a list (%s); ignored", _short(raw))
        return []
    if len(raw) > MAX_SCANNED:
        log.warning("answer holds %d actions; only the first %d are read", len(raw), MAX_SCANNED)
    orders: list[Order] = []
    for n, item in enumerate(raw[:MAX_SCANNED]):
        order_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(order_id, str) or not _ID.fullmatch(order_id):
            log.warning("action #%d has no valid id (%s); dropped", n, _short(order_id))
            continue
        assert isinstance(item, dict)
        if len(orders) >= MAX_ORDERS:
            problem = f"more than {MAX_ORDERS} actions in one answer; not run"
            orders.append(Order(order_id, "unknown", problem=problem))
            continue
        orders.append(check_order(order_id, item.get("kind"), item.get("args")))
    return orders


@dataclass(frozen=True)
class Outcome:
    """One action's result; `then`: what follows once it is sent (exit, reboot, poweroff)."""

    status: str
    exit_code: int | None = None
    output_tail: str = ""
    took_s: float = 0.0
    error: str | None = None
    then: str | None = None

    def body(self, node_id: str | None) -> dict[str, Any]:
        """The result's JSON body (POST .../actions/{id}/result)."""
        return {
            "node_id": node_id,
            "status": self.status,
            "exit_code": self.exit_code,
            "output_tail": self.output_tail[-4096:],
            "took_s": round(max(0.0, self.took_s), 3),
            "error": None if self.error is None else self.error[:500],
        }


@dataclass
class Executor:
    """Runs one valid order at a time through the runner seam."""

    master_url: str
    runner: Runner
    clock: Callable[[], float] = time.monotonic
    install: Install = field(default=install)
    version_now: Callable[[], str] = field(default=lambda: installed_version(VERSION_FILE))
    running_version: str = AGENT_VERSION

    def run(self, order: Order, reinspect: Reinspect) -> Outcome:
        """Never raises: a crash in an action is that action's failure."""
        if order.problem is not None:
            log.error("action %s refused: %s", order.id, order.problem)
            return Outcome("failed", error=order.problem)
        log.info("running action %s: %s", order.id, order.kind)
        start = self.clock()
        try:
            outcome = self._dispatch(order, reinspect)
        except Exception as exc:  # reported as the action's failure, never fatal to the loop
            log.exception("action %s crashed", order.id)
            outcome = Outcome("failed", error=f"the agent failed: {type(exc).__name__}: {exc}")
        took = self.clock() - start
        log.info("action %s %s in %.1f s%s", order.id, outcome.status, took,
                 f": {outcome.error}" if outcome.error else "")  # fmt: skip
        return Outcome(outcome.status, outcome.exit_code, outcome.output_tail, took,
                       outcome.error, outcome.then)  # fmt: skip

    def _dispatch(self, order: Order, reinspect: Reinspect) -> Outcome:
        if order.kind == "install":
            result = self.install(order.packages, self.master_url, self.runner)
            if not result.ok:
                return Outcome("failed", result.exit_code, result.output_tail, error=result.error)
            new = self.version_now()
            if new != self.running_version:  # our own package changed: restart into it
                note = f"\nlivestrap-agent {self.running_version} -> {new}: restarting\n"
                return Outcome("succeeded", 0, (result.output_tail + note)[-4096:], then="exit")
            return Outcome("succeeded", 0, result.output_tail)
        if order.kind == "reinspect":
            problem = reinspect()
            if problem:
                return Outcome("failed", error=problem)
            return Outcome("succeeded", output_tail="facts collected and sent")
        return Outcome("succeeded", then=order.kind)  # reboot, poweroff: after the result

    def follow_up(self, then: str) -> bool:
        """Do what an action left for after its result; True: the agent must exit now."""
        if then == "exit":
            log.info("the agent's package was upgraded; exiting so systemd starts the new one")
            return True
        run = self.runner(["systemctl", then], SYSTEMCTL_TIMEOUT_S, None)
        if run.exit_code != 0:
            log.error("systemctl %s failed (exit %s): %s", then, run.exit_code, run.output[-500:])
        return False
