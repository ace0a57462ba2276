"""The README as tests: its code blocks, the `livestrap` commands they name, and the CLI.

Fenced ```sh blocks are examples the README walk (tests/e2e/test_front_door.py) runs as
written, in order, in one shell; a block right after `<!-- not run: WHY -->` is skipped.
```text blocks are synopses (usage lines): only checked against the CLI, like every
command line in a ```sh block: each `livestrap ...` names a real command path, and every
`--flag` on it is an option of that command or of a group above it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[1] / "README.md"
NOT_RUN = re.compile(r"<!--\s*not run:")
FENCE = re.compile(r"^```(\w*)\s*$")
# A `livestrap` word that starts a command: at a line's start, after a prompt, a pipe,
# `$(`, `;`, `&&` or `||`; up to the end of that command.
COMMAND = re.compile(r"(?:^|\$ |\$\(|[|;]\s*|&&\s*)livestrap((?:\s+[^\s|;)&]+)*)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?=[\s=\]|,)]|$)")


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # 1-based line of the first line inside the fence
    text: str
    run: bool  # an example the walk runs (not a synopsis, not marked `not run`)


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        lang = opened.group(1)
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        start = i + 1
        i = start
        while i < len(lines) and not lines[i].startswith("```"):
            i += 1
        body = "\n".join(lines[start:i]) + "\n"
        runs = lang == "sh" and not NOT_RUN.search(before)
        found.append(Block(lang, start + 1, body, runs))
        i += 1
    return found


@dataclass(frozen=True)
class Mention:
    line: int
    words: list[str]  # what follows `livestrap`, split like a shell would (roughly)

    def __str__(self) -> str:
        return f"README.md:{self.line}: livestrap {' '.join(self.words)}"


def mentions(text: str) -> list[Mention]:
    """Every `livestrap ...` command line in the README's sh and text blocks."""
    found = []
    for block in blocks(text):
        if block.lang not in ("sh", "text"):
            continue
        for offset, raw in enumerate(block.text.splitlines()):
            line = raw.split(" #", 1)[0].strip()
            if line.startswith("#"):
                continue
            if block.lang == "text":  # a synopsis: `a|b` and `(x | y)` are its own syntax
                rests = [line[len("livestrap") :]] if line.startswith("livestrap ") else []
            else:
                rests = [m.group(1) for m in COMMAND.finditer(line)]
            for rest in rests:
                try:
                    words = shlex.split(rest)
                except ValueError:
                    words = rest.split()
                found.append(Mention(block.line + offset, words))
    return found


def _children(command: Any) -> dict[str, Any]:
    return dict(getattr(command, "commands", {}) or {})


def _options(command: Any) -> set[str]:
    """The options --help shows: a hidden (deprecated) spelling in the README is stale."""
    shown = [p for p in command.params if not getattr(p, "hidden", False)]
    return {opt for p in shown for opt in (*p.opts, *p.secondary_opts)}


def check_mention(root: Any, mention: Mention) -> list[str]:
    """What is wrong with one README command line ([] when the CLI has all it names)."""
    command, path, known = root, ["livestrap"], _options(root)
    words = list(mention.words)
    while _children(command) and words and re.fullmatch(r"[a-z][a-z0-9-]*", words[0]):
        name = words.pop(0)
        child = _children(command).get(name)
        if child is None:
            return [f"{mention}: no command `{' '.join([*path, name])}`"]
        command, path = child, [*path, name]
        known |= _options(command)
    # A group alone is a mistake, unless the line is about the group itself: its --help,
    # --version, or its own options before a COMMAND placeholder.
    about_group = {"--help", "--version", "COMMAND"} & set(mention.words)
    if _children(command) and not about_group:
        return [f"{mention}: `{' '.join(path)}` is a group; name one of its commands"]
    known |= {"--help"}
    problems = []
    for word in words:
        for flag in FLAG.findall(word):
            if flag not in known:
                problems.append(f"{mention}: `{' '.join(path)}` has no option {flag}")
    return problems


def leaf_paths(root: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every runnable command, e.g. ('images', 'list'); hidden ones left out."""
    paths = []
    for name, child in sorted(_children(root).items()):
        if getattr(child, "hidden", False):
            continue
        if _children(child):
            paths += leaf_paths(child, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


def cli_root() -> Any:
    import typer.main

    from livestrap.cli import app

    return typer.main.get_command(app)
