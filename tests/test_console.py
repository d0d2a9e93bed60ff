"""The console chat, driven through standard input as a user would script it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpudesk.bot.console import ConsoleChat, split_speaker
from gpudesk.handlers.desk import Desk

ROOT = Path(__file__).resolve().parents[1]


def gpudesk(
    *args: str, stdin: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUDESK_")}
    return subprocess.run(
        [sys.executable, "-m", "gpudesk", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=cwd or ROOT,
        env=env,
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("alice: 出 H100", ("alice", "出 H100")),
        ("bob：收 4090", ("bob", "收 4090")),  # a full-width colon, as Chinese keyboards type
        ("出 H100 8卡", ("me", "出 H100 8卡")),
        ("/price H100", ("me", "/price H100")),
        ("WTS: 8x H100", ("WTS", "8x H100")),
        ("http://example.com", ("me", "http://example.com")),
    ],
)
def test_a_line_names_its_speaker_or_is_said_by_me(line: str, expected: tuple[str, str]) -> None:
    assert split_speaker(line) == expected


def test_a_scripted_session_prints_only_the_desk_replies(tmp_path: Path) -> None:
    script = (
        "alice: 出 H100 8卡 10台 北京 月租7.5w/台\nbob: 收 H100 8卡 2台 月租8w/台\n/price H100\n"
    )
    result = gpudesk("console", "--db", str(tmp_path / "x.db"), stdin=script.encode())
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "1. alice" in out  # bob's bid was answered with alice's ask
    assert "卖方 1 家" in out  # /price in the default language, Chinese
    assert "gpudesk>" not in out


def test_the_ledger_file_keeps_the_session(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    gpudesk("console", "--db", db, stdin="alice: 出 H100 8卡 10台 月租7.5w/台\n".encode())
    result = gpudesk("console", "--db", db, stdin=b"alice: /mine\n")
    assert "H100" in result.stdout.decode()


def test_invalid_utf8_and_control_characters_are_read_not_fatal(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    stdin = b"alice: \xff\xfe bad bytes \x00\x07\nalice: /help\n"
    result = gpudesk("console", "--db", db, stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    assert "/price" in result.stdout.decode()


def test_empty_and_huge_messages_are_stored_and_ignored(desk: Desk) -> None:
    console = ConsoleChat(desk)
    assert console.say("") == []
    assert console.say("alice: " + "出 H100 " * 150_000) == []  # about 1 MB
    assert desk.ledger.message_count() == 1
    assert console.say("/help")  # the desk still answers


def test_gpudesk_help_lists_the_commands() -> None:
    out = gpudesk("--help").stdout.decode()
    for command in ("run", "console", "parse"):
        assert command in out
