"""The master's settings: where its data lives, where it listens, which database."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from livestrap.datadir import DataDir
from livestrap.errors import OptionError, StoreError
from livestrap.store.limits import DEFAULT_MAX_IMAGE_BYTES, max_image_bytes


def env_number(name: str, default: float) -> float:
    """A limit from the environment (LIVESTRAP_...); 0 turns that limit off."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise OptionError(f"{name}={text!r}: expected a number (0 turns the limit off)") from None
    if value < 0 or value != value or value == float("inf"):
        raise OptionError(f"{name}={text!r}: expected a number >= 0 (0 turns the limit off)")
    return value


def _env(name: str, default: float) -> float:
    return field(default_factory=lambda: env_number(name, default))


def _env_int(name: str, default: int) -> int:
    return field(default_factory=lambda: int(env_number(name, default)))


# Request body caps (master.limits): every body is counted while it is read.
MAX_BODY_BYTES = 1 << 20  # discovery reports and the JSON APIs
MAX_IMPORT_BYTES = DEFAULT_MAX_IMAGE_BYTES  # a bundle, and the image it unpacks to (admin only)
# A multipart import carries framing (boundaries, part headers) on top of the bundle: the
# import route's body cap is the import limit plus this (master.limits, master.upload, nginx).
IMPORT_FRAMING_BYTES = 1 << 20


def env_bytes(name: str, default: int) -> int:
    """A byte count from the environment (a positive integer), else `default`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or int(raw) == 0:
        raise OptionError(f"{name}={raw[:40]!r}: expected a positive number of bytes")
    return int(raw)


def max_body_bytes() -> int:
    """The JSON body cap: LIVESTRAP_MAX_BODY_BYTES, else MAX_BODY_BYTES."""
    return env_bytes("LIVESTRAP_MAX_BODY_BYTES", MAX_BODY_BYTES)


def max_import_bytes() -> int:
    """The import cap, for the upload and for the image it unpacks to:
    LIVESTRAP_MAX_IMPORT_BYTES (bytes, or with a K/M/G/T suffix), else MAX_IMPORT_BYTES."""
    try:
        return max_image_bytes()
    except StoreError as err:
        raise OptionError(str(err)) from None


@dataclass(frozen=True)
class MasterSettings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str | None = None
    public_url: str | None = None  # how nodes reach the master; default: the request's Host
    heartbeat_s: int = 30
    offline_after: int = 3  # heartbeat intervals without news before a node shows offline
    boot_retry_s: int = 30  # how long iPXE waits before asking again when no image is active
    cache_dir: Path | None = None  # package cache of builds (default: <data-dir>/cache)
    # Abuse limits of the unauthenticated routes, per client address (docs/security.md).
    # Sized for a rack behind one NAT address; 0 turns a limit off.
    discovery_rate: float = _env("LIVESTRAP_DISCOVERY_RATE", 100)  # reports/s per address
    discovery_burst: float = _env("LIVESTRAP_DISCOVERY_BURST", 2000)
    new_nodes_per_window: int = _env_int("LIVESTRAP_NEW_NODES_PER_ADDRESS", 1000)
    new_nodes_window_s: float = _env("LIVESTRAP_NEW_NODES_WINDOW_S", 3600)
    new_nodes_total: int = _env_int("LIVESTRAP_NEW_NODES_TOTAL", 20_000)  # all addresses
    boot_rate: float = _env("LIVESTRAP_BOOT_RATE", 50)  # /boot requests/s per address
    boot_burst: float = _env("LIVESTRAP_BOOT_BURST", 1000)
    mac_event_rate: float = _env("LIVESTRAP_MAC_EVENT_RATE", 0.5)  # /boot events/s per MAC
    mac_event_burst: float = _env("LIVESTRAP_MAC_EVENT_BURST", 60)
    refused_window_s: float = _env("LIVESTRAP_REFUSED_WINDOW_S", 300)  # refusals coalesce
    refused_rate: float = _env("LIVESTRAP_REFUSED_RATE", 10)  # refused reports/s per address
    refused_burst: float = _env("LIVESTRAP_REFUSED_BURST", 200)
    events_per_node: int = _env_int("LIVESTRAP_EVENTS_PER_NODE", 500)  # per node, per MAC
    unattached_events: int = _env_int("LIVESTRAP_UNATTACHED_EVENTS", 50_000)  # with no node
    tls_cert: Path | None = None  # PEM certificate (chain) for HTTPS; with tls_key
    tls_key: Path | None = None
    # how long a web console login lasts (seconds), then it logs in again
    console_session_s: float = _env("LIVESTRAP_CONSOLE_SESSION_S", 8 * 3600)
    # where file:// and copy:// URLs of API specs may point, besides <data-dir>/spec
    file_mirror_roots: tuple[Path, ...] = ()
    max_body_bytes: int = field(default_factory=max_body_bytes)  # LIVESTRAP_MAX_BODY_BYTES
    max_import_bytes: int = field(default_factory=max_import_bytes)  # LIVESTRAP_MAX_IMPORT_BYTES
    log_level: str = "info"  # TEMPORARY (i14-ops): the config helper's field replaces it

    @property
    def layout(self) -> DataDir:
        """The paths under data_dir (livestrap.datadir)."""
        return DataDir(self.data_dir)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.layout.db}"

    @property
    def spec_dir(self) -> Path:
        """The one folder specs sent through the API may name files in."""
        return self.layout.spec

    @property
    def admin_token_file(self) -> Path:
        return self.layout.admin_token

    @property
    def discovery_token_file(self) -> Path:
        return self.layout.discovery_token
