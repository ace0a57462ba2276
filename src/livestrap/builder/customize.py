"""Stage customize: extra files (build.overlay), root access, scripts, image hygiene.

Everything that can be done by writing files is done from the host; only operator
scripts run inside the chroot, in a private mount namespace with daemons disabled.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from livestrap.builder.overlay import copy_extra_dirs as copy_extra_dirs  # the stage's first step
from livestrap.builder.rootfs import private_ns
from livestrap.errors import BuildError
from livestrap.spec import BuildSpec

POLICY_RC_D = "#!/bin/sh\n# livestrap: no daemon may start inside the build chroot\nexit 101\n"


CHROOT_SCRIPT = (
    'set -e; R="$1"; shift; '
    'mount -t proc proc "$R/proc"; '
    'mount -t sysfs sysfs "$R/sys"; '
    'mount --rbind /dev "$R/dev"; '
    'exec chroot "$R" "$@"'
)

SSHD_DROPIN = (
    "# livestrap: keys only; host keys are made on first boot, never baked into the image\n"
    "PasswordAuthentication no\n"
    "KbdInteractiveAuthentication no\n"
    "PermitRootLogin prohibit-password\n"
)

SSH_KEYGEN_DROPIN = (
    "[Service]\n"
    "ExecStartPre=\n"
    "ExecStartPre=/usr/bin/ssh-keygen -A\n"
    "ExecStartPre=/usr/sbin/sshd -t\n"
)


def chroot_argv(rootfs: Path, command: list[str]) -> list[str]:
    """Run `command` chrooted in `rootfs` with /proc, /sys, /dev in a private namespace."""
    return private_ns(["/bin/sh", "-c", CHROOT_SCRIPT, "livestrap-chroot", str(rootfs), *command])


def set_root_shadow(shadow_text: str, password_hash: str | None) -> str:
    """Return /etc/shadow with root's hash set, or locked ('!*') when there is none."""
    lines = shadow_text.splitlines()
    for i, line in enumerate(lines):
        fields = line.split(":")
        if fields and fields[0] == "root":
            fields[1] = password_hash or "!*"
            lines[i] = ":".join(fields)
            break
    else:
        raise BuildError("customize", "no root entry in /etc/shadow")
    return "\n".join(lines) + "\n"


def write_root_access(rootfs: Path, spec: BuildSpec) -> None:
    shadow = rootfs / "etc/shadow"
    shadow.write_text(set_root_shadow(shadow.read_text(), spec.root_password_hash))
    os.chmod(shadow, 0o640)
    if spec.ssh_authorized_keys:
        ssh_dir = rootfs / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys = ssh_dir / "authorized_keys"
        keys.write_text("".join(f"{k}\n" for k in spec.ssh_authorized_keys))
        os.chmod(keys, 0o600)
    sshd_d = rootfs / "etc/ssh/sshd_config.d"
    if (rootfs / "usr/sbin/sshd").exists():
        sshd_d.mkdir(parents=True, exist_ok=True)
        (sshd_d / "livestrap.conf").write_text(SSHD_DROPIN)
        unit_d = rootfs / "etc/systemd/system/ssh.service.d"
        unit_d.mkdir(parents=True, exist_ok=True)
        (unit_d / "livestrap-hostkeys.conf").write_text(SSH_KEYGEN_DROPIN)
        for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
            key.unlink()


# Units a discovery node, booted into RAM and never kept, has no use for: maintenance of
# a persistent system (apt-daily would even fetch indexes from every node), ext4 snapshot
# clean-up, gettys on tty2-6. They ran beside the agent's first report and slowed it.
# tty1, the serial console and ssh are left alone.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "getty-static.service",
)
UNIT_DIRS = ("usr/lib/systemd/system", "lib/systemd/system")


def mask_units(rootfs: Path, units: tuple[str, ...] = MASKED_UNITS) -> list[str]:
    """Mask the units the image has, as `systemctl mask` would; returns those masked.
    A unit the operator's extra dirs put in /etc/systemd/system is theirs: left alone."""
    etc = rootfs / "etc/systemd/system"
    masked = []
    for unit in units:
        link = etc / unit
        if link.is_symlink() or link.exists():
            continue
        if not any((rootfs / d / unit).exists() for d in UNIT_DIRS):
            continue
        etc.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/dev/null")
        masked.append(unit)
    return masked


def run_scripts(
    rootfs: Path, scripts: list[Path], run_in_chroot: Callable[[list[str]], object]
) -> None:
    """Copy each operator script into the image, run it there, then remove it."""
    if not scripts:
        return
    policy = rootfs / "usr/sbin/policy-rc.d"
    had_policy = policy.exists()
    if not had_policy:
        policy.write_text(POLICY_RC_D)
        policy.chmod(0o755)
    try:
        for i, script in enumerate(scripts):
            inside = Path("/tmp") / f"livestrap-script-{i}-{script.name}"
            target = rootfs / inside.relative_to("/")
            shutil.copy2(script, target)
            target.chmod(0o755)
            try:
                run_in_chroot([str(inside)])
            finally:
                target.unlink(missing_ok=True)
    finally:
        if not had_policy:
            policy.unlink(missing_ok=True)


def _empty_dir(path: Path) -> None:
    if not path.is_dir():
        return
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


# Files each build writes anew (logs, caches, seeds): they differ between two builds of
# the same inputs, and a node makes its own at boot. The package lists are emptied
# separately, after everything that reads them.
BUILD_STATE = (
    "var/cache/apt/*.bin",
    "var/log/*.log",
    "var/cache/debconf/*-old",
    "var/cache/ldconfig/aux-cache",
    "var/lib/systemd/random-seed",
)


def clean_image(rootfs: Path) -> None:
    """Per-machine identity and build leftovers must not ship in the image."""
    (rootfs / "etc/machine-id").write_text("")
    # mmdebstrap copies the build host's name in; "localhost" lets DHCP name the node
    (rootfs / "etc/hostname").write_text("localhost\n")
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    resolv = rootfs / "etc/resolv.conf"
    if resolv.exists() or resolv.is_symlink():
        resolv.unlink()
    for path in ("var/lib/apt/lists", "var/cache/apt/archives", "tmp", "var/tmp", "var/log/apt"):
        _empty_dir(rootfs / path)
    for pattern in BUILD_STATE:
        for entry in rootfs.glob(pattern):
            entry.unlink()
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
