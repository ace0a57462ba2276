"""The table each resource prints as (columns for -o table, more for -o wide)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from livestrap.cli.humanize import ago, decimal_size, local_time
from livestrap.cli.output import Column, TableView, field_of

STATUS_STYLES = {"online": "green", "offline": "red"}
BUILD_STYLES = {"succeeded": "green", "failed": "red", "running": "cyan", "queued": "yellow"}


def _model(node: Mapping[str, Any]) -> str:
    return " ".join(str(node[k]) for k in ("vendor", "product") if node.get(k)) or "-"


NODES = TableView(
    columns=(
        Column("ID", field_of("id"), is_id=True),
        Column("NAME", field_of("name"), wide_only=True),
        Column("STATUS", field_of("status"), styles=STATUS_STYLES),
        Column("MODEL", _model, wraps=True),
        Column("SERIAL", field_of("serial"), wide_only=True),
        Column("BOOT MAC", field_of("boot_mac")),
        Column("IP", field_of("last_ip")),
        Column("IMAGE", field_of("image_id"), wide_only=True),
        Column("AGENT", field_of("agent_version"), wide_only=True),
        Column("BOOTS", field_of("boots"), wide_only=True),
        Column("FIRST SEEN", lambda n: ago(n.get("first_seen_at")), wide_only=True),
        Column("LAST SEEN", lambda n: ago(n.get("last_seen_at"))),
        Column("TAGS", lambda n: ",".join(n.get("tags") or []) or "-", wide_only=True),
    ),
    empty="no nodes",
)

BUILDS = TableView(
    columns=(
        Column("ID", field_of("id"), is_id=True),
        Column("STATE", field_of("state"), styles=BUILD_STYLES),
        Column("STAGE", field_of("stage")),
        Column("DONE", lambda b: f"{b['progress']:.0%}"),
        Column("IMAGE", field_of("image_id"), wraps=True),
        Column("AGE", lambda b: ago(b.get("created"))),
        Column("CREATED", lambda b: local_time(b.get("created")), wide_only=True),
        Column("FINISHED", lambda b: local_time(b.get("finished")), wide_only=True),
        Column("REUSED", lambda b: "yes" if b.get("reused") else "no", wide_only=True),
        Column("ERROR", field_of("error"), wide_only=True),
    ),
    empty="no builds",
)


def _image_marks(image: Mapping[str, Any]) -> str:
    """`*` nodes boot it; `!` it breaks a rule newer than it (`images show` says which)."""
    return ("*" if image["active"] else "") + ("!" if image.get("problems") else "")


IMAGES = TableView(
    columns=(
        Column("ID", field_of("id")),
        Column("LABEL", field_of("label")),
        Column("CREATED", lambda i: f"{datetime.fromisoformat(i['created']):%Y-%m-%d %H:%M}"),
        Column("SIZE", lambda i: decimal_size(i["total_size"])),
        Column("ACTIVE", _image_marks),
    ),
    empty="no images",
)

# rows of `images diff`: {"change": "+"|"-"|"~", "package", "from", "to"}
PACKAGE_CHANGES = TableView(
    columns=(
        Column("", field_of("change")),
        Column("PACKAGE", field_of("package")),
        Column("FROM", field_of("from")),
        Column("TO", field_of("to")),
    ),
    key="package",
    empty="same packages",
)

VERIFY_STYLES = {"ok": "green", "mismatch": "red", "missing": "red"}

# rows of `images verify`: each artifact and what its recomputed sha256 says
VERIFIED = TableView(
    columns=(
        Column("FILE", field_of("file")),
        Column("STATUS", field_of("status"), styles=VERIFY_STYLES),
    ),
    key="file",
    empty="no artifacts",
)

PUBLISHED = TableView(
    columns=(
        Column("PACKAGE", field_of("package")),
        Column("VERSION", field_of("version")),
        Column("FILE", field_of("file"), wide_only=True),
    ),
    key="package",
    empty="nothing published",
)

# rows of `nodes timeline`: the events plus "offset" (seconds since the first one)
TIMELINE = TableView(
    columns=(
        Column("OFFSET", lambda e: f"+{e['offset']:.1f}s"),
        Column("AT", lambda e: local_time(e.get("at")), wide_only=True),
        Column("KIND", field_of("kind")),
        Column("IP", field_of("ip")),
        Column("MAC", field_of("mac")),
        Column("IMAGE", field_of("image_id")),
        Column(
            "DETAIL",
            lambda e: " ".join(f"{k}={v}" for k, v in (e.get("detail") or {}).items()) or "-",
            wraps=True,
        ),
    ),
    key="kind",
    empty="no events",
)


def timeline_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with their offset from the first one, which is what a boot is read by."""
    if not events:
        return []
    start = datetime.fromisoformat(events[0]["at"]).timestamp()
    return [{**e, "offset": datetime.fromisoformat(e["at"]).timestamp() - start} for e in events]


ACTION_STYLES = {"succeeded": "green", "failed": "red", "lost": "red", "expired": "red",
                 "delivered": "cyan", "queued": "yellow"}  # fmt: skip


def _action_args(action: Mapping[str, Any]) -> str:
    """install's packages as PKG[=VERSION]; the other kinds take no arguments."""
    packages = (action.get("args") or {}).get("packages") or []
    words = [p["name"] + (f"={p['version']}" if p.get("version") else "") for p in packages]
    return " ".join(words) or "-"


def _took(action: Mapping[str, Any]) -> str:
    took = action.get("took_s")
    return "-" if took is None else f"{took:.1f}s"


# rows of `nodes actions` and of `nodes install|reinspect|reboot|poweroff`
ACTIONS = TableView(
    columns=(
        Column("ID", field_of("id"), is_id=True),
        Column("NODE", field_of("node_id"), is_id=True),
        Column("KIND", field_of("kind")),
        Column("ARGS", _action_args, wraps=True),
        Column("STATE", field_of("state"), styles=ACTION_STYLES),
        Column("EXIT", field_of("exit_code")),
        Column("TOOK", _took),
        Column("QUEUED", lambda a: ago(a.get("created_at"))),
        Column("ERROR", field_of("error"), wraps=True),
    ),
    empty="no actions",
)
