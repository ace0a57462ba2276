"""`livestrap backup FILE` and `livestrap restore FILE` (master.backup, master.restore)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from livestrap.cli.options import DEFAULT_DATA_DIR, DataDir, ExistingDataDir
from livestrap.master.backup import Summary, default_config_file, write_backup
from livestrap.master.config import MasterSettings
from livestrap.master.restore import restore_backup

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="LIVESTRAP_DATABASE_URL",
        help=r"The master's SQLAlchemy URL \[default: SQLite in DATA_DIR].",
    ),
]
NOT_IMAGES = "Images are not in it: export them one by one with `livestrap images export ID FILE`."

BACKUP_CONFIG_HELP = (
    r"The config file to include \[default: LIVESTRAP_CONFIG, else "
    "/etc/livestrap/livestrap.toml if present]."
)
RESTORE_CONFIG_HELP = "Write the archive's config file here (else it is left)."


def _say(summary: Summary, verb: str, where: Path) -> None:
    typer.echo(f"{verb} {where}: {', '.join(summary.members)}")
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)


def _log(line: str) -> None:
    typer.echo(line, err=True)


def backup(
    dest: Annotated[Path, typer.Argument(help="Archive to write: .tar.gz, .tgz or .tar.zst.")],
    data_dir: ExistingDataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
    config: Annotated[Path | None, typer.Option("--config", help=BACKUP_CONFIG_HELP)] = None,
) -> None:
    """Back up the master: database (SQLite online backup, or pg_dump), tokens, signing keys,
    spec dir and config file, in one archive (mode 0600: it holds secrets). Safe while the
    master runs. Images are not in it: export them one by one (`livestrap images export`)."""
    cfg = MasterSettings(data_dir=data_dir, database_url=database_url)
    summary = write_backup(cfg, dest, config or default_config_file(), _log)
    _say(summary, "backed up to", dest)


def restore(
    archive: Annotated[Path, typer.Argument(help="Archive made by `livestrap backup`.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
    config: Annotated[Path | None, typer.Option("--config", help=RESTORE_CONFIG_HELP)] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Restore even though a master or builder runs on DATA_DIR."),
    ] = False,
) -> None:
    """Restore a backup into DATA_DIR (and the database): what it holds replaces what is there.
    Stop the master and builder first. Archives holding anything a backup does not (absolute
    paths, '..', links, devices, oversized files) are refused. Images are not in a backup:
    import them one by one (`livestrap images import`)."""
    cfg = MasterSettings(data_dir=data_dir, database_url=database_url)
    summary = restore_backup(cfg, archive, _log, force=force, config_dest=config)
    _say(summary, "restored into", data_dir)
