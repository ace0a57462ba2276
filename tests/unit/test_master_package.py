"""The master package's pure renderers: units, default config, control data, scripts."""

from __future__ import annotations

import subprocess
import tomllib

import pytest

from livestrap.packaging import master_control as mc
from livestrap.packaging import master_units as mu
from livestrap.packaging.deb import render_control

pytestmark = pytest.mark.unit

MASTER_UNIT = """\
[Unit]
Description=livestrap master (API, boot files, discovery)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=livestrap
Group=livestrap
ExecStart=/usr/bin/livestrap serve --config /etc/livestrap/livestrap.toml
Restart=on-failure
RestartSec=5
CapabilityBoundingSet=
UMask=0027
ProtectSystem=strict
ReadWritePaths=/var/lib/livestrap
PrivateTmp=yes
PrivateDevices=yes
ProtectHome=yes
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources

[Install]
WantedBy=multi-user.target
"""

BUILDER_UNIT = """\
[Unit]
Description=livestrap image builder (runs the builds queued through the master)
After=network-online.target livestrap-master.service
Wants=network-online.target

[Service]
Type=simple
ExecStart=/usr/bin/livestrap builder --config /etc/livestrap/livestrap.toml
Restart=on-failure
RestartSec=5
UMask=0027
KillMode=mixed
TimeoutStopSec=90
ProtectHome=read-only
PrivateTmp=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectClock=yes
RestrictRealtime=yes
LockPersonality=yes

[Install]
WantedBy=multi-user.target
"""

LOW_PORT = "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"


def test_master_unit_is_unprivileged_and_sandboxed() -> None:
    assert mu.render_master_unit() == MASTER_UNIT


def test_a_port_below_1024_gets_only_net_bind_service() -> None:
    expected = MASTER_UNIT.replace("CapabilityBoundingSet=\n", LOW_PORT)
    assert mu.render_master_unit(port=80) == expected
    assert mu.render_master_unit(port=1024) == MASTER_UNIT
    assert mu.render_low_port_dropin() == "[Service]\n" + LOW_PORT


def test_builder_unit_is_root_and_stops_after_its_own_cleanup() -> None:
    assert mu.render_builder_unit() == BUILDER_UNIT
    assert mu.BUILDER_STOP_S > 60  # the builder's STOP_WAIT_S


def test_default_config_is_the_packaged_split() -> None:
    text = mu.render_default_config()
    assert tomllib.loads(text) == {
        "role": "api", "data_dir": "/var/lib/livestrap", "host": "127.0.0.1", "port": 8080,
    }  # fmt: skip
    assert tomllib.loads(mu.render_default_config(port=9000))["port"] == 9000
    for commented in ("public_url", "database_url", "log_level", "access_log", "trusted_proxies"):
        assert f"\n# {commented} = " in text


def test_control_fields() -> None:
    text = render_control(mc.master_control("1.2.3", 4096))
    head = text.split("Description:")[0]
    assert head == (
        "Package: livestrap\nVersion: 1.2.3\nArchitecture: amd64\n"
        "Maintainer: livestrap maintainers <maintainers@example.org>\n"
        "Depends: python3.11, libc6 (>= 2.28), adduser, mmdebstrap, squashfs-tools, gnupg, "
        "apt-utils, dpkg-dev, debian-archive-keyring, initramfs-tools-core, zstd, xz-utils, "
        "lz4, kmod, mount, ca-certificates\n"
        "Recommends: qemu-system-x86, ovmf, ipxe, socat, dnsmasq-base\n"
        "Section: admin\nPriority: optional\nInstalled-Size: 4096\n"
    )
    description = text.split("Description: ")[1]
    assert all(len(line) <= 80 for line in description.splitlines())  # lintian's limit


@pytest.mark.parametrize("render", [mc.render_postinst, mc.render_prerm, mc.render_postrm])
def test_maintainer_scripts_are_valid_sh_with_set_e(render: object) -> None:
    assert callable(render)
    script = render()
    assert script.startswith("#!/bin/sh\nset -e\n") and script.endswith("exit 0\n")
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)


def test_postinst_makes_the_user_the_data_dir_and_starts_only_under_systemd() -> None:
    script = mc.render_postinst()
    assert "adduser --quiet --system --group --no-create-home --home /var/lib/livestrap" in script
    assert "dpkg-statoverride --update --add livestrap livestrap 0750 /var/lib/livestrap" in script
    assert "/opt/livestrap/bin/python3.11 -m compileall" in script
    for unit in mu.UNITS:
        assert f"deb-systemd-helper enable {unit}" in script
    guard = 'if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then\n'
    assert script.index(guard) < script.index("deb-systemd-invoke start")
    assert "systemctl start" not in script


def test_prerm_stops_both_units_and_drops_compiled_files() -> None:
    script = mc.render_prerm()
    assert "deb-systemd-invoke stop livestrap-builder.service livestrap-master.service" in script
    assert "-name __pycache__" in script


def test_purge_removes_data_only_when_asked() -> None:
    script = mc.render_postrm()
    asked = (
        '    if [ "${LIVESTRAP_PURGE_DATA:-}" = yes ]; then\n        rm -rf /var/lib/livestrap\n'
    )
    assert asked in script
    assert script.index("purge)") < script.index("rm -rf /var/lib/livestrap")
    assert "dpkg-statoverride --remove /var/lib/livestrap" in script


def test_changelog_and_wrapper() -> None:
    assert mc.render_changelog("0.1.0", 1700000000) == (
        "livestrap (0.1.0) unstable; urgency=medium\n\n"
        "  * Built with `make deb` from the livestrap source tree.\n\n"
        " -- livestrap maintainers <maintainers@example.org>  Tue, 14 Nov 2023 22:13:20 +0000\n"
    )
    assert mc.WRAPPER.endswith('exec /opt/livestrap/bin/python3.11 -m livestrap "$@"\n')
    assert mc.CONFFILES == "/etc/livestrap/livestrap.toml\n"
