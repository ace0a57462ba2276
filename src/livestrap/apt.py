"""Pure renderers for APT configuration: deb822 sources with embedded keys, and pinning.

Keys are embedded in `Signed-By:` (APT >= 2.4 reads an armored key block there), so the
sources file is self-contained: the same text works for mmdebstrap outside the chroot and
for apt inside the image, with no key file paths to keep in step.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from livestrap.spec import Repo, ResolvedSpec

ARMOR_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
ARMOR_END = "-----END PGP PUBLIC KEY BLOCK-----"
DISTRO_SOURCE_NAME = "distro"

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


def derive_pin(repo: Repo, others: list[Repo], mirror: str) -> str:
    """`origin HOST` when the repo's host is its own; `release a=SUITE` when it is shared.

    APT's origin pin matches the host only, so two repos on one host (or a repo on the
    mirror's host) cannot be told apart by it and are pinned by their suite instead.
    """
    if repo.pin:
        return repo.pin
    host = urlsplit(repo.uri).hostname or ""
    shared = [urlsplit(o.uri).hostname for o in others if o.name != repo.name]
    shared.append(urlsplit(mirror).hostname)
    if host and host not in shared:
        return f'origin "{host}"'
    return f"release a={repo.suite}"


def render_preferences(repo_name: str, pin: str, priority: int) -> str:
    """One preferences.d file for one repo."""
    return f"# livestrap: repo {repo_name}\nPackage: *\nPin: {pin}\nPin-Priority: {priority}\n"


def pin_conflicts(spec: ResolvedSpec) -> list[str]:
    """Repos whose derived pins would also match another repo: they need `pin:` set."""
    pins: dict[str, list[str]] = {}
    for repo in spec.repos:
        pins.setdefault(derive_pin(repo, spec.repos, spec.mirror), []).append(repo.name)
    problems = [
        f"repos {', '.join(names)} share the pin '{pin}'; give each a distinct `pin:`"
        for pin, names in pins.items()
        if len(names) > 1
    ]
    distro_pin = f"release a={spec.suite}"
    problems += [
        f"repo {repo.name} would be pinned by '{distro_pin}', which also matches every "
        "distro package; give it an explicit `pin:` (e.g. 'release o=ORIGIN')"
        for repo in spec.repos
        if not repo.pin and derive_pin(repo, spec.repos, spec.mirror) == distro_pin
    ]
    return problems


def preferences_files(spec: ResolvedSpec) -> dict[str, str]:
    """File name -> text for /etc/apt/preferences.d, one per extra repo."""
    return {
        f"livestrap-{repo.name}.pref": render_preferences(
            repo.name, derive_pin(repo, spec.repos, spec.mirror), repo.priority
        )
        for repo in spec.repos
    }


def spec_sources(spec: ResolvedSpec, read_key: KeyReader) -> list[AptSource]:
    """The distro source plus every extra repo of a resolved spec, keys read and armored."""
    sources = [
        AptSource(
            name=DISTRO_SOURCE_NAME,
            uri=spec.mirror,
            suites=(spec.suite,),
            components=tuple(spec.components),
            key=armor_key(read_key(str(spec.mirror_key))),
        )
    ]
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
