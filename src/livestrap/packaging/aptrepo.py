"""A signed APT repository on disk: pool + dists, indexed by apt-ftparchive, signed by gpg.

Layout: <root>/pool/<component>/*.deb, <root>/dists/<suite>/{Release,InRelease,Release.gpg},
<root>/dists/<suite>/<component>/binary-<arch>/Packages[.xz], and the public key beside
them (<root>/key.asc) for `signed-by`.
"""

from __future__ import annotations

import contextlib
import filecmp
import hashlib
import lzma
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from livestrap.run import LineSink, attempt, query, run

KEY_FILE = "key.asc"


@dataclass(frozen=True)
class RepoIdentity:
    suite: str
    component: str = "main"
    arch: str = "amd64"
    origin: str = "livestrap"
    label: str = "livestrap"


def gpg_argv(home: Path, *args: str) -> list[str]:
    return ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", *args]


def ensure_signing_key(home: Path, uid: str, *, log: LineSink) -> str:
    """Return the fingerprint of the signing key in `home`, making one on first use."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    fpr = _secret_fingerprint(home, log)
    if fpr:
        return fpr
    run(
        gpg_argv(home, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"),
        stage="repo",
        log=log,
    )
    fpr = _secret_fingerprint(home, log)
    if not fpr:
        raise RuntimeError(f"gpg made no key in {home}")
    return fpr


@contextlib.contextmanager
def gpg_session(home: Path) -> Iterator[None]:
    """gpg starts a gpg-agent daemon for its home dir; stop it when the work is done."""
    try:
        yield
    finally:
        attempt(["gpgconf", "--homedir", str(home), "--kill", "all"])


def _secret_fingerprint(home: Path, log: LineSink) -> str | None:
    lines = query(gpg_argv(home, "--with-colons", "--list-secret-keys"), stage="repo", log=log)
    for line in lines:
        if line.startswith("fpr:"):
            return line.split(":")[9]
    return None


def release_argv(identity: RepoIdentity, dists_suite: Path) -> list[str]:
    """apt-ftparchive release command line for one suite (pure)."""
    opt = "APT::FTPArchive::Release::"
    return [
        "apt-ftparchive",
        "-o", f"{opt}Origin={identity.origin}",
        "-o", f"{opt}Label={identity.label}",
        "-o", f"{opt}Suite={identity.suite}",
        "-o", f"{opt}Codename={identity.suite}",
        "-o", f"{opt}Architectures={identity.arch}",
        "-o", f"{opt}Components={identity.component}",
        "release", str(dists_suite),
    ]  # fmt: skip


def _already_indexed(debs: list[Path], pool: Path, suite_dir: Path, identity: RepoIdentity) -> bool:
    """Every .deb is in the pool byte for byte and in the signed index (a publish that died
    between copying and signing is done again)."""
    packages = suite_dir / identity.component / f"binary-{identity.arch}" / "Packages"
    if not (suite_dir / "InRelease").is_file() or not packages.is_file():
        return False
    index = packages.read_text(errors="replace")
    for deb in debs:
        held = pool / deb.name
        if not (held.is_file() and filecmp.cmp(deb, held, shallow=False)):
            return False
        if f"SHA256: {hashlib.sha256(deb.read_bytes()).hexdigest()}\n" not in index:
            return False
    return True


def publish(
    root: Path,
    debs: list[Path],
    identity: RepoIdentity,
    *,
    gnupg_home: Path,
    key_fpr: str,
    log: LineSink,
) -> Path:
    """Add `debs` to the pool, regenerate the indexes and sign them; returns the key file.

    Publishing packages the pool already holds byte for byte changes nothing: a new
    signature would change `InRelease`, and with it every build's fingerprint."""
    pool = root / "pool" / identity.component
    suite_dir = root / "dists" / identity.suite
    key = root / KEY_FILE
    if debs and _already_indexed(debs, pool, suite_dir, identity) and key.is_file():
        log(f"=== already published, unchanged: {', '.join(d.name for d in debs)}")
        return key
    pool.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        # one version per package: the newest publish replaces the older ones
        for old in pool.glob(f"{deb.name.split('_', 1)[0]}_*.deb"):
            old.unlink()
        shutil.copy2(deb, pool / deb.name)
    binary = suite_dir / identity.component / f"binary-{identity.arch}"
    binary.mkdir(parents=True, exist_ok=True)
    packages = query(
        ["apt-ftparchive", "packages", f"pool/{identity.component}"],
        stage="repo",
        log=log,
        cwd=root,
    )
    text = "\n".join(packages) + "\n"
    (binary / "Packages").write_text(text)
    (binary / "Packages.xz").write_bytes(lzma.compress(text.encode()))
    for name in ("Release", "InRelease", "Release.gpg"):
        (suite_dir / name).unlink(missing_ok=True)
    release = query(release_argv(identity, suite_dir), stage="repo", log=log)
    (suite_dir / "Release").write_text("\n".join(release) + "\n")
    sign = gpg_argv(gnupg_home, "--local-user", key_fpr, "--digest-algo", "SHA512")
    run([*sign, "--clearsign", "-o", str(suite_dir / "InRelease"), str(suite_dir / "Release")],
        stage="repo", log=log)  # fmt: skip
    run([*sign, "--detach-sign", "-o", str(suite_dir / "Release.gpg"), str(suite_dir / "Release")],
        stage="repo", log=log)  # fmt: skip
    lines = query(gpg_argv(gnupg_home, "--armor", "--export", key_fpr), stage="repo", log=log)
    key.write_text("\n".join(lines) + "\n")
    return key
