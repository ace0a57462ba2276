"""Every `livestrap` command the README shows exists, with the options it names, and every
command the CLI has is in the README: a rename on one side only fails here."""

from __future__ import annotations

import pytest

from readme import README, Mention, blocks, check_mention, cli_root, leaf_paths, mentions

pytestmark = pytest.mark.unit


def test_readme_commands_exist_with_their_options() -> None:
    root = cli_root()
    found = mentions(README.read_text())
    assert len(found) > 30, "the README's command lines were not found"
    problems = [p for m in found for p in check_mention(root, m)]
    assert not problems, "\n".join(problems)


def test_every_command_is_in_the_readme() -> None:
    shown = {tuple(w for w in m.words if not w.startswith("-"))[:2] for m in mentions(
        README.read_text())}  # fmt: skip
    missing = [
        " ".join(path)
        for path in leaf_paths(cli_root())
        if not any(s[: len(path)] == path for s in shown)
    ]
    assert not missing, "commands the README does not show: " + ", ".join(missing)


def test_a_renamed_command_or_option_is_caught() -> None:
    root = cli_root()
    assert check_mention(root, Mention(1, ["images", "list"])) == []
    assert check_mention(root, Mention(1, ["images", "lst"]))
    assert check_mention(root, Mention(1, ["images", "list", "--no-such-flag"]))
    assert check_mention(root, Mention(1, ["images"]))  # a group alone does nothing
    # a deprecated spelling still works, but the README must show the current one
    assert check_mention(root, Mention(1, ["netboot", "nginx-config", "--master", "x"]))


def test_blocks_marked_not_run_are_skipped() -> None:
    text = "x\n\n<!-- not run: why -->\n```sh\nmake demo\n```\n\n"
    text += "```sh\nlivestrap images list\n```\n"
    found = blocks(text)
    assert [(b.lang, b.line, b.run) for b in found] == [("sh", 5, False), ("sh", 9, True)]
