"""What an action's end sets off: the action.finished webhook (subject: the action),
and the rules again after a successful re-inspection only."""

from __future__ import annotations

from typing import Any

import pytest

from livestrap.master.models import NodeAction
from livestrap.master.services import action_hooks

pytestmark = pytest.mark.unit


def _action(kind: str, state: str) -> NodeAction:
    return NodeAction(id="a1", node_id="n1", kind=kind, state=state, exit_code=100,
                      took_s=1.5, error="x" * 900, args={})  # fmt: skip


def test_action_finished_is_emitted_with_the_action_as_subject(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, str | None, dict[str, Any]]] = []
    monkeypatch.setattr(action_hooks, "emit", lambda s, t, subj, data: sent.append((t, subj, data)))
    action_hooks.action_finished(None, _action("install", "failed"))  # type: ignore[arg-type]
    [(kind, subject, data)] = sent
    assert (kind, subject) == ("action.finished", "a1")
    assert data["node_id"] == "n1" and data["state"] == "failed" and data["exit_code"] == 100
    assert len(data["error"]) == action_hooks.ERROR_CHARS


def test_rules_run_again_only_after_a_successful_reinspect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[str] = []

    class Session:
        def get(self, _model: object, node_id: str) -> str:
            return node_id

    monkeypatch.setattr(action_hooks, "apply_rules", lambda s, node, trigger, q: ran.append(node))
    for kind, state in (("install", "succeeded"), ("reinspect", "failed"), ("reinspect", "lost")):
        action_hooks.rules_after_reinspect(Session(), _action(kind, state))  # type: ignore[arg-type]
    assert ran == []
    action_hooks.rules_after_reinspect(Session(), _action("reinspect", "succeeded"))  # type: ignore[arg-type]
    assert ran == ["n1"]
