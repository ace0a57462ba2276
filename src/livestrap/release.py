"""Read the fields of a repository's `Release` or `InRelease` file that APT can pin on.

Pure and stdlib only: the build fetches the files (livestrap.builder.fingerprint), this
module reads them. `InRelease` is the same text clearsigned; the signature was or will be
checked by APT itself, here only the fields are wanted (for pins and SOURCE_DATE_EPOCH).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

SIGNED_BEGIN = "-----BEGIN PGP SIGNED MESSAGE-----"
SIGNATURE_BEGIN = "-----BEGIN PGP SIGNATURE-----"


@dataclass(frozen=True)
class ReleaseFields:
    """What a release file says about itself; None for a field it does not set."""

    origin: str | None
    label: str | None
    suite: str | None
    codename: str | None
    date: datetime | None


# A field given twice: which one APT takes is not ours to guess, so it may be anything
# (livestrap.apt never pins on it, and never counts it as telling two repos apart).
ANY = "*"


def _lines(text: str) -> list[str]:
    """Lines as APT splits them: at newlines only (str.splitlines also splits at \x1c,
    \x85, \u2028 and more, which would let a value smuggle in a field APT never sees)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _signed_text(text: str) -> str:
    """The signed body of a clearsigned message (dash-escaping undone), or `text` as is."""
    lines = _lines(text)
    if not lines or lines[0].strip() != SIGNED_BEGIN:
        return text
    body: list[str] = []
    in_header = True
    for line in lines[1:]:
        if in_header:  # armor headers ("Hash: SHA256") up to the first empty line
            in_header = bool(line.strip())
            continue
        if line.strip() == SIGNATURE_BEGIN:
            break
        body.append(line[2:] if line.startswith("- ") else line)
    return "\n".join(body)


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_release(data: bytes) -> ReleaseFields:
    """The Origin, Label, Suite, Codename and Date of a Release or InRelease file.

    Only the first paragraph's simple fields are read; continuation lines (the checksum
    lists) are skipped. A malformed Date is None rather than an error.
    """
    fields: dict[str, str] = {}
    for line in _lines(_signed_text(data.decode("utf-8", errors="replace"))):
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t":
            continue
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            fields[key] = ANY if key in fields else value.strip()

    def get(name: str) -> str | None:
        return fields.get(name) or None

    return ReleaseFields(
        origin=get("origin"),
        label=get("label"),
        suite=get("suite"),
        codename=get("codename"),
        date=_date(get("date")),
    )
