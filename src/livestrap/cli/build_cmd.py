"""`livestrap build`: build the spec into the store, showing progress per stage."""

from __future__ import annotations

import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from livestrap.builder.pipeline import build as run_build
from livestrap.builder.plan import BuildPlan
from livestrap.cli.options import DEFAULT_DATA_DIR, WritableCacheDir, WritableDataDir
from livestrap.cli.progress import JsonProgress, RichProgress
from livestrap.cli.spec_cmd import SpecArg, effective_spec
from livestrap.datadir import DataDir
from livestrap.errors import BuildError
from livestrap.store.images import ImageStore

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
) -> None:
    """Build an image from SPEC (or the default spec) into the store."""
    console = Console(stderr=True)

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
