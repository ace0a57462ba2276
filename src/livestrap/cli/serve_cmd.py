"""`livestrap serve`: run the master (FastAPI under uvicorn)."""

from __future__ import annotations

import logging.config
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from livestrap.cli.options import ConfigFile, SettingsCacheDir, SettingsDataDir
from livestrap.errors import OptionError
from livestrap.master.app import create_app
from livestrap.master.config_load import load_settings
from livestrap.master.logsetup import logging_config
from livestrap.master.preflight import plain_http_warning, preflight


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise OptionError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


def serve(
    config: ConfigFile = None,
    data_dir: SettingsDataDir = None,
    listen: Annotated[
        str | None,
        typer.Option("--listen", help=r"HOST:PORT to listen on \[default: 127.0.0.1:8080]."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help=r"SQLAlchemy URL, e.g. postgresql://user@host/db; LIVESTRAP_DATABASE_URL keeps "
            r"a password out of ps \[default: SQLite in DATA_DIR].",
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option("--public-url", help=r"URL nodes use to reach the master \[default: Host]."),
    ] = None,
    tftp_dir: Annotated[
        Path | None,
        typer.Option(
            "--tftp-dir",
            help="Keep the Secure Boot chain's TFTP tree here (shim, GRUB, grub.cfg, the "
            r"active image's kernel and initrd); needs --public-url \[default: none].",
        ),
    ] = None,
    cache_dir: SettingsCacheDir = None,
    file_mirror_roots: Annotated[
        list[Path] | None,
        typer.Option(
            "--file-mirror-root",
            help="A folder file:// and copy:// URLs of API specs may point into (repeat it; "
            r"LIVESTRAP_FILE_MIRROR_ROOTS takes a space-separated list) \[default: only "
            "DATA_DIR/spec].",
        ),
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log every HTTP request (off: at fleet scale it costs the master CPU; "
            r"each node's boot timeline already records what it fetched) \[default: off].",
            show_default=False,
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="PEM certificate (chain): serve HTTPS (with --tls-key)."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level", help=r"critical, error, warning, info, debug or trace \[default: info]."
        ),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help=r"all: also run the build worker (demo, tests); api: never build (the packaged "
            r"livestrap-builder.service does) \[default: all].",
        ),
    ] = None,
    trusted_proxies: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="An address or network whose X-Forwarded-For/-Proto headers are believed "
            r"(repeat it; * for any) \[default: 127.0.0.1].",
        ),
    ] = None,
) -> None:
    """Run the master: REST API, netboot files, discovery and build jobs."""
    host, port = parse_listen(listen) if listen is not None else (None, None)
    flags = {
        "data_dir": data_dir,
        "host": host,
        "port": port,
        "database_url": database_url,
        "public_url": public_url,
        "tftp_dir": tftp_dir,
        "cache_dir": cache_dir,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
        "file_mirror_roots": tuple(file_mirror_roots) if file_mirror_roots else None,
        "access_log": access_log,
        "log_level": log_level,
        "role": role,
        "trusted_proxies": tuple(trusted_proxies) if trusted_proxies else None,
    }
    settings = load_settings(flags, config)
    preflight(settings)  # one line per problem here; uvicorn's startup would print tracebacks
    try:
        log_config = logging_config(settings.log_level, settings.access_log)
    except ValueError as err:
        raise OptionError(str(err)) from None
    logging.config.dictConfig(log_config)  # the app logs where the token files are
    warning = plain_http_warning(settings)
    if warning:
        logging.getLogger("livestrap.master").warning("%s", warning.removeprefix("warning: "))
    uvicorn.run(
        create_app(settings),  # logs its start: version, listen URL, data dir, role
        host=settings.host,
        port=settings.port,
        log_config=log_config,
        log_level=settings.log_level,
        access_log=settings.access_log,
        forwarded_allow_ips=list(settings.trusted_proxies),
        timeout_graceful_shutdown=5,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )
