"""/api/v1/rules: the ordered rules run on each new node and each reinspect (admin
token), and their dry run over every known node (docs/rules.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from livestrap.master.deps import AdminOnly, SessionDep
from livestrap.master.schemas.nodes import ErrorDetail
from livestrap.master.schemas.rules import DryRun, DryRunBody, RuleSet
from livestrap.master.services import rules as service

router = APIRouter(
    prefix="/rules",
    tags=["rules"],
    dependencies=[AdminOnly],
    responses={401: {"model": ErrorDetail, "description": "Admin token missing or wrong."}},
)


@router.get("", response_model=RuleSet, summary="The stored rules, in order")
def get_rules(session: SessionDep) -> RuleSet:
    return service.stored_rules(session)


@router.put("", response_model=RuleSet, summary="Replace the rules")
def put_rules(session: SessionDep, body: Annotated[RuleSet, Body()]) -> RuleSet:
    """Replace every rule. Each condition and name pattern is checked first: one the
    language refuses is a 422 naming the rule, and nothing is stored."""
    service.save_rules(session, body)
    return body


@router.post("/dry-run", response_model=DryRun, summary="What the rules would do to every node")
def dry_run(session: SessionDep, body: Annotated[DryRunBody | None, Body()] = None) -> DryRun:
    """Run the given rules (else the stored ones) on every known node without changing
    anything: the counts cover every node; the nodes the rules would touch or that fail
    a rule are listed (at most 1000, then `truncated`)."""
    wanted = body or DryRunBody()
    return service.dry_run(session, wanted.rules, wanted.trigger)
