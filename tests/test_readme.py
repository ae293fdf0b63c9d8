"""A newcomer has only the README: what it says about commands, the LAN server, the download, backups and MySQL
matches what SigDesk does."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from sigdesk.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _command_lines() -> list[str]:
    """Every line of a code block, and every inline code span, that runs `sigdesk`."""
    spans = re.findall(r"`([^`\n]*\bsigdesk [^`\n]*)`", README)
    blocks = re.findall(r"```[a-z]*\n(.*?)```", README, re.S)
    return spans + [line for block in blocks for line in block.splitlines() if re.search(r"(^|\s)sigdesk ", line)]


def _resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The command the words name (as far as they name subcommands) and the words that did."""
    context = click.Context(main)
    command: click.Command = main
    used: list[str] = []
    for word in words:
        if not isinstance(command, click.Group):
            break
        found = command.get_command(context, word)
        if found is None:
            break
        command, used = found, [*used, word]
    return command, used


def _documented() -> list[tuple[list[str], str, str]]:
    """(the words after `sigdesk`, the options given after them, the line) for each command the README shows."""
    found = []
    for line in _command_lines():
        code = line.split("#", 1)[0]  # a shell comment may name options of other commands
        for match in re.finditer(r"(?:^|[\s(/])sigdesk((?: -v)?(?: [a-z][a-z-]*)*)(.*)", code):
            words = [word for word in match.group(1).split() if word != "-v"]
            found.append((words, match.group(2), line.strip()))
    return found


def test_the_readme_shows_commands():
    commands = {" ".join(_resolve(words)[1]) for words, _, _ in _documented()}
    assert {"serve", "user create", "user list", "token list", "settings get", "backup create", "export"} <= commands


@pytest.mark.parametrize(
    "words, options, line", _documented(), ids=lambda value: value if isinstance(value, str) else None
)
def test_every_command_the_readme_shows_exists_with_the_options_it_names(words, options, line):
    command, used = _resolve(words)
    if words:
        assert used, f"the README runs a command SigDesk does not have: {line}"
    if isinstance(command, click.Group):
        assert len(used) == len(words), f"`sigdesk {' '.join(used)}` has no command {words[len(used)]!r}: {line}"
    known = {name for param in [*command.params, *main.params] for name in (*param.opts, *param.secondary_opts)}
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", options))
    assert named <= known | {"--help"}, f"`sigdesk {' '.join(used)}` has no {sorted(named - known)}: {line}"


def _serve_default(name: str):
    return next(param.default for param in _resolve(["serve"])[0].params if param.name == name)


def test_the_readme_says_where_the_lan_server_listens_as_serve_does():
    host, port = _serve_default("host"), _serve_default("port")
    assert (host, port) == ("0.0.0.0", 8765)
    assert f"listens on **port {port} on all\ninterfaces** (`{host}`)" in README
    assert "reachable from the office network, answering only the addresses\non its allow-list" in README
    assert "`--port N` when 8765 is taken" in README


def test_the_readme_says_how_big_the_download_and_the_install_are():
    assert re.search(r"The install downloads about \d+ MB \(\d+ MB of it is Qt", README)
    assert re.search(r"takes about [\d.]+ GB in `\.venv`", README)
    assert re.search(r"The Linux `\.deb` is a \d+ MB download and takes \d+ MB installed", README)


def test_the_readme_says_where_backup_create_writes_without_out():
    create, used = _resolve(["backup", "create"])  # CLI groups load when first named, as when run
    assert used == ["backup", "create"]
    out = next(param for param in create.params if param.name == "out")
    assert not out.required
    assert (
        "Without `--out`, `backup create` writes `sigdesk-YYYYMMDD-HHMMSS.sigdesk-backup` (UTC time) into the\n"
        "backup folder set in **Settings → Backups**, so the page lists it, or, when none is set, into the current\n"
        "folder" in README
    )


def test_the_readme_says_a_mysql_database_must_exist_first_and_how_to_make_it():
    section = README.split("### MySQL / MariaDB", 1)[1].split("\n#", 1)[0]
    assert "**the database itself must exist first**" in section
    assert "CREATE DATABASE sigdesk CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;" in section
    # the words of sigdesk.db.Database.check_connection's refusal (tests/test_cli.py runs it against MariaDB)
    assert "the database 'sigdesk' does not exist" in section
