"""Node names, tags and rules as the API takes them: checked here, at the edge, so the
API, the CLI and the console refuse the same things (422 naming the field or the rule).

A rule's condition and name pattern are compiled by master.ruleexpr when the rules are
saved, so a refused expression never gets stored."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from livestrap.master.ruleexpr import NAME_RE, ExpressionError, compile_condition, compile_pattern

TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,62}\Z")
RULE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,63}\Z")
MAX_TAGS = 64  # tags on one node
MAX_RULE_TAGS = 16  # tags one rule adds
MAX_RULES = 100
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]{0,99}\Z")
VERSION_RE = re.compile(r"^[A-Za-z0-9.+~:-]{1,100}\Z")
Trigger = Literal["register", "reinspect"]


def matching(regex: re.Pattern[str], what: str) -> Any:
    """A validator: the string must match `regex` (anchored with \\Z, unlike `pattern=`)."""

    def check(cls: type, value: str | None) -> str | None:
        if value is not None and not regex.match(value):
            raise ValueError(f"{value[:100]!r} is not {what}")
        return value

    return classmethod(check)


def node_name(value: Any) -> str | None:
    """A node name: a DNS label, stored lower-case (None clears it)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("a name is a string")
    name = value.strip().lower()
    if not NAME_RE.match(name):
        raise ValueError(f"{value[:100]!r} is not a DNS label (a-z, 0-9, '-', at most 63)")
    return name


def node_tag(value: Any) -> str:
    if not isinstance(value, str) or not TAG_RE.match(value):
        shown = value[:100] if isinstance(value, str) else value
        raise ValueError(f"{shown!r} is not a tag (a-z, 0-9, then also _ . : -; at most 63)")
    return value


def tag_list(values: list[Any]) -> list[str]:
    """Tags, each checked, duplicates dropped, order kept."""
    return list(dict.fromkeys(node_tag(v) for v in values))


class NodePatch(BaseModel):
    """PATCH /api/v1/nodes/{id}: a field left out is left alone; `name: null` clears it,
    `tags` replaces every tag."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=253)
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return node_name(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else tag_list(values)


class Package(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    version: str | None = None

    _name = field_validator("name")(matching(PACKAGE_RE, "a package name"))
    _version = field_validator("version")(matching(VERSION_RE, "a package version"))


class InstallArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    packages: list[Package] = Field(min_length=1, max_length=64)


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


ARGS: dict[str, type[BaseModel]] = {
    "install": InstallArgs,
    "reinspect": NoArgs,
    "reboot": NoArgs,
    "poweroff": NoArgs,
}


class RuleAction(BaseModel):
    """A node action a rule queues (the kinds and arguments of the action queue)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["install", "reinspect", "reboot", "poweroff"]
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _args(self) -> RuleAction:
        self.args = ARGS[self.kind].model_validate(self.args).model_dump(exclude_none=True)
        return self


class Rule(BaseModel):
    """If the condition holds for a node: name it (when it has no name), add tags, queue
    an action."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str
    condition: str = Field(alias="if", max_length=1000)
    set_name: str | None = Field(default=None, max_length=1000)
    add_tags: list[str] = Field(default_factory=list, max_length=MAX_RULE_TAGS)
    action: RuleAction | None = None

    _name = field_validator("name")(
        matching(RULE_NAME_RE, "a rule name (A-Z a-z 0-9 _ . : - space)")
    )

    @field_validator("condition", "set_name")
    @classmethod
    def _language(cls, text: str | None, info: ValidationInfo) -> str | None:
        """Compiled now, so a refused condition or pattern is never stored."""
        compile_text = compile_condition if info.field_name == "condition" else compile_pattern
        try:
            if text is not None:
                compile_text(text)
        except ExpressionError as err:
            raise ValueError(f"rule {info.data.get('name')!r}: refused: {err}") from None
        return text

    @field_validator("add_tags")
    @classmethod
    def _tags(cls, values: list[str]) -> list[str]:
        return tag_list(values)

    def document(self) -> dict[str, Any]:
        """The rule as stored and shown (`if`, not the field's Python name)."""
        return self.model_dump(mode="json", by_alias=True)


class RuleSet(BaseModel):
    """PUT /api/v1/rules: the ordered rules (rule names unique)."""

    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES)

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        names = [rule.name for rule in self.rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique: {', '.join(twice)}")
        return self

    def document(self) -> dict[str, Any]:
        return {"rules": [rule.document() for rule in self.rules]}


class DryRunBody(BaseModel):
    """POST /api/v1/rules/dry-run: rules to try (else the stored ones), as on a trigger."""

    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] | None = Field(default=None, max_length=MAX_RULES)
    trigger: Trigger = "register"


class RuleOutcome(BaseModel):
    """What one rule did (or, in a dry run, would do) to one node."""

    rule: str
    matched: bool
    name: str | None = None  # the name it set
    conflict: str | None = None  # the name it wanted, another node's (or already taken)
    tags_added: list[str] = Field(default_factory=list)
    action: str | None = None  # the kind it queued
    errors: list[str] = Field(default_factory=list)


class RuleReport(BaseModel):
    """apply_rules' answer for one node: the rules that matched or failed, in order."""

    node_id: str
    trigger: Trigger
    outcomes: list[RuleOutcome] = Field(default_factory=list)
    name: str | None = None  # the node's name afterwards
    tags: list[str] = Field(default_factory=list)  # its tags afterwards

    def changed(self) -> bool:
        return any(o.name or o.tags_added or o.action or o.conflict for o in self.outcomes)


class DryRun(BaseModel):
    """What the rules would do to every known node (only the nodes they touch are listed,
    at most `limit` of them; the counts are over every node)."""

    nodes: int
    matched: int
    renamed: int
    tagged: int
    actions: int
    conflicts: int
    errors: int
    took_s: float
    reports: list[RuleReport]
    truncated: bool
