"""The master's settings: where its data lives, where it listens, which database, its limits.

One pydantic-settings model. Each value comes from, highest first: a flag (init keywords),
the environment (LIVESTRAP_<KEY>), the TOML file (`livestrap.master.config_load` picks it;
keyword construction in code and tests reads none), then the default here. docs/config.md
lists every key; tests/unit/test_config_doc.py keeps the two in step.
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from livestrap.datadir import DataDir
from livestrap.errors import StoreError
from livestrap.store.limits import DEFAULT_MAX_IMAGE_BYTES, parse_size

DEFAULT_DATA_DIR = Path("/var/lib/livestrap")
ENV_PREFIX = "LIVESTRAP_"

# Request body caps (master.limits): every body is counted while it is read.
MAX_BODY_BYTES = 1 << 20  # discovery reports and the JSON APIs
MAX_IMPORT_BYTES = DEFAULT_MAX_IMAGE_BYTES  # a bundle, and the image it unpacks to (admin only)
# A multipart import carries framing (boundaries, part headers) on top of the bundle: the
# import route's body cap is the import limit plus this (master.limits, master.upload, nginx).
IMPORT_FRAMING_BYTES = 1 << 20

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's names

# The TOML file the next MasterSettings() reads (config_load sets it around one construction).
CONFIG_FILE: ContextVar[Path | None] = ContextVar("livestrap_config_file", default=None)


def _size(value: Any) -> Any:
    """A byte count: an integer, or text with an optional K/M/G/T suffix (as the env had)."""
    if isinstance(value, str):
        try:
            return parse_size(value)
        except StoreError:
            raise ValueError("expected a positive size such as 1048576, 64M or 16G") from None
    if isinstance(value, bool) or (isinstance(value, int) and value <= 0):
        raise ValueError("expected a positive number of bytes")
    return value


def _words(value: Any) -> Any:
    """A list from the environment: words apart by spaces (or commas, as uvicorn's own)."""
    if isinstance(value, str):
        return tuple(value.replace(",", " ").split())
    return value


def _level(value: str) -> str:
    level = value.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return level


def _proxies(value: tuple[str, ...]) -> tuple[str, ...]:
    """Addresses or networks uvicorn trusts for X-Forwarded-*, or "*" (any: only behind a
    proxy that sets the headers itself)."""
    for item in value:
        if item != "*":
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address, a network or *") from None
    return value


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value


def _absolute(value: tuple[Path, ...]) -> tuple[Path, ...]:
    return tuple(p.absolute() for p in value)


Limit = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # 0 turns the limit off
Count = Annotated[int, Field(ge=0)]  # 0 turns the limit off
Positive = Annotated[int, Field(ge=1)]
Bytes = Annotated[int, BeforeValidator(_size)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
WordList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_words)]


class MasterSettings(BaseSettings):
    """Every setting of `livestrap serve` (and the builder). Frozen: one per process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", env_ignore_empty=True
    )

    data_dir: Path = DEFAULT_DATA_DIR
    role: Literal["all", "api"] = "all"  # all: serve also runs the build worker; api: never
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8080, ge=1, le=65535)
    public_url: Annotated[str | None, AfterValidator(_http_url)] = None  # default: request Host
    # the Secure Boot chain's TFTP tree (netboot.tftptree), kept in step with the active
    # image; it needs public_url (GRUB's static config cannot ask which Host it used)
    tftp_dir: Path | None = None
    database_url: str | None = None  # SQLAlchemy URL; default: SQLite in data_dir
    cache_dir: Path | None = None  # package cache of builds (default: <data-dir>/cache)
    # EFI loaders (ipxe.efi, snponly.efi) served at /boot/efi/NAME to UEFI HTTP boot
    ipxe_dir: Path = Path("/usr/lib/ipxe")
    tls_cert: Path | None = None  # PEM certificate (chain) for HTTPS; with tls_key
    tls_key: Path | None = None
    # where file:// and copy:// URLs of API specs may point, besides <data-dir>/spec
    file_mirror_roots: Annotated[
        tuple[Path, ...], NoDecode, BeforeValidator(_words), AfterValidator(_absolute)
    ] = ()
    log_level: Annotated[str, AfterValidator(_level)] = "info"
    access_log: bool = False  # one log line per HTTP request
    trusted_proxies: Annotated[WordList, AfterValidator(_proxies)] = ("127.0.0.1",)
    heartbeat_s: Positive = 30
    offline_after: Positive = 3  # heartbeat intervals without news before a node shows offline
    boot_retry_s: Positive = 30  # how long iPXE waits before asking again when no image is active
    # Abuse limits of the unauthenticated routes, per client address (docs/security.md).
    # Sized for a rack behind one NAT address; 0 turns a limit off.
    discovery_rate: Limit = 100  # reports/s per address
    discovery_burst: Limit = 2000
    new_nodes_per_address: Count = 1000  # new nodes per address per window
    new_nodes_window_s: Limit = 3600
    new_nodes_total: Count = 20_000  # all addresses
    boot_rate: Limit = 50  # /boot requests/s per address
    boot_burst: Limit = 1000
    mac_event_rate: Limit = 0.5  # /boot events/s per MAC
    mac_event_burst: Limit = 60
    refused_window_s: Limit = 300  # refusals coalesce
    refused_rate: Limit = 10  # refused reports/s per address
    refused_burst: Limit = 200
    events_per_node: Count = 500  # per node, per MAC
    unattached_events: Count = 50_000  # with no node
    # how long a web console login lasts (seconds), then it logs in again
    console_session_s: Limit = 8 * 3600
    # a delivered node action with no result after this long ends as `lost` (never re-run)
    action_timeout_s: Positive = 900
    # a queued node action its node has not taken after this long ends as `expired`
    action_queue_ttl_s: Positive = 86400
    max_body_bytes: Bytes = MAX_BODY_BYTES
    max_import_bytes: Bytes = MAX_IMPORT_BYTES
    # webhooks (docs/webhooks.md): the deliveries this master sends; 0 workers sends none
    webhook_workers: Count = 4  # deliveries at once (one per webhook at a time)
    webhook_timeout_s: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = 5.0
    webhook_max_attempts: Positive = 8
    webhook_backoff_s: Seconds = 30.0  # after the 1st failed attempt; doubles each time
    webhook_backoff_max_s: Seconds = 3600.0
    webhook_poll_s: Seconds = 1.0  # how often due deliveries are looked for
    webhook_sweep_s: Seconds = 5.0  # how often offline nodes are looked for
    webhook_keep_s: Limit = 7 * 86400  # delivered and failed deliveries kept; 0: forever

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """flags > env > file > defaults; no .env or secrets directory."""
        path = CONFIG_FILE.get()
        if path is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, path))

    @model_validator(mode="after")
    def _tftp_needs_public_url(self) -> MasterSettings:
        if self.tftp_dir is not None and self.public_url is None:
            raise ValueError("tftp_dir needs public_url: the URL nodes reach the master at "
                             "goes into the GRUB config it writes")  # fmt: skip
        return self

    @property
    def new_nodes_per_window(self) -> int:
        """The old name of new_nodes_per_address."""
        return self.new_nodes_per_address

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
