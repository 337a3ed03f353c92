"""Every command and option is documented in README.md (after sqlite-utils' tests/test_docs.py)."""

import re

import click
import pytest

from archive.cli import cli
from conftest import ROOT

README = (ROOT / "README.md").read_text()
COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_command_is_documented(command):
    assert re.search(rf"podarchive {command}\b", README), f"README.md does not show `podarchive {command}`"


@pytest.mark.parametrize("command,option", [
    (name, opt)
    for name in COMMANDS
    for param in cli.commands[name].params
    if isinstance(param, click.Option)
    for opt in param.opts
    if opt.startswith("--")
])
def test_option_is_documented(command, option):
    assert option in README, f"README.md does not mention {option} of `podarchive {command}`"


def test_readme_shows_the_two_commands():
    assert "make run" in README and "make test" in README
