"""Build a binary .deb from a directory tree with dpkg-deb (reproducibly)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from livestrap.run import LineSink, run

SOURCE_DATE_EPOCH = 1700000000


@dataclass(frozen=True)
class DebControl:
    package: str
    version: str
    description: str
    architecture: str = "all"
    maintainer: str = "livestrap <livestrap@localhost>"
    depends: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


def render_control(c: DebControl) -> str:
    """The DEBIAN/control text (pure)."""
    lines = [
        f"Package: {c.package}",
        f"Version: {c.version}",
        f"Architecture: {c.architecture}",
        f"Maintainer: {c.maintainer}",
    ]
    if c.depends:
        lines.append(f"Depends: {', '.join(c.depends)}")
    lines += [f"{k}: {v}" for k, v in c.extra.items()]
    summary, _, body = c.description.partition("\n")
    lines.append(f"Description: {summary}")
    lines += [f" {line}" if line.strip() else " ." for line in body.splitlines()]
    return "\n".join(lines) + "\n"


def deb_filename(c: DebControl) -> str:
    return f"{c.package}_{c.version.split(':')[-1]}_{c.architecture}.deb"


def normalize_tree(root: Path, epoch: int = SOURCE_DATE_EPOCH) -> None:
    """Fixed modes and times, so the same input always packs to the same bytes."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_symlink():
            os.utime(path, (epoch, epoch), follow_symlinks=False)
            continue
        executable = path.is_dir() or path.stat().st_mode & 0o111
        path.chmod(0o755 if executable else 0o644)
        os.utime(path, (epoch, epoch))
    root.chmod(0o755)
    os.utime(root, (epoch, epoch))


def build_deb(
    tree: Path, control: DebControl, out_dir: Path, *, log: LineSink, stage: str = "package"
) -> Path:
    """Pack `tree` (the files as installed) with a generated DEBIAN/control into out_dir."""
    with tempfile.TemporaryDirectory(prefix="livestrap-deb-") as tmp:
        root = Path(tmp) / "root"
        shutil.copytree(tree, root, symlinks=True)
        return pack_tree(root, control, out_dir, log=log, stage=stage)


def md5sums(root: Path) -> str:
    """DEBIAN/md5sums: one `digest  path` line per regular file, sorted (dpkg --verify)."""
    lines = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == "DEBIAN" or path.is_symlink() or not path.is_file():
            continue
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        lines.append(f"{digest}  {rel.as_posix()}\n")
    return "".join(lines)


def pack_tree(
    root: Path,
    control: DebControl,
    out_dir: Path,
    *,
    log: LineSink,
    stage: str = "package",
    control_files: Mapping[str, str] | None = None,
) -> Path:
    """Pack `root` in place (it becomes the package tree): DEBIAN/control, the extra control
    files (maintainer scripts, conffiles; md5sums when asked by name with an empty text)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    debian = root / "DEBIAN"
    debian.mkdir(exist_ok=True)
    (debian / "control").write_text(render_control(control))
    normalize_tree(root)
    for name, text in (control_files or {}).items():
        path = debian / name
        path.write_text(md5sums(root) if name == "md5sums" and not text else text)
        path.chmod(0o755 if text.startswith("#!") else 0o644)
        os.utime(path, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH))
    dest = out_dir / deb_filename(control)
    run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(dest)],
        stage=stage,
        log=log,
        env={"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)},
    )
    return dest
