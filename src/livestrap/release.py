"""The few fields of an APT `Release`/`InRelease` file that livestrap reads (pure, stdlib).

Minimal version for reproducible builds (helper C); the pins part (helper A) owns this
module and its interface: `ReleaseFields` and `parse_release`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class ReleaseFields:
    origin: str | None
    label: str | None
    suite: str | None
    codename: str | None
    date: datetime | None


def _paragraph(text: str) -> dict[str, str]:
    """The first deb822 paragraph's single-line fields (continuation lines are skipped)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("-----BEGIN PGP SIGNED MESSAGE"):
            continue
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" or ":" not in line:
            continue
        name, value = line.split(":", 1)
        fields.setdefault(name.strip().lower(), value.strip())
    return fields


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_release(data: bytes) -> ReleaseFields:
    """Origin, Label, Suite, Codename and Date of a Release or (clearsigned) InRelease."""
    text = data.decode("utf-8", errors="replace")
    if text.startswith("-----BEGIN PGP SIGNED MESSAGE"):
        text = text.split("\n\n", 1)[1] if "\n\n" in text else ""  # skip the armor headers
    fields = _paragraph(text)
    return ReleaseFields(
        origin=fields.get("origin"),
        label=fields.get("label"),
        suite=fields.get("suite"),
        codename=fields.get("codename"),
        date=_date(fields.get("date")),
    )
