"""`livestrap serve`: run the master (FastAPI under uvicorn)."""

from __future__ import annotations

import logging.config
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from livestrap.cli.options import DEFAULT_DATA_DIR, CacheDir, DataDir
from livestrap.errors import OptionError
from livestrap.master.app import create_app
from livestrap.master.config import MasterSettings
from livestrap.master.logsetup import logging_config
from livestrap.master.preflight import plain_http_warning, preflight


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise OptionError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


def serve(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to listen on.")] = (
        "127.0.0.1:8080"
    ),
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="LIVESTRAP_DATABASE_URL",
            help=r"SQLAlchemy URL, e.g. postgresql://user@host/db \[default: SQLite in DATA_DIR].",
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option("--public-url", help=r"URL nodes use to reach the master \[default: Host]."),
    ] = None,
    cache_dir: CacheDir = None,
    file_mirror_roots: Annotated[
        list[Path] | None,
        typer.Option(
            "--file-mirror-root",
            envvar="LIVESTRAP_FILE_MIRROR_ROOTS",
            help="A folder file:// and copy:// URLs of API specs may point into (repeat it; "
            r"the env var takes a space-separated list) \[default: only DATA_DIR/spec].",
        ),
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log every HTTP request (off: at fleet scale it costs the master CPU; "
            "each node's boot timeline already records what it fetched).",
        ),
    ] = False,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="PEM certificate (chain): serve HTTPS (with --tls-key)."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")
    ] = None,
) -> None:
    """Run the master: REST API, netboot files, discovery and build jobs."""
    host, port = parse_listen(listen)
    settings = MasterSettings(
        data_dir=data_dir,
        host=host,
        port=port,
        database_url=database_url,
        public_url=public_url,
        cache_dir=cache_dir,
        tls_cert=tls_cert,
        tls_key=tls_key,
        file_mirror_roots=tuple(p.absolute() for p in file_mirror_roots or ()),
    )
    preflight(settings)  # one line per problem here; uvicorn's startup would print tracebacks
    try:
        log_config = logging_config(settings.log_level, access_log)
    except ValueError as err:
        raise OptionError(str(err)) from None
    logging.config.dictConfig(log_config)  # the app logs where the token files are
    warning = plain_http_warning(settings)
    if warning:
        logging.getLogger("livestrap.master").warning("%s", warning.removeprefix("warning: "))
    uvicorn.run(
        create_app(settings),  # logs its start: version, listen URL, data dir, role
        host=host,
        port=port,
        log_config=log_config,
        log_level=settings.log_level.lower(),
        access_log=access_log,
        timeout_graceful_shutdown=5,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
    )
