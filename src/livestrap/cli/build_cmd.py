"""`livestrap build`: build the spec into the store, showing progress per stage."""

from __future__ import annotations

import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from livestrap.builder.pipeline import build as run_build
from livestrap.builder.plan import BuildPlan
from livestrap.builder.recheck import check_image
from livestrap.cli.options import DEFAULT_DATA_DIR, WritableCacheDir, WritableDataDir
from livestrap.cli.progress import JsonProgress, RichProgress
from livestrap.cli.spec_cmd import SpecArg, effective_spec
from livestrap.datadir import DataDir
from livestrap.errors import BuildError, OptionError, SpecError
from livestrap.spec import ResolvedSpec
from livestrap.specerrors import format_validation_error
from livestrap.specpaths import PathRules
from livestrap.store.images import ImageStore
from livestrap.store.manifest import ImageMetadata

JsonEvents = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the progress as JSON events, one per line (a stream, so not an -o format).",
    ),
]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def build(
    spec_path: SpecArg = None,
    data_dir: WritableDataDir = DEFAULT_DATA_DIR,
    activate: Annotated[bool, typer.Option("--activate", help="Activate the new image.")] = False,
    json_out: JsonEvents = False,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if nothing changed since an image.")
    ] = False,
    cache_dir: WritableCacheDir = None,
    check: Annotated[
        str | None,
        typer.Option(
            "--check",
            metavar="ID",
            help="Rebuild image ID's recorded inputs (nothing is stored) and compare the bytes.",
        ),
    ] = None,
) -> None:
    """Build an image from SPEC (or the default spec) into the store."""
    console = Console(stderr=True)
    if check is not None:
        if spec_path is not None or activate:
            raise OptionError(
                "--check ID rebuilds the image's own spec: give no SPEC, no --activate"
            )
        check_build(check, data_dir, cache_dir, json_out, console)
        return

    def announce(root: Path) -> None:
        console.print(
            f"publishing this livestrap's agent to the master's repository {escape(str(root))}"
        )

    spec = effective_spec(spec_path, data_dir, BuildPlan(data_dir, announce=announce))
    store = ImageStore(data_dir)
    before = {info.id for info in store.list()}
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    log_path = DataDir(data_dir).build_log(stamp)
    signal.signal(signal.SIGTERM, _interrupt)
    view = JsonProgress() if json_out else RichProgress(console)
    try:
        with view:
            meta = run_build(
                spec, store, log_path=log_path, events=view, cache_dir=cache_dir, force=force
            )
    except BuildError as err:
        if not json_out:
            stage, message = escape(err.stage), escape(err.message)
            console.print(f"[bold red]build failed[/] in stage [bold]{stage}[/]: {message}")
            if err.log_tail:
                console.print(err.log_tail, highlight=False, markup=False)
            console.print(f"full log: {escape(str(log_path))}")
        sys.exit(1)
    if activate:
        store.activate(meta.id)
    if json_out:
        return
    size_mb = meta.total_size() / 1e6
    verb = "up to date, reused" if meta.id in before else "built"
    console.print(
        f"[green]{verb}[/] {escape(meta.id)} ({size_mb:.1f} MB, kernel"
        f" {escape(meta.kernel_version)}, agent {escape(meta.agent_version or 'none')})"
        + (" [bold]active[/]" if activate else "")
    )
    typer.echo(meta.id)


def recorded_spec(meta: ImageMetadata, data_dir: Path) -> ResolvedSpec:
    """The spec the image ran, its host paths held to today's rules again."""
    try:
        return ResolvedSpec.model_validate(meta.spec, context={"rules": PathRules(data_dir)})
    except ValidationError as err:
        raise SpecError(format_validation_error(err, f"image {meta.id}'s spec")) from None


def check_build(
    image_id: str, data_dir: Path, cache_dir: Path | None, json_out: bool, console: Console
) -> None:
    """`build --check ID`: one line per artifact; exit 1 when any differs."""
    store = ImageStore(data_dir)
    meta = store.get(store.resolve(image_id))  # an id or a unique prefix of one
    image_id = meta.id
    spec = recorded_spec(meta, data_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    log_path = DataDir(data_dir).build_log(stamp)
    signal.signal(signal.SIGTERM, _interrupt)
    view = JsonProgress() if json_out else RichProgress(console)
    try:
        with view:
            report = check_image(
                store, meta, spec, log_path=log_path, events=view, cache_dir=cache_dir
            )
    except BuildError as err:
        console.print(f"[bold red]check failed[/] in stage [bold]{escape(err.stage)}[/]:"
                      f" {escape(err.message)}", soft_wrap=True)  # fmt: skip
        if log_path.exists():  # a refusal comes before any build
            console.print(f"full log: {escape(str(log_path))}", soft_wrap=True)
        sys.exit(1)
    for art in report.artifacts:
        verdict = "same" if art.matches else "DIFFERS"
        if json_out:  # stdout stays JSON lines: one more event per artifact
            row = {"kind": "check", "artifact": art.name, "same": art.matches,
                   "recorded": art.recorded, "rebuilt": art.rebuilt}  # fmt: skip
            typer.echo(json.dumps(row))
        else:
            typer.echo(f"{art.name}\t{verdict}\t{art.recorded}\t{art.rebuilt or '-'}")
    if not report.matches:
        console.print(f"[bold red]image {escape(image_id)} is not reproduced[/]")
        sys.exit(1)
    console.print(f"[green]image {escape(image_id)} reproduced: every artifact matches[/]")
