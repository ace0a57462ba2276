"""Progress events of a build, for the CLI's live view, `--json` and (later) the API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

EventKind = Literal["build-start", "stage-start", "stage-done", "build-done", "build-failed"]


@dataclass(frozen=True)
class BuildEvent:
    kind: EventKind
    stage: str | None = None
    elapsed_s: float = 0.0
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


EventSink = Callable[[BuildEvent], None]


def discard(_: BuildEvent) -> None:
    """An event sink for callers that do not watch progress."""
