"""Every `flopledger ...` command the README and the docs show names a command and options that exist."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flopledger.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").rglob("*.md")])
_COMMAND = re.compile(r"(?:^|[\s`])flopledger ((?:[a-z][a-z-]*\s?)+)(.*)")
_OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def _command(path: tuple[str, ...]) -> object:
    import typer.main

    command: object = typer.main.get_command(app)
    for word in path:
        command = getattr(command, "commands", {})[word]
    return command


@functools.cache
def _help(path: tuple[str, ...]) -> str | None:
    """The help text of ``flopledger PATH``, None when PATH is no command."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
    return result.output if result.exit_code == 0 else None


def _documented() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for n, line in enumerate(doc.read_text("utf-8").splitlines(), 1):
            if _COMMAND.search(line):
                found.append((f"{doc.relative_to(ROOT)}:{n}", line))
    return found


def test_the_docs_show_commands() -> None:
    assert len(_documented()) > 30


@pytest.mark.parametrize(("where", "line"), _documented(), ids=[w for w, _ in _documented()])
def test_a_documented_command_names_options_the_command_has(where: str, line: str) -> None:
    match = _COMMAND.search(line)
    assert match is not None
    words = match.group(1).split()
    path: tuple[str, ...] = ()
    for word in words:  # the longest run of words that names a command
        if word not in getattr(_command(path), "commands", {}):
            break
        path = (*path, word)
    help_text = _help(path)
    assert help_text is not None
    if path and getattr(_command(path), "commands", None) and len(words) > len(path):  # a group, then a typo
        raise AssertionError(f"{where}: `flopledger {' '.join(path)}` has no subcommand {words[len(path)]!r}")
    rest = " ".join(words[len(path) :]) + " " + match.group(2)
    options = _OPTION.findall(rest.split("#")[0])  # not the options a trailing comment names
    missing = [o for o in options if o not in help_text]
    assert not missing, f"{where}: `flopledger {' '.join(path)}` has no {', '.join(missing)}"


def _commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    found: list[tuple[tuple[str, ...], object]] = [(path, group)]
    for name, sub in getattr(group, "commands", {}).items():  # a group's subcommands
        found += _commands(sub, (*path, name))
    return found


def test_help_texts_keep_their_brackets() -> None:
    """Rich reads "[team.NAME]" in a help text as markup and drops it unless it is escaped."""
    import typer.main

    checked = 0
    for path, command in _commands(typer.main.get_command(app)):
        texts = [getattr(command, "help", None) or ""]
        texts += [getattr(p, "help", None) or "" for p in getattr(command, "params", [])]
        shown = _help(path)
        assert shown is not None
        for token in re.findall(r"\\?\[[^\]\s]*\]", " ".join(texts)):
            checked += 1
            assert token.lstrip("\\") in shown, f"`flopledger {' '.join(path)} --help` drops {token}"
    assert checked >= 3
