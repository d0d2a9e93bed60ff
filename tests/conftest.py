"""Shared fixtures: a real ledger file, a clock that only moves when told, and a chat to talk in.

def test_something(chat):
    chat.post("alice", "出 H100 8卡 10台 北京 月租7.5w/台")
    assert "H100" in chat.post("bob", "/price H100")
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.message import ChatMessage, Reply
from gpudesk.market.normalise import Valuation
from gpudesk.storage.ledger import Ledger

START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Shanghai


class FakeClock:
    """Time that stands still until a test moves it: `clock.advance(hours=2)`."""

    def __init__(self, start: datetime = START):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Chat:
    """A group chat on a desk: post as anyone, get the desk's replies back as text."""

    desk: Desk
    clock: FakeClock
    platform: str = "console"
    chat_id: str = "room"
    chat_title: str = "GPU Traders"
    replies: list[Reply] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def message(self, sender: str, text: str, **extra: object) -> ChatMessage:
        values: dict[str, object] = {
            "platform": self.platform,
            "chat_id": self.chat_id,
            "chat_title": self.chat_title,
            "sender_id": sender,
            "sender_name": sender.title(),
            "text": text,
            "sent_at": self.clock(),
            "message_id": str(next(self._ids)),
        }
        values.update(extra)
        return ChatMessage(**values)  # type: ignore[arg-type]

    def send(self, sender: str, text: str, **extra: object) -> list[Reply]:
        replies = self.desk.handle(self.message(sender, text, **extra))
        self.replies.extend(replies)
        return replies

    def post(self, sender: str, text: str, **extra: object) -> str:
        """The text of the desk's replies to this message, joined ("" for silence)."""
        return "\n".join(reply.text for reply in self.send(sender, text, **extra))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def ledger(db_path: Path) -> Iterator[Ledger]:
    with Ledger.open(db_path, Valuation()) as opened:
        yield opened


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> DeskSettings:
    return DeskSettings(language="en", admins=frozenset({("console", "root")}))


@pytest.fixture
def desk(ledger: Ledger, settings: DeskSettings, clock: FakeClock) -> Desk:
    return Desk(ledger, settings, clock=clock)


@pytest.fixture
def chat(desk: Desk, clock: FakeClock) -> Chat:
    return Chat(desk, clock)
