"""Which paths a build spec may name: the master's secrets never, API specs only their folder.

A spec's paths (extra dirs, scripts, keys) are copied into an image that anyone on the
network can fetch, so a path that is, holds or sits in one of the master's secrets
(tokens, signing keys, database, images, temp trees) is refused whoever sends it, and so
is `/`. A spec that comes through the API is also confined to `<data-dir>/spec/`, and its
`file://` or `copy://` URLs to the folders an operator allowed (LIVESTRAP_FILE_MIRROR_ROOTS).
Paths are resolved (links followed, chains included) before they are checked, so a link
that leads out is refused; links *inside* a named folder are not the check's business:
the master copies them as links and never follows them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from livestrap.datadir import DataDir

LOCAL_SCHEMES = ("file", "copy")


@dataclass(frozen=True)
class PathRules:
    """data_dir: whose secrets to refuse (None: only `/`); confine: every path must be in it
    (API specs); file_roots: where file:// and copy:// may point (None: anywhere).
    only_named: confine and file_roots bind only the paths that *name* (as written) a place
    inside them; the others get the secret rules alone. The build worker's rules for a
    queued API spec: its own paths were stored resolved inside spec/ and must still
    resolve there, while the master's additions (its repo, host keyrings) lie outside."""

    data_dir: Path | None = None
    confine: Path | None = None
    file_roots: tuple[Path, ...] | None = None
    protected_files: tuple[Path, ...] = field(default_factory=tuple)  # e.g. a SQLite db elsewhere
    only_named: bool = False


def _inside(path: Path, top: Path) -> bool:
    return path == top or path.is_relative_to(top)


def _names(named: Path | None, top: Path) -> bool:
    """Whether `named` (as written, `..` folded, links not followed) lies in `top`."""
    if named is None:
        return True
    plain = Path(os.path.normpath(named))
    return _inside(plain, top) or _inside(plain, top.resolve())


def refusal(path: Path, rules: PathRules, named: Path | None = None) -> str | None:
    """Why `path` (absolute, symlinks resolved) may not be used, or None when it may;
    `named`: the path as written (for rules.only_named)."""
    if path == Path("/"):
        return "is the root directory /"
    if rules.data_dir is not None:
        reason = _secret(path, rules.data_dir.resolve(), rules.protected_files)
        if reason:
            return reason
    if rules.confine is not None and (not rules.only_named or _names(named, rules.confine)):
        confine = rules.confine.resolve()
        if not _inside(path, confine):
            return f"{path} is outside {confine}, the only folder API specs may name"
    return None


def _secret(path: Path, data_dir: Path, extra_files: tuple[Path, ...]) -> str | None:
    if _inside(data_dir, path):
        return f"{path} is or contains the master's data dir {data_dir}"
    # the data dir's secrets and the trees an image must never take in: dirs are refused
    # with everything in them
    layout = DataDir(data_dir)
    for top in layout.secret_dirs():
        if _inside(path, top) or _inside(top, path):
            return f"{path} is, holds or sits in the master's {top.name}/ ({top})"
    for top in [*layout.secret_files(), *(p.resolve() for p in extra_files)]:
        if _inside(top, path):
            return f"{path} is or holds the master's {top.name} ({top})"
    return None


def check_path(path: Path, rules: PathRules) -> Path:
    """`path` (absolute) resolved when allowed, else ValueError saying why (the field is
    named by pydantic)."""
    resolved = path.resolve()
    reason = refusal(resolved, rules, named=path)
    if reason:
        raise ValueError(f"not allowed: {reason}")
    return resolved


def check_local_url(url: str, rules: PathRules) -> str:
    """A file:// or copy:// URL must name an allowed folder; other schemes pass unchanged."""
    parts = urlsplit(url)
    if parts.scheme not in LOCAL_SCHEMES:
        return url
    named = Path(unquote(parts.path))
    path = named.resolve()
    bound = rules.file_roots is not None and (
        not rules.only_named or any(_names(named, root) for root in rules.file_roots)
    )
    if bound and rules.file_roots is not None:
        roots = [r.resolve() for r in rules.file_roots]
        if not any(_inside(path, root) for root in roots):
            allowed = ", ".join(map(str, roots)) or "none (LIVESTRAP_FILE_MIRROR_ROOTS is empty)"
            raise ValueError(
                f"not allowed: {parts.scheme}:// path {path} is not under an allowed root "
                f"({allowed}); see LIVESTRAP_FILE_MIRROR_ROOTS"
            )
    reason = refusal(path, PathRules(rules.data_dir, None, None, rules.protected_files))
    if reason:
        raise ValueError(f"not allowed: {parts.scheme}:// {reason}")
    return url
