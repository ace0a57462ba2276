"""`livestrap images drivers IMAGE [--pci FILE | --node NODE]`: what an image can drive.

Without options, and with `--pci` (lspci text), it reads the local store, as the other
`images` commands do; `--node` asks the master (POST /api/v1/images/{id}/drivers/check),
which holds the node's reported PCI facts: IMAGE is then one of the master's images.
Both paths build the same schemas (master.services.drivers) and print them alike.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from livestrap.cli.client import DEFAULT_URL, MasterUrl, Token
from livestrap.cli.options import DEFAULT_DATA_DIR, existing_data_dir
from livestrap.cli.output import (
    Column,
    JsonAlias,
    ShortListFormat,
    TableView,
    chosen_format,
    field_of,
    output_option,
    print_rows,
)
from livestrap.cli.remote import Remote
from livestrap.errors import OptionError, StoreError
from livestrap.lspci import MAX_TEXT, LspciError, parse_lspci
from livestrap.master.schemas.drivers import DriverCheck
from livestrap.master.services.drivers import check_image, image_drivers
from livestrap.store.images import ImageStore
from livestrap.store.manifest import check_image_id

CHECK_STYLES = {"ok": "green", "no-driver": "red", "no-firmware": "yellow"}
CLASSES = TableView(
    columns=(
        Column("CLASS", field_of("base_class")),
        Column("NAME", field_of("name")),
        Column("MODULES", field_of("modules")),
        Column("PATTERNS", field_of("patterns")),
        Column("VENDORS", field_of("vendors")),
        Column("FIRMWARE INCOMPLETE", field_of("incomplete_firmware")),
    ),
    key="name",
    empty="no PCI driver in the image",
)


def _list(key: str) -> Any:
    return lambda row: ", ".join(row.get(key) or []) or "-"


DEVICES = TableView(
    columns=(
        Column("SLOT", field_of("slot")),
        Column("IDS", field_of("ids")),
        Column("CLASS", field_of("class_name"), wraps=True),
        Column("STATUS", field_of("status"), styles=CHECK_STYLES),
        Column("MODULES", _list("modules"), wraps=True),
        Column("MISSING FIRMWARE", _list("missing_firmware"), wraps=True),
    ),
    key="slot",
    empty="the image drives every device",
)
DriversOutput = Annotated[
    ShortListFormat | None,
    output_option(("table", "json", "yaml", "value"), value="class names, or device slots"),
]
PciFile = Annotated[
    Path | None,
    typer.Option(
        "--pci",
        help="`lspci -n` output (or -nn, -mm -n, -nvmm) of the machine; `-` reads stdin.",
        dir_okay=False,
    ),
]
NodeOption = Annotated[
    str | None,
    typer.Option("--node", help="A registered node (id or prefix): its PCI facts, via the master."),
]
DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="LIVESTRAP_DATA_DIR",
        help="The store (and, with --node, where admin.token is).",
    ),
]


def read_pci(path: Path) -> str:
    """The lspci text of `path` (`-` stdin), bounded."""
    if str(path) == "-":
        text = sys.stdin.read(MAX_TEXT + 1)
    else:
        try:
            with path.open(errors="replace") as fh:
                text = fh.read(MAX_TEXT + 1)
        except OSError as err:
            raise OptionError(f"cannot read {path}: {err.strerror}") from None
    if len(text) > MAX_TEXT:
        raise OptionError(f"{path} is larger than {MAX_TEXT} bytes: not lspci output")
    return text


def drivers(
    image_id: Annotated[str, typer.Argument(help="Image id or a unique prefix of one.")],
    pci: PciFile = None,
    node: NodeOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    master: MasterUrl = DEFAULT_URL,
    token: Token = None,
    output: DriversOutput = None,
    json_alias: JsonAlias = False,
) -> None:
    """Which PCI device classes an image can drive; with --pci or --node, every device of
    that machine it has no driver or no firmware for (NICs and storage first; exit 1 when
    one of those is among them)."""
    fmt = chosen_format(output, "table", json_alias=json_alias)
    if pci is not None and node is not None:
        raise OptionError("give --pci or --node, not both")
    if node is not None:
        client = Remote(master=master, token=token, data_dir=data_dir)
        try:
            path = f"/api/v1/images/{check_image_id(image_id)}/drivers/check"
            found = client.call("POST", path, json={"node": node})
        finally:
            client.close()
        _print_check(fmt, DriverCheck.model_validate(found))
        return
    store = ImageStore(existing_data_dir(data_dir))
    meta = store.get(store.resolve(image_id))
    if pci is None:
        summary = image_drivers(meta)
        rows = [row.model_dump(mode="json") for row in summary.classes]
        print_rows(fmt, rows, CLASSES, data=summary.model_dump(mode="json"))
        if fmt == "table":
            incomplete = len(summary.missing_firmware)
            typer.echo(
                f"{summary.modules} modules; {incomplete} lack firmware files (-o yaml lists them)",
                err=True,
            )
        return
    try:
        devices = parse_lspci(read_pci(pci))
    except LspciError as err:
        raise OptionError(f"--pci {pci}: {err}") from None
    _print_check(fmt, check_image(meta, devices))


def _print_check(fmt: str, result: DriverCheck) -> None:
    """The devices without a driver or firmware (json/yaml: every device), then exit 1
    when a NIC or storage controller is among them."""
    rows = [d.model_dump(mode="json") for d in result.devices if d.status != "ok"]
    print_rows(fmt, rows, DEVICES, data=result.model_dump(mode="json"))
    if fmt == "table":
        typer.echo(f"{len(result.devices)} devices, {result.gaps} not covered", err=True)
    if result.important_gaps:
        raise StoreError(
            f"image {result.image} cannot drive {result.important_gaps} NIC(s) or storage "
            "controller(s) of this machine"
        )
