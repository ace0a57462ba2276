"""Which APT archive provided each package, from apt's lists in the new root.

mmdebstrap is told to keep the lists (rootfs.mmdebstrap_argv: --skip=cleanup/apt/lists);
they are read at the start of the customize stage, which then removes them
(customize.clean_image). Each list file is named after its source's URI as apt names
it (URItoFileName), so the sources the build rendered find their own lists; a package
version found in several is credited to the one with the highest pin priority, as apt
chose it. Names and versions are data read from files, never turned into paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from livestrap.apt import AptSource, spec_sources
from livestrap.builder.sbom import Archive, Package
from livestrap.release import parse_release
from livestrap.spec import ResolvedSpec

LISTS = "var/lib/apt/lists"
ARCHES = ("amd64", "all")
DEFAULT_PRIORITY = 500
# what apt's URItoFileName percent-encodes besides control bytes, space and non-ASCII
_QUOTED = frozenset('\\|{}[]<>"^~_=!@#$%^&*')
Key = tuple[str, str, str]  # name, version, architecture

DPKG_QUERY_FORMAT = (
    "-f=${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\t${source:Version}"
    "\\t${db:Status-Abbrev}\\n"
)


def list_name(uri: str) -> str:
    """apt's file name for a URI in its lists dir: no scheme or credentials, the bytes
    it quotes as %xx, then '/' as '_'."""
    rest = uri.split("://", 1)[1] if "://" in uri else uri.split(":", 1)[-1]
    host, slash, path = rest.partition("/")
    host = host.rpartition("@")[2]
    rest = host + slash + path
    out = []
    for char in rest:
        if char in _QUOTED or not 0x20 < ord(char) < 0x7F:
            out.append("".join(f"%{b:02x}" for b in char.encode()))
        else:
            out.append(char)
    return "".join(out).replace("/", "_")


def dists_prefix(uri: str, suite: str) -> str:
    return list_name(f"{uri.rstrip('/')}/dists/{suite}/")


def packages_keys(lines: Iterable[str]) -> Iterator[Key]:
    """(Package, Version, Architecture) of each paragraph of a Packages file."""
    name = version = arch = ""
    for line in lines:
        if not line.strip():
            if name and version and arch:
                yield name, version, arch
            name = version = arch = ""
        elif line.startswith("Package:"):
            name = line[8:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
        elif line.startswith("Architecture:"):
            arch = line[13:].strip()
    if name and version and arch:
        yield name, version, arch


def _release(lists: Path, prefix: str) -> tuple[str | None, str | None]:
    """Origin and Label of the source's release file in the lists (livestrap.release)."""
    for name in ("InRelease", "Release"):
        path = lists / f"{prefix}{name}"
        if path.is_file():
            fields = parse_release(path.read_bytes())
            return fields.origin, fields.label
    return None, None


def archive_index(
    lists: Path, sources: list[AptSource], priorities: dict[str, int]
) -> dict[Key, Archive]:
    """Every package version the sources' lists hold, with the archive apt took it from."""
    index: dict[Key, Archive] = {}
    ranked = sorted(sources, key=lambda s: -priorities.get(s.name, DEFAULT_PRIORITY))
    for source in ranked:  # sorted() is stable: equal priorities keep the sources' order
        for suite in source.suites:
            prefix = dists_prefix(source.uri, suite)
            origin, label = _release(lists, prefix)
            for component in source.components:
                archive = Archive(source.uri, suite, component, origin, label)
                for arch in ARCHES:
                    path = lists / f"{prefix}{list_name(component)}_binary-{arch}_Packages"
                    if not path.is_file():
                        continue
                    with path.open(errors="replace") as fh:
                        for key in packages_keys(fh):
                            index.setdefault(key, archive)
    return index


def spec_archives(rootfs: Path, spec: ResolvedSpec) -> dict[Key, Archive]:
    """archive_index of the lists in a root built from `spec`'s sources and pins."""
    sources = spec_sources(spec, lambda p: Path(p).read_bytes())
    priorities = {repo.name: repo.priority for repo in spec.repos}
    return archive_index(rootfs / LISTS, sources, priorities)


def installed_packages(lines: list[str], index: dict[Key, Archive]) -> list[Package]:
    """dpkg-query's lines (DPKG_QUERY_FORMAT) of installed packages, with their archives."""
    packages = []
    for line in lines:
        fields = line.split("\t")
        if len(fields) != 6 or not fields[5].startswith("ii"):
            continue
        name, version, arch, source, source_version, _ = fields
        archive = index.get((name, version, arch))
        packages.append(Package(name, version, arch, source or name, source_version or version,
                                archive))  # fmt: skip
    return packages
