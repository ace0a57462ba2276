"""The master package's control data: fields, maintainer scripts, doc files (pure).

The scripts follow what dh_installsystemd generates (deb-systemd-helper for enablement,
deb-systemd-invoke for start/stop, only with a running systemd and no DPKG_ROOT), written
out by hand because the package is assembled with dpkg-deb, not debhelper.
"""

from __future__ import annotations

import email.utils

from livestrap.packaging.deb import DebControl
from livestrap.packaging.master_units import CONFIG_PATH, DATA_DIR, UNITS, USER

PACKAGE = "livestrap"
VENV = "/opt/livestrap"
PYTHON = f"{VENV}/bin/python3.11"
MAINTAINER = "livestrap maintainers <maintainers@example.org>"
PURGE_DATA_VAR = "LIVESTRAP_PURGE_DATA"

# What the builder runs (mmdebstrap, mksquashfs, gpg, apt-ftparchive, dpkg-deb, lsinitramfs,
# mount (unshare is in util-linux, which is Essential), the compressors) and what the
# package's own scripts need.
DEPENDS = (
    "python3.11",
    "libc6 (>= 2.28)",
    "adduser",
    "mmdebstrap",
    "squashfs-tools",
    "gnupg",
    "apt-utils",
    "dpkg-dev",
    "debian-archive-keyring",
    "initramfs-tools-core",
    "zstd",
    "xz-utils",
    "lz4",
    "kmod",
    "mount",
    "ca-certificates",
)
# Virtual nodes and the netboot helpers: useful, never required on a real master.
RECOMMENDS = ("qemu-system-x86", "ovmf", "ipxe", "socat", "dnsmasq-base")

DESCRIPTION = """\
build, store and serve live discovery images for bare-metal fleets
livestrap builds Debian live images with mmdebstrap, keeps them in a store,
and serves them to nodes that network-boot, collecting what each node reports.
.
This package runs the master as two systemd services: livestrap-master (the
API, boot files and discovery, as the unprivileged livestrap user) and
livestrap-builder (the only root process, running the queued builds).
The application and its Python dependencies live in a private venv
in /opt/livestrap."""


def master_control(version: str, installed_kib: int) -> DebControl:
    return DebControl(
        package=PACKAGE,
        version=version,
        description=DESCRIPTION,
        architecture="amd64",
        maintainer=MAINTAINER,
        depends=DEPENDS,
        extra={
            "Recommends": ", ".join(RECOMMENDS),
            "Section": "admin",
            "Priority": "optional",
            "Installed-Size": str(installed_kib),
        },
    )


def _each_unit(template: str) -> str:
    return "".join(template.format(unit=unit) for unit in UNITS)


_SYSTEMD_RUNNING = '[ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]'


def render_postinst() -> str:
    """User, data dir (livestrap:livestrap 0750 via dpkg-statoverride, so an admin's own
    override wins), byte-compiled venv, enabled and (re)started units."""
    enable = _each_unit(
        "    deb-systemd-helper unmask {unit} >/dev/null || true\n"
        "    if deb-systemd-helper --quiet was-enabled {unit}; then\n"
        "        deb-systemd-helper enable {unit} >/dev/null || true\n"
        "    else\n"
        "        deb-systemd-helper update-state {unit} >/dev/null || true\n"
        "    fi\n"
    )
    return f"""#!/bin/sh
set -e
case "$1" in
configure)
    adduser --quiet --system --group --no-create-home --home {DATA_DIR} \\
        --gecos "livestrap master" {USER}
    mkdir -p {DATA_DIR}
    if ! dpkg-statoverride --list {DATA_DIR} >/dev/null; then
        dpkg-statoverride --update --add {USER} {USER} 0750 {DATA_DIR}
    fi
    # no .pyc ships in the package: compile once here (prerm removes them again)
    {PYTHON} -m compileall -q -j 0 {VENV}/lib >/dev/null || true
    ;;
esac
case "$1" in
configure|abort-upgrade|abort-deconfigure|abort-remove)
{enable}    if {_SYSTEMD_RUNNING}; then
        systemctl --system daemon-reload >/dev/null || true
        deb-systemd-invoke start {" ".join(UNITS)} >/dev/null || true
    fi
    ;;
esac
exit 0
"""


def render_prerm() -> str:
    """Stop both units before dpkg swaps the venv under them (also on upgrade: a running
    Python importing half-replaced modules fails in odd ways); drop the compiled files."""
    return f"""#!/bin/sh
set -e
case "$1" in
remove|upgrade|deconfigure|failed-upgrade)
    if {_SYSTEMD_RUNNING}; then
        deb-systemd-invoke stop {" ".join(reversed(UNITS))} >/dev/null || true
    fi
    find {VENV} -name __pycache__ -type d -prune -exec rm -rf {{}} + 2>/dev/null || true
    ;;
esac
exit 0
"""


def render_postrm() -> str:
    """Purge forgets the units and the statoverride; it deletes the data dir (database,
    images, tokens, keys) only when LIVESTRAP_PURGE_DATA=yes is in the environment."""
    forget = _each_unit(
        "        deb-systemd-helper purge {unit} >/dev/null || true\n"
        "        deb-systemd-helper unmask {unit} >/dev/null || true\n"
    )
    mask = _each_unit("        deb-systemd-helper mask {unit} >/dev/null || true\n")
    return f"""#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
case "$1" in
remove)
    if command -v deb-systemd-helper >/dev/null; then
{mask}    fi
    ;;
purge)
    if command -v deb-systemd-helper >/dev/null; then
{forget}    fi
    if dpkg-statoverride --list {DATA_DIR} >/dev/null; then
        dpkg-statoverride --remove {DATA_DIR}
    fi
    if [ "${{{PURGE_DATA_VAR}:-}}" = yes ]; then
        rm -rf {DATA_DIR}
    elif [ -d {DATA_DIR} ]; then
        echo "livestrap: kept {DATA_DIR} (database, images, tokens, keys);" \\
            "{PURGE_DATA_VAR}=yes apt purge livestrap removes it" >&2
    fi
    rmdir /etc/livestrap 2>/dev/null || true
    ;;
esac
exit 0
"""


WRAPPER = f"""#!/bin/sh
# the livestrap command from the package's private venv
exec {PYTHON} -m livestrap "$@"
"""


def render_changelog(version: str, epoch: int) -> str:
    """A one-entry Debian changelog (native package): the version and the build date."""
    date = email.utils.formatdate(epoch, usegmt=True).replace("GMT", "+0000")
    return (
        f"{PACKAGE} ({version}) unstable; urgency=medium\n\n"
        "  * Built with `make deb` from the livestrap source tree.\n\n"
        f" -- {MAINTAINER}  {date}\n"
    )


COPYRIGHT = f"""\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: livestrap
Comment: {VENV} holds the Python packages pinned by requirements-runtime.lock,
 each under its own license, which its *.dist-info directory in
 {VENV}/lib/python3.11/site-packages carries.

Files: *
Copyright: 2024-2026 the livestrap authors
License: other
 See the livestrap source tree this package was built from.
"""

CONFFILES = f"{CONFIG_PATH}\n"

# Each line says why: lintian's defaults assume a Debian-built, FHS-only Python package.
LINTIAN_OVERRIDES = f"""\
# the application and its pinned dependencies are one private venv, as dh-virtualenv does
{PACKAGE}: dir-or-file-in-opt [opt/livestrap/*]
# manylinux wheels bundle their own copies of libraries (auditwheel)
{PACKAGE}: embedded-library *
# modules of the wheels keep their upstream shebang lines; nothing runs them as scripts
{PACKAGE}: unusual-interpreter python [opt/livestrap/lib/*]
{PACKAGE}: script-not-executable [opt/livestrap/lib/*]
# operators read the README and `livestrap --help`; no man page yet
{PACKAGE}: no-manual-page [usr/bin/livestrap]
"""
