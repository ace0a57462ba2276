"""Has anything changed since an image was built? The spec, the builder, or upstream.

Upstream state is each source's signed `InRelease` (it lists the hash of every index, so
any new package version changes it). Fetching those few files takes about a second; when
the fingerprint matches a stored image, rebuilding would only reproduce it.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from livestrap import __version__
from livestrap.apt import AptSource, release_url
from livestrap.spec import BuildSpec
from livestrap.specfields import HostPath, host_inputs, unmarked_paths

Fetch = Callable[[str], bytes]
TIMEOUT_S = 15
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/livestrap
# Modules outside builder/ whose code decides what a build produces: the spec's rules and
# defaults (spec, specfields, kernelopts, resolve), the APT sources and pins the image
# gets (apt, release), how an overlay is copied (fdpath). Hashed with builder/*.py.
DECIDING_MODULES = (
    "apt.py",
    "drivers.py",  # the driver coverage metadata.yaml records: its alias parsing
    "fdpath.py",
    "kernelopts.py",
    "modinfo.py",  # ... and the firmware names it reads from each module
    "release.py",
    "resolve.py",
    "spec.py",
    "specfields.py",
)


def fetch_url(url: str) -> bytes:
    """GET a URL (http, https or file); errors raise OSError."""
    parts = urlsplit(url)
    if parts.scheme in ("file", "copy"):
        with open(parts.path, "rb") as fh:
            return fh.read()
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
        data: bytes = resp.read()
        return data


def fetch_releases(sources: list[AptSource], fetch: Fetch = fetch_url) -> dict[str, bytes] | None:
    """Every source's InRelease, by URL, or None when any cannot be fetched. The bytes
    serve the fingerprint (their hash), the pins (livestrap.release) and the build date."""
    releases = {}
    for source in sources:
        for suite in source.suites:
            url = release_url(source.uri, suite)
            try:
                releases[url] = fetch(url)
            except (OSError, urllib.error.URLError):
                return None
    return releases


def upstream_state(
    sources: list[AptSource],
    fetch: Fetch = fetch_url,
    releases: dict[str, bytes] | None = None,
) -> dict[str, str] | None:
    """sha256 of every source's InRelease (fetched unless `releases` holds them), or None
    when any cannot be fetched."""
    if releases is None:
        releases = fetch_releases(sources, fetch)
    return None if releases is None else release_hashes(releases)


def release_hashes(releases: dict[str, bytes]) -> dict[str, str]:
    """The upstream state the inputs hash covers: sha256 of each fetched InRelease."""
    return {url: hashlib.sha256(data).hexdigest() for url, data in releases.items()}


def builder_files() -> list[Path]:
    """The code a build's fingerprint covers: builder/*.py and DECIDING_MODULES."""
    own = sorted((PACKAGE_DIR / "builder").glob("*.py"))
    return [*own, *(PACKAGE_DIR / name for name in DECIDING_MODULES)]


def builder_sha256() -> str:
    """The build code itself: an edited stage (a new hook, a masked unit) must not reuse
    an image the old code made, even though the version number did not change."""
    digest = hashlib.sha256(__version__.encode())
    for py in builder_files():
        name = py.relative_to(PACKAGE_DIR).as_posix()
        digest.update(name.encode() + b"\0" + py.read_bytes() + b"\0")
    return digest.hexdigest()


def inputs_sha256(spec: BuildSpec, upstream: dict[str, str]) -> str:
    """One hash over everything that decides what a build produces."""
    blob = json.dumps(
        {
            "builder": builder_sha256(),
            "spec": spec.sha256(),
            "files": local_inputs(spec),
            "upstream": upstream,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def local_inputs(spec: BuildSpec) -> dict[str, str]:
    """sha256 of every file the spec brings in, by path: every field marked as naming a
    host file or folder (livestrap.specfields), found by walking the spec, not listed.
    TypeError for a spec type with a Path field carrying no mark: it would be missed."""
    unmarked = unmarked_paths(type(spec))
    if unmarked:
        raise TypeError(f"spec fields name paths without a HostPath mark: {', '.join(unmarked)}")
    files: dict[str, Path] = {}
    for item in host_inputs(spec):
        if not isinstance(item.mark, HostPath):
            continue
        path = Path(item.value)
        if item.mark.kind == "dir":
            files.update((str(p), p) for p in sorted(path.rglob("*")))
        else:
            files[str(path)] = path
    state = {}
    for name, path in sorted(files.items()):
        if path.is_symlink():
            state[name] = "link:" + str(path.readlink())
        elif path.is_file():
            mode = path.stat().st_mode & 0o7777
            state[name] = f"{mode:o}:" + hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():  # a folder's mode is copied into the image too (a 0700 .ssh)
            state[name] = f"dir:{path.stat().st_mode & 0o7777:o}"
    return state
