"""`make deb`: the master as a Debian package with its Python dependencies in a private venv.

The venv is made by Debian's own /usr/bin/python3.11 (the one `Depends: python3.11` installs,
not a pyenv or a dev venv), filled from requirements-runtime.lock with every hash checked,
plus livestrap as a built wheel. Nothing is byte-compiled in the package (postinst does it),
every shared object is stripped, and nothing lands in /var/lib/livestrap, so an upgrade
cannot touch the database, images, tokens or keys.

    python -m livestrap.packaging.master_deb [--out dist] [--version V] [--source DIR]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
from pathlib import Path

from livestrap import __version__
from livestrap.packaging import master_control as mc
from livestrap.packaging import master_units as mu
from livestrap.packaging.deb import SOURCE_DATE_EPOCH, pack_tree
from livestrap.run import LineSink, run

SYSTEM_PYTHON = "/usr/bin/python3.11"
LOCK_FILE = "requirements-runtime.lock"
ELF_MAGIC = b"\x7fELF"
KEEP_IN_BIN = {"python", "python3", "python3.11"}  # symlinks to /usr/bin/python3.11


def _pip(venv_python: Path, *args: str, log: LineSink) -> None:
    """This process's pip, installing into the target venv (which has no pip of its own)."""
    run(
        [sys.executable, "-m", "pip", "--python", str(venv_python), "install", "-q",
         "--no-compile", "--no-deps", "--disable-pip-version-check", *args],
        stage="deb-venv", log=log,
    )  # fmt: skip


def make_venv(source: Path, venv: Path, wheel_dir: Path, *, log: LineSink) -> None:
    run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(venv)], stage="deb-venv", log=log)
    python = venv / "bin/python3.11"
    _pip(python, "--require-hashes", "-r", str(source / LOCK_FILE), log=log)
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheel_dir),
         str(source)],
        stage="deb-wheel", log=log,
    )  # fmt: skip
    (wheel,) = wheel_dir.glob("livestrap-*.whl")
    _pip(python, str(wheel), log=log)


def tidy_venv(venv: Path, staged_at: Path) -> None:
    """Drop what carries the staging path or is rebuilt on the target: console scripts
    (/usr/bin/livestrap replaces them), activate*, caches, pip's direct_url records."""
    for entry in (venv / "bin").iterdir():
        if entry.name not in KEEP_IN_BIN:
            entry.unlink()
    for junk in [*venv.rglob("__pycache__"), *venv.rglob("*.pyc")]:
        if junk.is_dir():
            shutil.rmtree(junk)
        elif junk.exists():
            junk.unlink()
    for path in (venv / "lib").rglob("*"):  # modules and shared objects: never executed
        if path.is_file() and not path.is_symlink():
            path.chmod(0o644)
    for record in venv.glob("lib/python3.11/site-packages/*.dist-info/direct_url.json"):
        record.unlink()
    cfg = venv / "pyvenv.cfg"
    lines = cfg.read_text().splitlines()
    cfg.write_text("".join(f"{line}\n" for line in lines if not line.startswith("command")))
    assert str(staged_at) not in cfg.read_text()


def strip_objects(root: Path, *, log: LineSink) -> int:
    """strip --strip-unneeded every ELF shared object; returns how many."""
    objects = []
    for path in sorted(root.rglob("*.so*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == ELF_MAGIC:
                    objects.append(str(path))
    for start in range(0, len(objects), 200):
        run(["strip", "--strip-unneeded", *objects[start : start + 200]], stage="deb-strip",
            log=log)  # fmt: skip
    return len(objects)


def write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    path.chmod(mode)


def add_package_files(root: Path, version: str) -> None:
    """The wrapper, units, default config and doc files, as installed."""
    write(root / "usr/bin/livestrap", mc.WRAPPER, 0o755)
    units = root / "lib/systemd/system"
    write(units / mu.MASTER_UNIT, mu.render_master_unit())
    write(units / mu.BUILDER_UNIT, mu.render_builder_unit())
    write(root / str(mu.CONFIG_PATH).lstrip("/"), mu.render_default_config())
    doc = root / "usr/share/doc" / mc.PACKAGE
    write(doc / "copyright", mc.COPYRIGHT)
    changelog = mc.render_changelog(version, SOURCE_DATE_EPOCH).encode()
    write(doc / "changelog.gz", gzip.compress(changelog, compresslevel=9, mtime=0))
    write(root / "usr/share/lintian/overrides" / mc.PACKAGE, mc.LINTIAN_OVERRIDES)


def installed_kib(root: Path) -> int:
    """Installed-Size as dpkg-gencontrol counts it: 1 KiB per dir and link, files rounded up."""
    total = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += -(-path.stat().st_size // 1024)
        else:
            total += 1
    return total


def build_master_deb(source: Path, out_dir: Path, version: str, *, log: LineSink) -> Path:
    with tempfile.TemporaryDirectory(prefix="livestrap-master-deb-") as tmp:
        root = Path(tmp) / "root"
        venv = root / mc.VENV.lstrip("/")
        make_venv(source, venv, Path(tmp) / "wheel", log=log)
        tidy_venv(venv, root)
        log(f"stripped {strip_objects(venv, log=log)} shared objects")
        add_package_files(root, version)
        control = mc.master_control(version, installed_kib(root))
        scripts = {
            "postinst": mc.render_postinst(),
            "prerm": mc.render_prerm(),
            "postrm": mc.render_postrm(),
            "conffiles": mc.CONFFILES,
            "md5sums": "",
        }
        return pack_tree(root, control, out_dir, log=log, stage="deb", control_files=scripts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the livestrap master .deb")
    parser.add_argument("--out", type=Path, default=Path("dist"))
    parser.add_argument("--version", default=__version__)
    parser.add_argument("--source", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    deb = build_master_deb(args.source.resolve(), args.out, args.version, log=print)
    print(deb)


if __name__ == "__main__":
    main()
