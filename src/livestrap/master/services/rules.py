"""Rules: the ordered list stored on the master (the `rules` settings row), what they do
to a node on a trigger (apply_rules), and what they would do to every node (dry_run).

One pure function, `evaluate`, decides for both: rules run in order; tags accumulate;
the first `set_name` that gives a valid name nobody else has names a node that has no
name yet (a rule never renames a named node, and never takes another node's name: it
records a conflict); each matched rule's action is queued. A rule whose condition or
pattern fails on a node's facts is reported with the error and does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from livestrap.master.events import record_event
from livestrap.master.models import Node, SettingRow
from livestrap.master.ruleexpr import ExpressionError, context_of, holds, render_name
from livestrap.master.schemas.rules import (
    MAX_TAGS,
    DryRun,
    Rule,
    RuleOutcome,
    RuleReport,
    RuleSet,
    Trigger,
)
from livestrap.master.services.node_tags import add_tags, node_tags, tags_of

RULES_KEY = "rules"
DRY_RUN_BATCH = 500  # nodes' facts in memory at a time
DRY_RUN_LISTED = 1000  # reports a dry run lists at most (the counts cover every node)
Queue = Callable[[Session, str, str, dict[str, Any], str], object]


@dataclass(frozen=True)
class NodeView:
    """What the rules read of a node besides its facts."""

    id: str
    name: str | None
    tags: Sequence[str]
    boot_mac: str | None = None
    image_id: str | None = None
    agent_version: str | None = None


def stored_rules(session: Session) -> RuleSet:
    """The stored rules, checked again (a rule this master's language refuses is dropped
    from the list rather than run)."""
    row = session.get(SettingRow, RULES_KEY)
    rules = row.value.get("rules", []) if row is not None and isinstance(row.value, dict) else []
    kept = []
    for data in rules if isinstance(rules, list) else []:
        try:
            kept.append(Rule.model_validate(data))
        except ValueError:
            continue
    return RuleSet(rules=kept)


def save_rules(session: Session, rules: RuleSet) -> dict[str, Any]:
    value = rules.document()
    session.merge(SettingRow(key=RULES_KEY, value=value, updated_at=time.time()))
    return value


def evaluate(
    rules: Sequence[Rule],
    facts: Any,
    node: NodeView,
    trigger: Trigger,
    taken: Callable[[str], bool],
) -> RuleReport:
    """What the rules do to one node; `taken(name)`: another node has that name. Pure."""
    name, tags = node.name, list(node.tags)
    report = RuleReport(node_id=node.id, trigger=trigger)
    for rule in rules:
        view = {**vars(node), "name": name, "tags": list(tags)}
        context = context_of(facts, view, trigger)
        outcome = RuleOutcome(rule=rule.name, matched=False)
        report.outcomes.append(outcome)
        try:
            outcome.matched = holds(rule.condition, context)
        except ExpressionError as err:
            outcome.errors.append(f"if: {err}")
        if not outcome.matched:
            continue
        if rule.set_name is not None and name is None:
            try:
                wanted = render_name(rule.set_name, context)
            except ExpressionError as err:
                outcome.errors.append(f"set_name: {err}")
            else:
                if taken(wanted):
                    outcome.conflict = wanted
                else:
                    name = outcome.name = wanted
        for tag in rule.add_tags:
            if tag in tags:
                continue
            if len(tags) >= MAX_TAGS:
                outcome.errors.append(f"add_tags: the node has {MAX_TAGS} tags already")
                break
            tags.append(tag)
            outcome.tags_added.append(tag)
        if rule.action is not None:
            if trigger == "reinspect" and rule.action.kind == "reinspect":
                outcome.errors.append("action: no reinspect on a reinspect (it would loop)")
            else:
                outcome.action = rule.action.kind
    report.name, report.tags = name, sorted(tags)
    return report


def _view(node: Node, tags: Sequence[str]) -> NodeView:
    return NodeView(node.id, node.name, tags, node.boot_mac, node.image_id, node.agent_version)


def apply_rules(session: Session, node: Node, trigger: str, queue: Queue | None) -> RuleReport:
    """Run the stored rules on `node` (trigger "register" or "reinspect") in the caller's
    transaction: name it, tag it, queue actions through `queue(session, node_id, kind,
    args, requested_by)` (none queued when it is None). Conflicts and changes go on
    the node's timeline."""
    if trigger not in ("register", "reinspect"):
        raise ValueError(f"unknown trigger {trigger!r}")
    when: Trigger = "register" if trigger == "register" else "reinspect"
    rules = stored_rules(session).rules
    if not rules:
        return RuleReport(node_id=node.id, trigger=when, name=node.name,
                          tags=node_tags(session, node.id))  # fmt: skip

    def taken(name: str) -> bool:
        owner = session.scalar(select(Node.id).where(Node.name == name))
        return owner is not None and owner != node.id

    view = _view(node, node_tags(session, node.id))
    report = evaluate(rules, node.facts, view, when, taken)
    by_name = {rule.name: rule for rule in rules}
    for outcome in report.outcomes:
        rule = by_name[outcome.rule]
        if outcome.name is not None:
            node.name = outcome.name
            session.flush()
        if outcome.tags_added:
            add_tags(session, node.id, outcome.tags_added)
        if outcome.action is not None and rule.action is not None:
            if queue is None:
                outcome.action = None
                outcome.errors.append("action: no action queue here")
            else:
                try:
                    queue(session, node.id, rule.action.kind, dict(rule.action.args), "rules")
                except ValueError as err:
                    outcome.action = None
                    outcome.errors.append(f"action: {err}")
        if outcome.conflict is not None:
            detail = {"rule": rule.name, "name": outcome.conflict, "trigger": trigger}
            record_event(session, "rule-conflict", node_id=node.id, detail=detail)
    changes = [o.model_dump(exclude_defaults=True) for o in report.outcomes if _did(o)]
    if changes:
        record_event(session, "rules-applied", node_id=node.id,
                     detail={"trigger": trigger, "rules": changes})  # fmt: skip
    return report


def _did(outcome: RuleOutcome) -> bool:
    return bool(outcome.name or outcome.tags_added or outcome.action)


def _nodes(session: Session) -> Iterator[tuple[Node, list[str]]]:
    """Every node with its tags, DRY_RUN_BATCH at a time (keyset by id, read-only)."""
    last: str | None = None
    while True:
        query = select(Node).order_by(Node.id).limit(DRY_RUN_BATCH)
        batch = list(session.scalars(query if last is None else query.where(Node.id > last)))
        tags = tags_of(session, (node.id for node in batch))
        for node in batch:
            yield node, tags[node.id]
        session.expunge_all()  # the facts of a batch go once it is done
        if len(batch) < DRY_RUN_BATCH:
            return
        last = batch[-1].id


def _taken_but_by(owners: dict[str, str], node_id: str) -> Callable[[str], bool]:
    return lambda name: owners.get(name, node_id) != node_id


def dry_run(
    session: Session,
    rules: Sequence[Rule] | None,
    trigger: Trigger = "register",
    listed: int = DRY_RUN_LISTED,
) -> DryRun:
    """What `rules` (else the stored ones) would do to every node: nothing is written.
    Names given to earlier nodes in the run count as taken for later ones."""
    started = time.monotonic()
    rules = stored_rules(session).rules if rules is None else rules
    named = select(Node.name, Node.id).where(Node.name.is_not(None))
    owners: dict[str, str] = {name: node_id for name, node_id in session.execute(named) if name}
    counts = dict.fromkeys(("nodes", "matched", "renamed", "tagged", "actions", "conflicts",
                            "errors"), 0)  # fmt: skip
    reports: list[RuleReport] = []
    for node, tags in _nodes(session):
        report = evaluate(
            rules, node.facts, _view(node, tags), trigger, _taken_but_by(owners, node.id)
        )
        if report.name and report.name != node.name:
            owners[report.name] = node.id
        counts["nodes"] += 1
        outcomes = report.outcomes
        counts["matched"] += any(o.matched for o in outcomes)
        counts["renamed"] += any(o.name for o in outcomes)
        counts["tagged"] += any(o.tags_added for o in outcomes)
        counts["actions"] += sum(o.action is not None for o in outcomes)
        counts["conflicts"] += sum(o.conflict is not None for o in outcomes)
        counts["errors"] += any(o.errors for o in outcomes)
        if report.changed() or any(o.errors for o in outcomes):
            report.outcomes = [o for o in outcomes if o.matched or o.errors]
            reports.append(report)
    took = round(time.monotonic() - started, 3)
    return DryRun(**counts, took_s=took, reports=reports[:listed], truncated=len(reports) > listed)
