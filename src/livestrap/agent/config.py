"""Agent settings: the kernel command line first, then an optional config file on top.

The PXE/iPXE script puts `livestrap.url=`, `livestrap.token=`, `livestrap.image=` and
`BOOTIF=` on the kernel command line, so one live image serves every master; a file
baked into the image (`/etc/livestrap/agent.conf`, INI with an `[agent]` section or
plain `key=value` lines; keys url, token, image, bootif, heartbeat_s) overrides them.
Parsing is pure; `load_config` is the only function that touches the filesystem.
"""

from __future__ import annotations

import configparser
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CMDLINE = Path("/proc/cmdline")
DEFAULT_CONFIG = Path("/etc/livestrap/agent.conf")
DEFAULT_HEARTBEAT_S = 60
KEYS = ("url", "token", "image", "bootif", "heartbeat_s", "boot_path")
_CMDLINE_KEYS = {
    "livestrap.url": "url",
    "livestrap.token": "token",
    "livestrap.image": "image",
    "livestrap.boot": "boot_path",  # which loader's config booted the node
    "BOOTIF": "bootif",
}
BOOT_PATHS = ("ipxe", "grub")  # iPXE's script, or GRUB's config of the Secure Boot chain
# the master's events.MAC_RE, spelled again: the agent imports nothing of livestrap's
_MAC = re.compile(
    r"^(?:01(?P<prefix>[:-]))?"
    r"(?P<mac>[0-9a-f]{2}(?P<sep>[:-]?)[0-9a-f]{2}(?:(?P=sep)[0-9a-f]{2}){4})\Z"
)


class ConfigError(Exception):
    """The settings cannot make a working agent (no master URL, a bad value)."""


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent needs to know about its master and its own boot."""

    url: str | None = None
    token: str | None = None
    image: str | None = None
    boot_mac: str | None = None
    heartbeat_s: int = DEFAULT_HEARTBEAT_S
    boot_path: str | None = None

    def require_url(self) -> str:
        """The master URL, or a ConfigError that says where it should have come from."""
        if not self.url:
            raise ConfigError(
                "no master URL: add livestrap.url=http://MASTER:PORT to the kernel command "
                f"line or url=... to {DEFAULT_CONFIG}"
            )
        return self.url


def normalize_mac(value: str) -> str | None:
    """`01-aa-bb-..` (PXELINUX BOOTIF, 01 = Ethernet), aa:bb:.., aa-bb-.. or aabb.. → aa:bb:...

    Returns None for anything else, so a mangled BOOTIF only loses the PXE hint. The same
    rules as the master's events.normalize_mac (tests/unit/test_mac_normalizers.py).
    """
    m = _MAC.match(value.strip().lower())
    if not m or (m["prefix"] is not None and m["prefix"] != m["sep"]):
        return None
    hexdigits = "".join(c for c in m["mac"] if c not in ":-")
    return ":".join(hexdigits[n : n + 2] for n in range(0, 12, 2))


def parse_cmdline(text: str) -> dict[str, str]:
    """Pick the agent's keys out of /proc/cmdline (quoted values allowed, the rest ignored)."""
    try:
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote must not hide the other settings
        words = text.split()
    values: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key in _CMDLINE_KEYS:
            values[_CMDLINE_KEYS[key]] = value
    return values


def parse_config_text(text: str) -> dict[str, str]:
    """Parse the config file: INI (section `[agent]`, else the first one) or bare key=value."""
    if not any(line.lstrip().startswith("[") for line in text.splitlines()):
        text = "[agent]\n" + text
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise ConfigError(f"config file is not valid INI/key=value: {exc}") from exc
    sections = parser.sections()
    if not sections:
        return {}
    section = "agent" if "agent" in sections else sections[0]
    return {key: value.strip().strip("\"'") for key, value in parser.items(section)}


def build_config(values: Mapping[str, str]) -> AgentConfig:
    """Validate merged raw values; unknown keys are the caller's to report."""
    heartbeat = DEFAULT_HEARTBEAT_S
    if values.get("heartbeat_s"):
        try:
            heartbeat = int(values["heartbeat_s"])
        except ValueError:
            raise ConfigError(f"heartbeat_s is not an integer: {values['heartbeat_s']!r}") from None
        if heartbeat <= 0:
            raise ConfigError(f"heartbeat_s must be positive, got {heartbeat}")
    boot_mac = None
    if values.get("bootif"):
        boot_mac = normalize_mac(values["bootif"])
    return AgentConfig(
        url=values.get("url") or None,
        token=values.get("token") or None,
        image=values.get("image") or None,
        boot_mac=boot_mac,
        heartbeat_s=heartbeat,
        boot_path=values.get("boot_path") if values.get("boot_path") in BOOT_PATHS else None,
    )


def unknown_keys(values: Mapping[str, str]) -> list[str]:
    """Keys the agent does not know, usually typos worth a warning."""
    return sorted(set(values) - set(KEYS))


def load_config(
    cmdline_path: Path = DEFAULT_CMDLINE, config_path: Path = DEFAULT_CONFIG
) -> tuple[AgentConfig, list[str]]:
    """Read both sources; returns the config and warnings (unknown keys, bad BOOTIF).

    A missing cmdline or config file is normal; an unreadable or malformed config file
    is a ConfigError because silently ignoring it would report to the wrong master.
    Empty values in the file (`token =`) leave the command line's value in place.
    """
    warnings: list[str] = []
    try:
        values = parse_cmdline(cmdline_path.read_text(errors="replace"))
    except OSError as exc:
        values = {}
        warnings.append(f"cannot read {cmdline_path}: {exc.strerror or exc}")
    if config_path.exists():
        try:
            text = config_path.read_text(errors="replace")
        except OSError as exc:
            raise ConfigError(f"cannot read {config_path}: {exc.strerror or exc}") from exc
        from_file = parse_config_text(text)
        warnings += [
            f"{config_path}: unknown key {key!r} ignored" for key in unknown_keys(from_file)
        ]
        values.update({k: v for k, v in from_file.items() if k in KEYS and v})
    config = build_config(values)
    if values.get("bootif") and config.boot_mac is None:
        warnings.append(f"BOOTIF {values['bootif']!r} is not a MAC address; PXE NIC unknown")
    return config, warnings
