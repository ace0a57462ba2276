"""`livestrap images list|show|diff|export|import|activate|delete`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from livestrap.cli.options import DEFAULT_DATA_DIR, ExistingDataDir, JsonFlag
from livestrap.store.bundle import export_image, import_image
from livestrap.store.images import ImageStore
from livestrap.store.manifest import dump_metadata

app = typer.Typer(help="List and manage stored images.", no_args_is_help=True)
ImageId = Annotated[str, typer.Argument(help="Image id (see `livestrap images list`).")]


def _human(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@app.command("list")
def list_images(data_dir: ExistingDataDir = DEFAULT_DATA_DIR, json_out: JsonFlag = False) -> None:
    """Show every image: id, label, created, total size, and which is active."""
    infos = ImageStore(data_dir).list()
    if json_out:
        rows = [
            {
                "id": i.id,
                "label": i.label,
                "created": i.created.isoformat(),
                "total_size": i.total_size,
                "active": i.active,
            }
            for i in infos
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("", "id", "label", "created", "size", box=None)
    for i in infos:
        table.add_row(
            "*" if i.active else "",
            escape(i.id),
            escape(i.label),
            f"{i.created:%Y-%m-%d %H:%M}",
            _human(i.total_size),
        )
    Console().print(table)
    if not infos:
        typer.echo(f"no images in {data_dir}")


@app.command("show")
def show(image_id: ImageId, data_dir: ExistingDataDir = DEFAULT_DATA_DIR) -> None:
    """Print an image's metadata."""
    typer.echo(dump_metadata(ImageStore(data_dir).get(image_id)), nl=False)


@app.command("diff")
def diff(
    a: ImageId, b: ImageId, data_dir: ExistingDataDir = DEFAULT_DATA_DIR, json_out: JsonFlag = False
) -> None:
    """Packages added, removed and changed in version from A to B."""
    d = ImageStore(data_dir).diff(a, b)
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "added": d.added,
                    "removed": d.removed,
                    "changed": {k: list(v) for k, v in d.changed.items()},
                },
                indent=2,
            )
        )
        return
    for name, version in sorted(d.added.items()):
        typer.echo(f"+ {name} {version}")
    for name, version in sorted(d.removed.items()):
        typer.echo(f"- {name} {version}")
    for name, (old, new) in sorted(d.changed.items()):
        typer.echo(f"~ {name} {old} -> {new}")
    if not (d.added or d.removed or d.changed):
        typer.echo("same packages")


@app.command("export")
def export(
    image_id: ImageId,
    dest: Annotated[Path, typer.Argument(help="Bundle file: .tar, .tar.gz, .tar.xz or .tar.zst")],
    data_dir: ExistingDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Write an image as a bundle (a tar of its directory)."""
    export_image(ImageStore(data_dir), image_id, dest)
    typer.echo(f"exported {image_id} to {dest}")


@app.command("import")
def import_(
    bundle: Annotated[Path, typer.Argument(help="Bundle made by `images export`.")],
    data_dir: ExistingDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Verify a bundle against its metadata and add it to the store."""
    meta = import_image(ImageStore(data_dir), bundle)
    typer.echo(f"imported {meta.id}")


@app.command("activate")
def activate(image_id: ImageId, data_dir: ExistingDataDir = DEFAULT_DATA_DIR) -> None:
    """Make an image the one nodes boot."""
    ImageStore(data_dir).activate(image_id)
    typer.echo(f"active: {image_id}")


@app.command("delete")
def delete(image_id: ImageId, data_dir: ExistingDataDir = DEFAULT_DATA_DIR) -> None:
    """Delete an image (never the active one)."""
    ImageStore(data_dir).delete(image_id)
    typer.echo(f"deleted {image_id}")
