"""The docs cannot drift: every command, chat command and set-up step is in the README, and
every CLI command has help with an example."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gpudesk.bot.cli import cli
from gpudesk.handlers.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_shows_the_two_setup_commands() -> None:
    assert "make run" in README and "make test" in README


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_cli_command_is_in_the_readme_and_has_help_with_an_example(name: str) -> None:
    assert f"gpudesk {name}" in README
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`gpudesk {name} --help` shows no example"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_chat_command_is_in_the_readme(command: object) -> None:
    name = command.name  # type: ignore[attr-defined]
    assert f"/{name}" in README, f"/{name} is not documented in README.md"


def test_the_readme_quotes_real_benchmark_and_score_figures() -> None:
    assert "PLACEHOLDER" not in README
