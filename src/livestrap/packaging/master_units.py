"""The master package's systemd units and default config (pure renderers).

Two units split the privileges: livestrap-master runs the network-facing API as the
unprivileged `livestrap` user under systemd's sandboxing; livestrap-builder is the only
root process (mmdebstrap, mounts, mknod in chroots) and faces no network.
"""

from __future__ import annotations

from pathlib import PurePosixPath

USER = "livestrap"
CONFIG_PATH = PurePosixPath("/etc/livestrap/livestrap.toml")
DATA_DIR = PurePosixPath("/var/lib/livestrap")
MASTER_UNIT = "livestrap-master.service"
BUILDER_UNIT = "livestrap-builder.service"
UNITS = (MASTER_UNIT, BUILDER_UNIT)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
PRIVILEGED_PORTS = 1024
# Above the builder's own STOP_WAIT_S (60 s): a stop lets it interrupt the build and
# unmount its chroots before systemd kills what is left.
BUILDER_STOP_S = 90

# Scored 1.2 ("OK") by `systemd-analyze security --offline=yes`. Left out on purpose:
# MemoryDenyWriteExecute (libffi closures, ctypes), ProcSubset=pid (/proc/meminfo,
# /proc/cpuinfo readers) and PrivateUsers (user namespaces, which a container host may refuse).
_MASTER_HARDENING = """\
UMask=0027
ProtectSystem=strict
ReadWritePaths={data_dir}
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
"""


def capability_lines(port: int) -> str:
    """No capability at all, unless the API binds a privileged port: then only that one."""
    if port < PRIVILEGED_PORTS:
        return (
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"
        )
    return "CapabilityBoundingSet=\n"


def render_master_unit(port: int = DEFAULT_PORT) -> str:
    """livestrap-master.service: the API, boot files and discovery, never root."""
    return (
        "[Unit]\n"
        "Description=livestrap master (API, boot files, discovery)\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"User={USER}\n"
        f"Group={USER}\n"
        f"ExecStart=/usr/bin/livestrap serve --config {CONFIG_PATH}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        + capability_lines(port)
        + _MASTER_HARDENING.format(data_dir=DATA_DIR)
        + "\n[Install]\nWantedBy=multi-user.target\n"
    )


def render_low_port_dropin() -> str:
    """A drop-in for a master that listens below 1024 (port = 80 in the config)."""
    return "[Service]\n" + capability_lines(0)


def render_builder_unit() -> str:
    """livestrap-builder.service: runs the queued builds as root. No namespace or device
    restrictions: it unshares mounts, mounts /proc and /dev in chroots and makes nodes."""
    return (
        "[Unit]\n"
        "Description=livestrap image builder (runs the builds queued through the master)\n"
        f"After=network-online.target {MASTER_UNIT}\n"
        "Wants=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart=/usr/bin/livestrap builder --config {CONFIG_PATH}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "UMask=0027\n"
        "KillMode=mixed\n"
        f"TimeoutStopSec={BUILDER_STOP_S}\n"
        "ProtectHome=read-only\n"
        "PrivateTmp=yes\n"
        "ProtectKernelModules=yes\n"
        "ProtectKernelLogs=yes\n"
        "ProtectClock=yes\n"
        "RestrictRealtime=yes\n"
        "LockPersonality=yes\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def render_default_config(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """/etc/livestrap/livestrap.toml as the package ships it (a conffile: dpkg keeps an
    operator's edits over upgrades)."""
    return f"""\
# livestrap master configuration (TOML; keys are the settings' names).
# Precedence: command-line flags > LIVESTRAP_<KEY> environment variables > this file > defaults.
# `livestrap config show --config {CONFIG_PATH}` prints every effective value and its source.

# "api": livestrap-master.service serves the API and never builds;
# livestrap-builder.service (root) runs the queued builds.
role = "api"

# Database, images, tokens and keys. Upgrades keep it; `apt purge` keeps it too
# unless LIVESTRAP_PURGE_DATA=yes is set.
data_dir = "{DATA_DIR}"

# Where the API, boot files and discovery listen. Keep 127.0.0.1 behind nginx; a port
# below 1024 also needs the drop-in in the README (CAP_NET_BIND_SERVICE).
host = "{host}"
port = {port}

# The URL nodes use to reach this master (default: derived from host and port).
# public_url = "http://192.0.2.10:8080"

# database_url = "sqlite:///{DATA_DIR}/livestrap.db"
# log_level = "info"
# access_log = false
# trusted_proxies = ["127.0.0.1"]
"""
