"""The master's settings: where its data lives, where it listens, which database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    # where file:// and copy:// URLs of API specs may point, besides <data-dir>/spec
    file_mirror_roots: tuple[Path, ...] = ()

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'livestrap.db'}"

    @property
    def spec_dir(self) -> Path:
        """The one folder specs sent through the API may name files in."""
        return self.data_dir / "spec"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def discovery_token_file(self) -> Path:
        return self.data_dir / "discovery.token"
