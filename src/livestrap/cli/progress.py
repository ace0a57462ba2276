"""Show build events: a rich live view for people, JSON lines for programs."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from livestrap.builder.events import BuildEvent


class JsonProgress:
    def __call__(self, event: BuildEvent) -> None:
        sys.stdout.write(event.to_json() + "\n")
        sys.stdout.flush()

    def __enter__(self) -> JsonProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class RichProgress:
    """One line per stage with a spinner while it runs and its time when done."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓"),
            TextColumn("{task.description:<10}", markup=False),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=self.console,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        for task in self.tasks.values():
            self.progress.stop_task(task)
        self.progress.stop()

    def __call__(self, event: BuildEvent) -> None:
        if event.kind == "build-start":
            self.console.print(f"build log: {escape(event.message)}")
        elif event.kind == "stage-start" and event.stage:
            self.tasks[event.stage] = self.progress.add_task(event.stage, total=1, note="")
        elif event.kind == "stage-done" and event.stage in self.tasks:
            task = self.tasks[event.stage]
            self.progress.update(task, completed=1, note="")
            self.progress.stop_task(task)
        elif event.kind == "build-failed" and event.stage in self.tasks:
            task = self.tasks[event.stage]
            self.progress.update(task, note="[red]failed")
            self.progress.stop_task(task)
