"""Build a binary .deb from a directory tree with dpkg-deb (reproducibly)."""

from __future__ import annotations

import os
import shutil
import tempfile
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
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="livestrap-deb-") as tmp:
        root = Path(tmp) / "root"
        shutil.copytree(tree, root, symlinks=True)
        (root / "DEBIAN").mkdir(exist_ok=True)
        (root / "DEBIAN/control").write_text(render_control(control))
        normalize_tree(root)
        dest = out_dir / deb_filename(control)
        run(
            ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(dest)],
            stage=stage,
            log=log,
            env={"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)},
        )
    return dest
