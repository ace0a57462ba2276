"""Pure renderers for APT configuration: deb822 sources with embedded keys, and pinning.

Keys are embedded in `Signed-By:` (APT >= 2.4 reads an armored key block there), so the
sources file is self-contained: the same text works for mmdebstrap outside the chroot and
for apt inside the image, with no key file paths to keep in step.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from livestrap.release import ANY, ReleaseFields
from livestrap.spec import ResolvedSpec

ARMOR_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
ARMOR_END = "-----END PGP PUBLIC KEY BLOCK-----"
DISTRO_SOURCE_NAME = "distro"
SECURITY_SOURCE_NAME = "security"
# The release-file fields a `release` pin can name, in the order they are tried.
PIN_FIELDS = (("o", "origin"), ("l", "label"), ("a", "suite"), ("n", "codename"))
UNKNOWN = ANY  # a field of a release file not fetched (or given twice): it may be anything

# Reads a key file (a seam so the renderers stay pure in tests).
KeyReader = Callable[[str], bytes]


@dataclass(frozen=True)
class AptSource:
    """One repository as APT will see it; `key` is armored text or None when trusted."""

    name: str
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    key: str | None
    trusted: bool = False


def _crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def armor_key(data: bytes) -> str:
    """Return an ASCII-armored public key block for a key file, armored or binary."""
    if ARMOR_BEGIN.encode() in data:
        text = data.decode("ascii", errors="replace")
        start = text.index(ARMOR_BEGIN)
        end = text.find(ARMOR_END, start)
        if end < 0:
            raise ValueError("armored key block has no END line (truncated file?)")
        return text[start : end + len(ARMOR_END)] + "\n"
    if data.lstrip()[:5] == b"-----":
        raise ValueError("armored file is not a PGP public key block")
    if not data or not data[0] & 0x80:
        raise ValueError("not an OpenPGP key (neither armored nor binary packets)")
    body = base64.b64encode(data).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    crc = base64.b64encode(_crc24(data).to_bytes(3, "big")).decode()
    return "\n".join([ARMOR_BEGIN, "", *lines, f"={crc}", ARMOR_END]) + "\n"


def render_sources(sources: list[AptSource]) -> str:
    """deb822 text with one stanza per source, each with its key embedded."""
    stanzas = []
    for src in sources:
        lines = [
            f"# livestrap: {src.name}",
            "Types: deb",
            f"URIs: {src.uri}",
            f"Suites: {' '.join(src.suites)}",
            f"Components: {' '.join(src.components)}",
        ]
        if src.key is not None:
            lines.append("Signed-By:")
            lines += [f" {line}" if line.strip() else " ." for line in src.key.splitlines()]
        elif src.trusted:
            lines.append("Trusted: yes")
        stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas)


def release_url(uri: str, suite: str) -> str:
    """Where a source's signed release file for one suite is (fetched before the build)."""
    return f"{uri}/dists/{suite}/InRelease"


@dataclass(frozen=True)
class ReleasePoint:
    """One (uri, suite) of the build's sources and what its release file says."""

    name: str  # as messages name it: "repo acme", "the distro mirror's bookworm-updates"
    uri: str
    suite: str
    fields: ReleaseFields


class PinError(ValueError):
    """Two sources that no pin can tell apart (the build stops at stage prepare)."""


def _host(uri: str) -> str:
    return urlsplit(uri).hostname or ""


def release_points(
    spec: ResolvedSpec, releases: Mapping[str, ReleaseFields] | None = None
) -> list[ReleasePoint]:
    """Every release of the build: the distro's suites, the security suite, each repo.

    A release file that is not known (not fetched) is read as naming its suite and
    codename after the folder the spec gives, and as any origin and label (UNKNOWN).
    """
    known = releases or {}

    def point(name: str, uri: str, suite: str) -> ReleasePoint:
        guess = ReleaseFields(UNKNOWN, UNKNOWN, suite, suite, None)
        return ReleasePoint(name, uri, suite, known.get(release_url(uri, suite), guess))

    points = [point(f"the distro mirror's {s}", spec.mirror, s) for s in distro_suites(spec)]
    if spec.security_mirror:
        suite = security_suite(spec)
        points.append(point(f"the security repository {suite}", spec.security_mirror, suite))
    points += [point(f"repo {r.name}", r.uri, r.suite) for r in spec.repos]
    return points


def _pinnable(value: str | None) -> bool:
    """A value APT reads literally in `release k=v` (no glob, regex or list separator)."""
    if not value or not value.isprintable() or any(c.isspace() and c != " " for c in value):
        return False
    return not any(c in value for c in ',*?["') and not value.startswith("/")


def _may_match(attr: str, value: str, other: ReleaseFields) -> bool:
    """Could `attr=value` match `other`? A field `other` does not set never matches (as in
    APT); an UNKNOWN one always may; case is ignored, and a suite and a codename are
    compared with both (`a=` and `n=` are close cousins)."""
    if attr in ("suite", "codename"):
        theirs = [other.suite, other.codename]
    else:
        theirs = [getattr(other, attr)]
    return any(t == UNKNOWN or (t is not None and t.casefold() == value.casefold()) for t in theirs)


def distinguishing_fields(own: ReleaseFields, others: list[ReleaseFields]) -> tuple[str, ...]:
    """The first of o=, l=, a=, n= (then pairs, triples...) that matches none of `others`;
    () when nothing does."""
    usable = [(key, attr) for key, attr in PIN_FIELDS if _pinnable(getattr(own, attr))]
    for size in range(1, len(usable) + 1):
        for combo in itertools.combinations(usable, size):
            if all(
                any(not _may_match(attr, getattr(own, attr), other) for _, attr in combo)
                for other in others
            ):
                return tuple(f"{key}={getattr(own, attr)}" for key, attr in combo)
    return ()


def _fields_text(fields: ReleaseFields) -> str:
    return ", ".join(
        f"{key}={getattr(fields, attr) if getattr(fields, attr) is not None else '(unset)'}"
        for key, attr in PIN_FIELDS
    )


def derive_pins(
    spec: ResolvedSpec, releases: Mapping[str, ReleaseFields] | None = None
) -> dict[str, str]:
    """Repo name -> pin. An explicit `pin:` wins; a repo alone on its host is pinned by
    `origin "HOST"`; any other by the first of its release file's Origin, Label, Suite
    and Codename (combined if need be) that no other source of the build has.

    A release pin is not limited to a host, so it is held against every other source,
    the distro's suites and the security repository included. PinError names the two
    sources nothing tells apart and the fields compared.
    """
    points = release_points(spec, releases)
    pins: dict[str, str] = {}
    for repo in spec.repos:
        if repo.pin:
            pins[repo.name] = repo.pin
            continue
        host = _host(repo.uri)
        others = [p for p in points if p.name != f"repo {repo.name}"]
        if host and host not in {_host(p.uri) for p in others}:
            pins[repo.name] = f'origin "{host}"'
            continue
        own = next(p for p in points if p.name == f"repo {repo.name}")
        found = distinguishing_fields(own.fields, [p.fields for p in others])
        if not found:
            clash = next(p for p in others if not distinguishing_fields(own.fields, [p.fields]))
            raise PinError(
                f"repo {repo.name} ({own.uri} {own.suite}) and {clash.name} ({clash.uri} "
                f"{clash.suite}) cannot be told apart by their release files: compared "
                f"o= origin, l= label, a= suite, n= codename ({_fields_text(own.fields)} "
                f"against {_fields_text(clash.fields)}); give repo {repo.name} a `pin:`"
            )
        pins[repo.name] = "release " + ",".join(found)
    return pins


def render_preferences(repo_name: str, pin: str, priority: int) -> str:
    """One preferences.d file for one repo."""
    return f"# livestrap: repo {repo_name}\nPackage: *\nPin: {pin}\nPin-Priority: {priority}\n"


def pin_conflicts(spec: ResolvedSpec) -> list[str]:
    """What no release file can settle, found before anything is fetched: two repos (or a
    repo and the distro) that are the very same uri and suite, and two explicit pins
    that are the same text. Everything else is settled at stage prepare (derive_pins)."""
    seen: dict[tuple[str, str], str] = {
        (spec.mirror, suite): "the distro mirror" for suite in distro_suites(spec)
    }
    if spec.security_mirror:
        seen[(spec.security_mirror, security_suite(spec))] = "the security repository"
    problems = []
    for repo in spec.repos:
        where = (repo.uri, repo.suite)
        if where in seen:
            problems.append(
                f"repos {seen[where]}, {repo.name} share the pin: both are {repo.uri} "
                f"suite {repo.suite}, the same repository; drop one"
            )
        seen.setdefault(where, repo.name)
    pins: dict[str, list[str]] = {}
    for repo in spec.repos:
        if repo.pin:
            pins.setdefault(repo.pin, []).append(repo.name)
    problems += [
        f"repos {', '.join(names)} share the pin '{pin}'; give each a distinct `pin:`"
        for pin, names in pins.items()
        if len(names) > 1
    ]
    return problems


def preferences_files(
    spec: ResolvedSpec, releases: Mapping[str, ReleaseFields] | None = None
) -> dict[str, str]:
    """File name -> text for /etc/apt/preferences.d, one per extra repo (PinError when
    two sources cannot be told apart)."""
    pins = derive_pins(spec, releases)
    return {
        f"livestrap-{repo.name}.pref": render_preferences(repo.name, pins[repo.name], repo.priority)
        for repo in spec.repos
    }


def distro_suites(spec: ResolvedSpec) -> tuple[str, ...]:
    """The distro source's suites: `suites`, else the main suite alone."""
    return tuple(spec.suites or [spec.suite])


def security_suite(spec: ResolvedSpec) -> str:
    return f"{spec.suite}-security"


def spec_sources(spec: ResolvedSpec, read_key: KeyReader) -> list[AptSource]:
    """The distro source plus every extra repo of a resolved spec, keys read and armored."""
    sources = [
        AptSource(
            name=DISTRO_SOURCE_NAME,
            uri=spec.mirror,
            suites=distro_suites(spec),
            components=tuple(spec.components),
            key=armor_key(read_key(str(spec.mirror_key))),
        )
    ]
    if spec.security_mirror:
        sources.append(
            AptSource(
                name=SECURITY_SOURCE_NAME,
                uri=spec.security_mirror,
                suites=(security_suite(spec),),
                components=tuple(spec.components),
                key=armor_key(read_key(str(spec.mirror_key))),
            )
        )
    for repo in spec.repos:
        sources.append(
            AptSource(
                name=repo.name,
                uri=repo.uri,
                suites=(repo.suite,),
                components=tuple(repo.components),
                key=armor_key(read_key(str(repo.key))) if repo.key else None,
                trusted=repo.trusted and repo.key is None,
            )
        )
    return sources
