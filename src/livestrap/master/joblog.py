"""What a build shows while it runs: its progress, and its log (tailed live for the API).

The pipeline writes each line with a flush, so a reader that polls the file sees lines
within `POLL_S`. The tail ends only once the build is finished AND the file is read to
its end: the finished state is checked before the last read, and the worker writes its
last line before it records the state, so no line is ever lost at the end.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from livestrap.builder.events import BuildEvent

POLL_S = 0.2
CHUNK = 64 * 1024


def progress_update(names: list[str], event: BuildEvent) -> dict[str, Any] | None:
    """Row fields for a pipeline event: the stage, and the fraction of `names` done."""
    if event.kind == "build-done":
        return {"progress": 1.0}
    if event.kind not in ("stage-start", "stage-done", "build-failed") or not event.stage:
        return None
    fields: dict[str, Any] = {"stage": event.stage}
    if event.kind != "build-failed" and event.stage in names:
        done = names.index(event.stage) + (event.kind == "stage-done")
        fields["progress"] = round(done / len(names), 4)
    return fields


def append_log(path: Path, line: str) -> None:
    """Add one line of the master's own (why a build ended outside the pipeline)."""
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)  # logs/ (DataDir.private_parts)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")


def read_from(path: Path, offset: int, size: int = CHUNK) -> bytes:
    """Up to `size` bytes of `path` from `offset`; nothing when it does not exist (yet)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(size)
    except FileNotFoundError:
        return b""


async def tail_log(
    path: Path,
    finished: Callable[[], Awaitable[bool]],
    *,
    follow: bool = True,
    poll_s: float = POLL_S,
) -> AsyncIterator[bytes]:
    """The log's bytes as they are written; ends when the build is done and all is sent.

    Without `follow`, only what is there now. A queued build's log does not exist yet:
    the tail waits for it.
    """
    offset = 0
    while True:
        done = not follow or await finished()
        data = read_from(path, offset)
        if data:
            offset += len(data)
            yield data
            continue
        if done:
            return
        await asyncio.sleep(poll_s)


def sse_data(line: str) -> str:
    """One log line as one event. A carriage return inside it (a progress meter) would end
    the SSE field and let the rest read as a field of its own (`event: end`): each part
    becomes a `data:` field of the same event, which the reader joins with newlines."""
    parts = line.rstrip("\r").split("\r")
    return "".join(f"data: {part}\n" for part in parts) + "\n"


async def sse_lines(
    chunks: AsyncIterator[bytes], end: Callable[[], Awaitable[str]]
) -> AsyncIterator[str]:
    """Server-Sent Events: `data: <line>` per log line, then `event: end` with `end()`."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    async for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield sse_data(line)
    pending += decoder.decode(b"", final=True)
    if pending:
        yield sse_data(pending)
    yield f"event: end\ndata: {await end()}\n\n"
