"""One exception tree, so the CLI and the API can turn any failure into one clear message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class LivestrapError(Exception):
    """Base of every error livestrap raises on purpose; its text is shown to the operator."""

    exit_code = 1  # what the CLI exits with after printing the message


class OptionError(LivestrapError):
    """A flag (or its environment variable) has a value that cannot work; the CLI exits 2,
    as click does for bad options."""

    exit_code = 2


class StartupError(LivestrapError):
    """The master cannot start: its database, data dir or listen address is unusable."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a spec, for a page to list next to the text: the field (pydantic's
    loc joined with ".", "" for the whole document) and, when known, the line and column."""

    field: str
    message: str
    line: int | None = None
    column: int | None = None


class SpecError(LivestrapError):
    """The build spec is invalid; raised before any download or long work starts.
    `problems`: the same, one per field, when the checks could tell them apart."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)

    def listed(self) -> list[Problem]:
        """What a page lists next to the text: the problems, or the message as one."""
        return list(self.problems) or [Problem("", str(self))]


class StoreError(LivestrapError):
    """An image store operation was refused or failed; the store is left as it was."""


class RepoError(LivestrapError):
    """A package could not be published, or a spec claims the master's repository name."""


class NotFoundError(LivestrapError):
    """The thing asked for does not exist (an image, a node, a build)."""


class ImageNotFound(StoreError, NotFoundError):
    """No image with that id in the store."""


class ConflictError(LivestrapError):
    """The request conflicts with the current state (e.g. deleting the active image)."""


class ArchiveError(StoreError):
    """An image bundle is unsafe or does not match its metadata."""


class BuildError(LivestrapError):
    """A build stage failed. `stage` names it so the operator knows where to look."""

    def __init__(self, stage: str, message: str, log_tail: str = "") -> None:
        self.stage = stage
        self.message = message
        self.log_tail = log_tail
        super().__init__(f"stage {stage}: {message}")


class CommandError(BuildError):
    """A command run by a stage exited non-zero."""

    def __init__(self, stage: str, argv: list[str], returncode: int, log_tail: str) -> None:
        self.argv = argv
        self.returncode = returncode
        name = argv[argv.index("--") + 1] if argv[0] == "unshare" and "--" in argv else argv[0]
        super().__init__(stage, f"{name} exited with status {returncode}", log_tail=log_tail)


class BuildCancelled(BuildError):
    """The build was interrupted (Ctrl-C, SIGTERM or a cancel request); cleanup has run."""

    def __init__(self, stage: str, reason: str = "interrupted") -> None:
        super().__init__(stage, f"build cancelled ({reason})")
