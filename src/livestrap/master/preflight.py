"""What `livestrap serve` checks before it hands the app to uvicorn.

A problem found later, in uvicorn's startup, is printed as a traceback and exits 3; found
here it is one line that says what to change. Each check raises OptionError (the value
cannot work anywhere) or StartupError (it cannot work on this machine, now).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import ssl
from pathlib import Path

from alembic.util import CommandError
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from livestrap.errors import OptionError, StartupError
from livestrap.master.config import MasterSettings
from livestrap.master.db import database_url, make_engine, migrate, shown
from livestrap.workdirs import ensure_writable_dir

CONNECT_TIMEOUT_S = 5  # per attempt; a refused port fails at once, a silent host takes this

LISTEN_HINTS = {
    errno.EADDRINUSE: "another program (another master?) listens there; stop it or pick "
    "another port with --listen",
    errno.EACCES: "ports below 1024 need root (or CAP_NET_BIND_SERVICE); pick another port "
    "with --listen",
    errno.EADDRNOTAVAIL: "this machine has no such address; use one of its addresses, or "
    "0.0.0.0 for all of them",
}


def check_listen(host: str, port: int) -> None:
    """Bind (and release) what uvicorn will bind: the address resolves, is this machine's,
    and is free. Options as asyncio's create_server sets them."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise StartupError(
            f"--listen {host}:{port}: cannot resolve {host!r} ({err.strerror}); use an address "
            "of this machine, e.g. 127.0.0.1, or 0.0.0.0 for all of them"
        ) from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as err:
                hint = LISTEN_HINTS.get(err.errno or 0, "pick another address with --listen")
                raise StartupError(
                    f"cannot listen on {host}:{port}: {err.strerror}; {hint}"
                ) from None


def first_line(err: SQLAlchemyError) -> str:
    """The driver's own reason, without SQLAlchemy's wrapping and background link."""
    reason = str(getattr(err, "orig", None) or err).strip()
    reason = reason.splitlines()[0] if reason else type(err).__name__
    return reason.removeprefix("connection failed: ")


def check_database(url: str) -> None:
    """Connect and bring the schema up to date: an unreachable server, a refused login or a
    database from a newer livestrap shows here, not in uvicorn's startup."""
    parsed = database_url(url)  # the scheme first: no connection for an unsupported URL
    name = shown(make_url(url))
    if parsed.get_backend_name() == "sqlite":
        fix = "check the file, its directory and --database-url"
    else:
        fix = "check that the server runs there and --database-url (or LIVESTRAP_DATABASE_URL)"
    engine = make_engine(url, connect_timeout_s=CONNECT_TIMEOUT_S)
    try:
        migrate(engine)
    except SQLAlchemyError as err:
        raise StartupError(f"cannot use the database {name}: {first_line(err)}; {fix}") from None
    except CommandError as err:
        raise StartupError(
            f"cannot use the database {name}: {err}; was it made by a newer livestrap?"
        ) from None
    finally:
        engine.dispose()


def check_tls(cert: Path | None, key: Path | None) -> None:
    """Both files or neither; readable, PEM, and the key belongs to the certificate (what
    uvicorn would otherwise report as a traceback when it starts)."""
    if cert is None and key is None:
        return
    if cert is None or key is None:
        raise OptionError("--tls-cert and --tls-key go together: pass both, or neither")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            with path.open("rb"):
                pass
        except OSError as err:
            raise StartupError(f"{flag} {path}: cannot read it: {err.strerror}") from None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as err:
        raise StartupError(
            f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate and its key "
            f"({err.reason or err}); check both files"
        ) from None


def is_loopback(host: str) -> bool:
    """True if every address `host` names is this machine's loopback (127/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def plain_http_warning(cfg: MasterSettings) -> str | None:
    """The startup warning for a master reachable from the network without TLS."""
    if cfg.tls_cert is not None or is_loopback(cfg.host):
        return None
    return (
        f"warning: listening on {cfg.host}:{cfg.port} without TLS: the admin token crosses "
        "the network in clear; pass --tls-cert/--tls-key, or listen on 127.0.0.1 behind "
        "nginx with TLS (docs/security.md)"
    )


def preflight(cfg: MasterSettings) -> None:
    """Every check, cheapest first; nothing is written before the listen address is known
    to be free."""
    database_url(cfg.db_url)
    check_tls(cfg.tls_cert, cfg.tls_key)
    check_listen(cfg.host, cfg.port)
    ensure_writable_dir(cfg.data_dir, "data dir", "--data-dir", private=True)
    if cfg.cache_dir is not None:
        ensure_writable_dir(cfg.cache_dir, "cache dir", "--cache-dir")
    check_database(cfg.db_url)
