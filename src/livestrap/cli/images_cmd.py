"""`livestrap images list|show|diff|verify|sbom|drivers|export|import|activate|delete`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from livestrap.cli import tables
from livestrap.cli.drivers_cmd import drivers
from livestrap.cli.options import DEFAULT_DATA_DIR, ExistingDataDir, id_argument
from livestrap.cli.output import (
    DocumentOutput,
    JsonAlias,
    Quiet,
    ShortListFormat,
    ShortListOutput,
    chosen_format,
    output_option,
    print_document,
    print_rows,
)
from livestrap.errors import StoreError
from livestrap.master.schemas.images import ImageDiff, ImageVerified
from livestrap.master.services.images import image_detail, image_diff, image_summary
from livestrap.store.bundle import export_image, import_image
from livestrap.store.images import ImageStore

app = typer.Typer(help="List and manage stored images.", no_args_is_help=True)
DiffOutput = Annotated[
    ShortListFormat | None,
    output_option(("table", "json", "yaml", "value"), value="the package names, one per line"),
]
ImageId = Annotated[str, id_argument("images", check=None)]  # local: no URL path


def _on_image(data_dir: Path, image_id: str, act: Callable[[ImageStore, str], object]) -> str:
    """The whole id `image_id` (a unique prefix) names in the store, after `act` on it."""
    store = ImageStore(data_dir)
    whole = store.resolve(image_id)
    act(store, whole)
    return whole


@app.command("list")
def list_images(
    data_dir: ExistingDataDir = DEFAULT_DATA_DIR,
    output: ShortListOutput = None,
    quiet: Quiet = False,
    json_alias: JsonAlias = False,
) -> None:
    """Show every image: id, label, created, total size, and which is active."""
    fmt = chosen_format(output, "table", json_alias=json_alias, quiet=quiet)
    rows = [image_summary(i).model_dump(mode="json") for i in ImageStore(data_dir).list()]
    print_rows(fmt, rows, tables.IMAGES)


@app.command("show")
def show(
    image_id: ImageId, data_dir: ExistingDataDir = DEFAULT_DATA_DIR, output: DocumentOutput = None
) -> None:
    """Print an image's metadata (metadata.yaml, and whether it is active)."""
    store = ImageStore(data_dir)
    meta = store.get(store.resolve(image_id))
    print_document(
        chosen_format(output, "yaml"),
        image_detail(meta, store.active_id()).model_dump(mode="json"),
    )


def package_changes(diff: ImageDiff) -> list[dict[str, Any]]:
    """One row per package that differs: + added, - removed, ~ another version."""
    rows = [{"change": "+", "package": n, "from": None, "to": v} for n, v in diff.added.items()]
    rows += [{"change": "-", "package": n, "from": v, "to": None} for n, v in diff.removed.items()]
    rows += [
        {"change": "~", "package": n, "from": old, "to": new}
        for n, (old, new) in diff.changed.items()
    ]
    return sorted(rows, key=lambda r: ("+-~".index(r["change"]), r["package"]))


@app.command("diff")
def diff(
    a: ImageId,
    b: ImageId,
    data_dir: ExistingDataDir = DEFAULT_DATA_DIR,
    output: DiffOutput = None,
    json_alias: JsonAlias = False,
) -> None:
    """Packages added (+), removed (-) and changed in version (~) from A to B."""
    fmt = chosen_format(output, "table", json_alias=json_alias)
    store = ImageStore(data_dir)
    a, b = store.resolve(a), store.resolve(b)
    d = image_diff(a, b, store.diff(a, b))
    print_rows(fmt, package_changes(d), tables.PACKAGE_CHANGES, data=d.model_dump(mode="json"))


@app.command("verify")
def verify(
    image_id: ImageId,
    data_dir: ExistingDataDir = DEFAULT_DATA_DIR,
    output: DiffOutput = None,
) -> None:
    """Recompute every artifact's sha256: ok, mismatch or missing; exit 1 on any problem."""
    fmt = chosen_format(output, "table")
    store = ImageStore(data_dir)
    whole = store.resolve(image_id)
    files = store.verify(whole)
    result = ImageVerified(id=whole, ok=all(v == "ok" for v in files.values()), files=files)
    rows = [{"file": name, "status": status} for name, status in files.items()]
    print_rows(fmt, rows, tables.VERIFIED, data=result.model_dump(mode="json"))
    bad = [f"{name} {status}" for name, status in files.items() if status != "ok"]
    if bad:
        raise StoreError(f"image {whole} does not match its metadata: {', '.join(bad)}")


@app.command("sbom")
def sbom(image_id: ImageId, data_dir: ExistingDataDir = DEFAULT_DATA_DIR) -> None:
    """Print an image's SBOM (CycloneDX 1.5 JSON: every package, its source and archive)."""
    store = ImageStore(data_dir)
    sys.stdout.buffer.write(store.sbom(store.resolve(image_id)))
    sys.stdout.buffer.flush()


app.command("drivers")(drivers)  # in its own module (cli.drivers_cmd)


@app.command("export")
def export(
    image_id: ImageId,
    dest: Annotated[Path, typer.Argument(help="Bundle file: .tar, .tar.gz, .tar.xz or .tar.zst")],
    data_dir: ExistingDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Write an image as a bundle (a tar of its directory)."""
    image_id = _on_image(data_dir, image_id, lambda store, whole: export_image(store, whole, dest))
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
    typer.echo(f"active: {_on_image(data_dir, image_id, ImageStore.activate)}")


@app.command("delete")
def delete(image_id: ImageId, data_dir: ExistingDataDir = DEFAULT_DATA_DIR) -> None:
    """Delete an image (never the active one)."""
    typer.echo(f"deleted {_on_image(data_dir, image_id, ImageStore.delete)}")
