"""The master's settings: where its data lives, where it listens, which database."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from livestrap.errors import OptionError

# Request body caps (master.limits): every body is counted while it is read.
MAX_BODY_BYTES = 1 << 20  # discovery reports and the JSON APIs
MAX_IMPORT_BYTES = 8 << 30  # an image bundle (POST /api/v1/images/import, admin only)


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
    """The bundle upload cap: LIVESTRAP_MAX_IMPORT_BYTES, else MAX_IMPORT_BYTES."""
    return env_bytes("LIVESTRAP_MAX_IMPORT_BYTES", MAX_IMPORT_BYTES)


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
    max_body_bytes: int = field(default_factory=max_body_bytes)  # LIVESTRAP_MAX_BODY_BYTES
    max_import_bytes: int = field(default_factory=max_import_bytes)  # LIVESTRAP_MAX_IMPORT_BYTES

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'livestrap.db'}"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def discovery_token_file(self) -> Path:
        return self.data_dir / "discovery.token"
