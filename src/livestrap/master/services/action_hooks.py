"""What follows the end of a node action, in the transaction that ends it: the
`action.finished` webhook, and the rules again after a re-inspection (its facts came in
the report just before the result). Installed into services.actions.finished_hook by
the app (master.app), so the queue itself knows neither webhooks nor rules."""

from __future__ import annotations

from sqlalchemy.orm import Session

from livestrap.master.models import Node, NodeAction
from livestrap.master.services.actions import finished_hook, queue_action
from livestrap.master.services.rules import apply_rules
from livestrap.master.webhooks.outbox import emit

ERROR_CHARS = 500  # of the action's error, in the webhook


def action_finished(session: Session, action: NodeAction) -> None:
    data = {"action_id": action.id, "node_id": action.node_id, "kind": action.kind,
            "state": action.state, "exit_code": action.exit_code, "took_s": action.took_s,
            "error": action.error[:ERROR_CHARS] if action.error else None}  # fmt: skip
    emit(session, "action.finished", action.id, data)  # subject: the action


def rules_after_reinspect(session: Session, action: NodeAction) -> None:
    if action.kind != "reinspect" or action.state != "succeeded":
        return
    node = session.get(Node, action.node_id)
    if node is not None:
        apply_rules(session, node, "reinspect", queue_action)


def install() -> None:
    """Add the hooks once (a second app in the same process adds nothing)."""
    for hook in (action_finished, rules_after_reinspect):
        if hook not in finished_hook:
            finished_hook.append(hook)
