"""Find the distro mirror in the host's own APT configuration.

No mirror host name is written in livestrap: the default comes from the sources the
operator already trusts (`sources.list`, `sources.list.d/*.list` and deb822 `*.sources`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SourceEntry:
    """One `deb` source of the host: a URI, its suites and components, and its key file."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None = None
    origin_file: str = ""
    options: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def distro(self) -> str | None:
        """'debian' or 'ubuntu' when the URI path or keyring says so; None otherwise."""
        hay = self.uri.split("://", 1)[-1].partition("/")[2] + " " + (self.signed_by or "")
        hay = hay.lower()
        for name in ("ubuntu", "debian"):
            if name in hay:
                return name
        return None

    def is_archive_of(self, distro: str) -> bool:
        """Strictly the distro's own archive: the path ends in its name and, when a
        keyring is named, the keyring is the distro's (not a PPA's or a vendor's)."""
        last = self.uri.rstrip("/").rsplit("/", 1)[-1].lower()
        keyring = (self.signed_by or "").rsplit("/", 1)[-1].lower()
        keyring_ok = self.signed_by is None or distro in keyring
        return last == distro and keyring_ok

    @property
    def usable(self) -> bool:
        """livestrap can fetch from http, https, file and copy URIs only."""
        return self.uri.split("://", 1)[0] in ("http", "https", "file", "copy")


_ONELINE = re.compile(r"^\s*(deb|deb-src)\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<rest>.*)\Z")


def parse_oneline(text: str, origin_file: str = "") -> list[SourceEntry]:
    """Parse one-line-style `deb [opts] uri suite comp...` entries (deb-src skipped)."""
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        m = _ONELINE.match(line)
        if not m or m.group(1) != "deb":
            continue
        opts = dict(o.split("=", 1) for o in (m.group("opts") or "").split() if "=" in o)
        parts = m.group("rest").split()
        if len(parts) < 2:
            continue
        entries.append(
            SourceEntry(
                uri=parts[0],
                suites=(parts[1],),
                components=tuple(parts[2:]),
                signed_by=opts.get("signed-by"),
                origin_file=origin_file,
                options=opts,
            )
        )
    return entries


def parse_deb822(text: str, origin_file: str = "") -> list[SourceEntry]:
    """Parse deb822 `.sources` stanzas; disabled stanzas and deb-src are skipped."""
    entries = []
    for stanza in _deb822_stanzas(text):
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        if "deb" not in stanza.get("types", "").split():
            continue
        signed_by = stanza.get("signed-by", "").strip() or None
        if signed_by and "\n" in signed_by:
            signed_by = None  # an embedded key, not a path we can pass on
        for uri in stanza.get("uris", "").split():
            entries.append(
                SourceEntry(
                    uri=uri,
                    suites=tuple(stanza.get("suites", "").split()),
                    components=tuple(stanza.get("components", "").split()),
                    signed_by=signed_by,
                    origin_file=origin_file,
                )
            )
    return entries


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
            continue
        if raw[0] in " \t" and key:
            current[key] += "\n" + raw.strip()
            continue
        name, sep, value = raw.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def host_sources(root: Path = Path("/")) -> list[SourceEntry]:
    """Every `deb` entry of the APT configuration under `root`, in APT's reading order."""
    etc = root / "etc/apt"
    entries: list[SourceEntry] = []
    main = etc / "sources.list"
    if main.is_file():
        entries += parse_oneline(main.read_text(errors="replace"), str(main))
    d = etc / "sources.list.d"
    if d.is_dir():
        for path in sorted(d.iterdir()):
            if not path.is_file():
                continue
            if path.suffix == ".list":
                entries += parse_oneline(path.read_text(errors="replace"), str(path))
            elif path.suffix == ".sources":
                entries += parse_deb822(path.read_text(errors="replace"), str(path))
    return entries


def _is_base_suite(suite: str) -> bool:
    return "-" not in suite and "/" not in suite and suite not in ("nodistro", "stable-updates")


def find_distro_source(entries: list[SourceEntry], distro: str) -> SourceEntry | None:
    """The entry for `distro`'s archive with a release suite (not -updates/-security).

    Entries that are strictly the distro's archive win over ones that merely mention the
    distro (a vendor repo at .../debian-foo, a PPA at .../ppa/ubuntu); unusable URI
    schemes (mirror+file:, cdrom:) are passed over.
    """
    candidates = [e for e in entries if e.usable and e.distro == distro]
    strict = [e for e in candidates if e.is_archive_of(distro)]
    for entry in [*strict, *candidates]:
        base = tuple(s for s in entry.suites if _is_base_suite(s))
        if base:
            return SourceEntry(
                uri=entry.uri,
                suites=base,
                components=entry.components,
                signed_by=entry.signed_by,
                origin_file=entry.origin_file,
            )
    return None


def _same_uri(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def has_suite(entries: list[SourceEntry], uri: str, suite: str) -> bool:
    """Whether the host's sources list `suite` for the archive at `uri` (e.g. whether the
    mirror's `bookworm-updates` is in use on this host)."""
    return any(e.usable and _same_uri(e.uri, uri) and suite in e.suites for e in entries)


def find_security_source(entries: list[SourceEntry], distro: str, suite: str) -> str | None:
    """The URI of the host's `SUITE-security` archive for `distro`, if it has one.

    Debian serves it from its own archive (`.../debian-security`), Ubuntu from an
    archive of the same layout; either way it is the entry listing `SUITE-security`.
    """
    wanted = f"{suite}-security"
    for entry in entries:
        if entry.usable and entry.distro == distro and wanted in entry.suites:
            return entry.uri.rstrip("/")
    return None
