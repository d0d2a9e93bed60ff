"""Crash recovery answers what it should (`Desk.recover`): a message a crash left stored but
unread is read on start as it would have been live, if it is recent (at most
`recover_reply_minutes`, 10, old): its command answered, its offer announced, through the
outbox, in its chat, with the flags it came with (group or private, the platform's admin
check). Older ones, and imported ones, are read silently.

The crash is simulated the way it leaves the ledger: the message stored unread (as `Desk.handle`
does when reading it fails, and as an interrupted import does), on a real ledger file; "the
restart" is a new Ledger and Desk on the same file.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.message import ChatMessage, Reply
from gpudesk.handlers.texts import say
from gpudesk.market.normalise import Valuation
from gpudesk.market.offer import Offer
from gpudesk.market.parse import parse_offers
from gpudesk.storage.ledger import Ledger
from tests.conftest import Chat, FakeClock
from tests.fakes.telegram_api import FakeTelegram
from tests.processes import start_run, telegram_config
from tests.test_run import wait_until

SELL = "出 H100 8卡 10台 北京 月租7.5w/台"
BUY = "收 H100 8卡 2台 北京 月租8w/台"  # bids above the ask: a match
SETTINGS = DeskSettings(language="en", admins=frozenset({("console", "root")}))


class Restarts:
    """One ledger file, and the desk of whichever run is up; `crash_with` stores a message
    unread, as a crash leaves it, and `restart` opens the file again and recovers."""

    def __init__(self, path: Path, clock: FakeClock):
        self.path = path
        self.clock = clock
        self.ledger = Ledger.open(path, Valuation())
        self.desk = self._desk(SETTINGS)
        self.chat = Chat(self.desk, clock)

    def _desk(self, settings: DeskSettings) -> Desk:
        desk = Desk(self.ledger, settings, clock=self.clock)
        desk.outbox_platforms = frozenset({"console"})  # as `gpudesk run` does for Telegram
        return desk

    def crash_with(self, sender: str, text: str, **extra: object) -> ChatMessage:
        message = self.chat.message(sender, text, **extra)
        self.ledger.store_message(
            message, received_at=self.clock(), source="live" if message.announce else "import"
        )
        return message

    def restart(self, settings: DeskSettings = SETTINGS) -> int:
        self.ledger.close()
        self.ledger = Ledger.open(self.path, Valuation())
        self.desk = self._desk(settings)
        self.chat.desk = self.desk
        return self.desk.recover()

    def queued(self) -> list[Reply]:
        return self.ledger.unsent_replies("console")

    def close(self) -> None:
        self.ledger.close()


@pytest.fixture
def run(db_path: Path, clock: FakeClock) -> Iterator[Restarts]:
    made = Restarts(db_path, clock)
    yield made
    made.close()


def test_a_recent_command_left_unread_is_answered_through_the_outbox(run: Restarts) -> None:
    run.chat.post("alice", SELL)
    asked = run.crash_with("bob", "/price H100")
    run.clock.advance(minutes=2)  # the bot is back two minutes later
    assert run.restart() == 1
    [answer] = run.queued()
    assert answer.outbox_id is not None  # durable: queued with the handled mark
    assert (answer.chat_id, answer.reply_to_id, answer.private) == ("room", asked.message_id, False)
    assert "H100" in answer.text and "1 seller" in answer.text
    assert run.ledger.unhandled_messages() == []
    assert run.restart() == 0  # and never again
    assert len(run.queued()) == 1


def test_a_recent_offer_left_unread_is_announced_to_its_counterparties(run: Restarts) -> None:
    run.chat.post("alice", SELL)
    run.clock.advance(hours=1)
    bid = run.crash_with("bob", BUY)
    run.clock.advance(minutes=5)
    run.restart()
    [match] = run.queued()
    assert match.kind == "match" and match.reply_to_id == bid.message_id
    assert "Alice" in match.text and "GPU Traders" in match.text  # the chat keeps its title
    assert len(run.ledger.open_offers(now=run.clock())) == 2


def test_a_handle_that_failed_is_answered_after_the_restart(run: Restarts) -> None:
    """The real path to an unread message: reading it failed (the sender heard an apology),
    it stayed in the inbox, and the next start, with the fault gone, reads it."""

    def broken(text: str) -> list[Offer]:
        raise RuntimeError("parser bug")

    run.chat.post("alice", SELL)
    faulty = Desk(run.ledger, SETTINGS, clock=run.clock, parse=broken)
    [sorry] = Chat(faulty, run.clock, _ids=iter(range(100, 200))).send("bob", BUY)
    assert sorry.text == say("en", "error.internal")
    run.clock.advance(minutes=1)
    assert run.restart() == 1
    [match] = run.queued()
    assert match.reply_to_id == "100" and "Alice" in match.text


@pytest.mark.parametrize(
    ("late", "answered"),
    [
        pytest.param(timedelta(0), True, id="at once"),
        pytest.param(timedelta(minutes=10), True, id="10 min: the limit, inclusive"),
        pytest.param(timedelta(minutes=10, seconds=1), False, id="past the limit"),
        pytest.param(timedelta(hours=3), False, id="hours late"),
    ],
)
def test_only_recent_messages_are_answered(run: Restarts, late: timedelta, answered: bool) -> None:
    run.chat.post("alice", SELL)
    run.crash_with("bob", "/price H100")
    run.crash_with("carol", BUY)
    run.clock.advance(seconds=late.total_seconds())
    assert run.restart() == 2
    assert len(run.queued()) == (2 if answered else 0)
    # Read all the same: the old offer is booked, silently.
    assert len(run.ledger.open_offers(now=run.clock())) == 2
    assert run.ledger.unhandled_messages() == []


def test_the_limit_is_a_setting_and_zero_answers_nothing(run: Restarts) -> None:
    run.crash_with("bob", "/help")
    run.clock.advance(minutes=30)
    run.restart(DeskSettings(language="en", recover_reply_minutes=60))
    assert len(run.queued()) == 1
    run.crash_with("bob", "/help")
    run.restart(DeskSettings(language="en", recover_reply_minutes=0))
    assert len(run.queued()) == 1  # nothing more


def test_an_old_admin_command_is_not_run(run: Restarts) -> None:
    """Read silently is read as history: an hour-old /pause is not applied behind the group's
    back (its admin heard an apology at the time)."""
    run.crash_with("root", "/pause")
    run.clock.advance(hours=1)
    run.restart()
    assert run.queued() == []
    assert run.ledger.chat("console", "room").match_replies


def test_imported_history_left_unread_stays_silent(run: Restarts) -> None:
    run.chat.post("alice", SELL)
    run.crash_with("bob", BUY, announce=False)
    run.crash_with("bob", "/price H100", announce=False)
    assert run.restart() == 2
    assert run.queued() == []
    assert len(run.ledger.open_offers(now=run.clock())) == 2


def test_a_group_message_keeps_its_group_and_a_private_one_its_privacy(run: Restarts) -> None:
    run.crash_with("bob", "/help")
    run.crash_with("bob", "/help", chat_id="bob", chat_title=None, is_group=False)
    run.restart()
    in_group, private = run.queued()
    assert (in_group.chat_id, in_group.private) == ("room", False)
    assert "This group:" in in_group.text  # group-only: the group's settings
    assert (private.chat_id, private.private) == ("bob", True)
    assert "This group:" not in private.text


def test_a_stored_positive_admin_check_is_trusted_on_recovery(run: Restarts) -> None:
    run.crash_with("dave", "/pause", sender_is_admin=True)  # the platform said dave is an admin
    run.restart()
    [answer] = run.queued()
    assert "Match replies are off" in answer.text
    assert not run.ledger.chat("console", "room").match_replies


def test_recovery_never_makes_anyone_an_admin(run: Restarts) -> None:
    run.crash_with("erin", "/pause")  # no check made, or the platform said no
    run.crash_with("erin", "/digest off")
    run.restart()
    refusals = run.queued()
    assert [r.text for r in refusals] == [
        say("en", "error.admin_only", command="/pause"),
        say("en", "error.admin_only", command="/digest"),
    ]
    chat = run.ledger.chat("console", "room")
    assert chat.match_replies and chat.weekly_digest
    # In a private chat admin commands need no admin (they concern that chat alone): the
    # private flag is what is kept, so a group message cannot pass for a private one.
    run.crash_with("erin", "/pause", chat_id="erin", chat_title=None, is_group=False)
    run.restart()
    assert "Match replies are off" in run.queued()[-1].text


def test_rows_stored_before_the_flags_existed_read_as_a_group_and_no_admin(
    run: Restarts,
) -> None:
    """A ledger from before the flags: the migration gives its unread rows the safe values,
    a group (admin commands need an admin) and no admin."""
    run.ledger.close()
    old = sqlite3.connect(run.path)
    with old:  # the schema as it was: no flags, no digest switch
        for table, column in (
            ("messages", "is_group"),
            ("messages", "sender_is_admin"),
            ("chats", "weekly_digest"),
        ):
            old.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        old.execute(
            "DELETE FROM _sqlite_migrations"
            " WHERE name IN ('m_recover_message_flags', 'm_digest_switch_chats')"
        )
        old.execute(
            "INSERT INTO messages (platform, chat_id, message_id, sender_id, sender_name,"
            " poster_id, poster_name, text, sent_at, received_at, source, handled)"
            " VALUES ('console', 'dm', '1', 'dave', 'Dave', 'dave', 'Dave', '/pause', ?, ?,"
            " 'live', 0)",
            (run.clock().isoformat(), run.clock().isoformat()),
        )
    old.close()
    run.restart()
    [refused] = run.queued()
    assert refused.text == say("en", "error.admin_only", command="/pause")
    assert not refused.private
    assert run.ledger.chat("console", "dm").weekly_digest  # the digest is on by default


def test_a_message_that_fails_again_stays_unread_and_does_not_stop_the_start(
    run: Restarts,
) -> None:
    def picky(text: str) -> list[Offer]:
        if "boom" in text:
            raise RuntimeError("still broken")
        return list(parse_offers(text))

    run.crash_with("alice", f"{SELL} boom")
    run.crash_with("bob", "/help")
    run.ledger.close()
    run.ledger = Ledger.open(run.path, Valuation())
    desk = Desk(run.ledger, SETTINGS, clock=run.clock, parse=picky)
    desk.outbox_platforms = frozenset({"console"})
    assert desk.recover() == 1
    assert [m.text for _, m in run.ledger.unhandled_messages()] == [f"{SELL} boom"]
    assert len(run.queued()) == 1


def test_without_an_outbox_the_adapter_takes_the_answers_once(
    ledger: Ledger, clock: FakeClock
) -> None:
    chat = Chat(Desk(ledger, SETTINGS, clock=clock), clock, platform="wechat")
    message = chat.message("bob", "/help")
    ledger.store_message(message, received_at=clock())
    desk = Desk(ledger, SETTINGS, clock=clock)  # WeChat: no outbox
    assert desk.recover() == 1
    [answer] = desk.take_recovered_replies()
    assert answer.outbox_id is None and answer.reply_to_id == message.message_id
    assert desk.take_recovered_replies() == []
    assert ledger.outbox_counts()["queued"] == 0


async def test_gpudesk_run_sends_a_recovered_answer_on_start(tmp_path: Path) -> None:
    """End to end: a real `gpudesk run` starts on a ledger with an unread /price, recovers it
    into the outbox before the Telegram adapter starts, and the adapter sends the answer."""
    db = tmp_path / "desk.db"
    async with FakeTelegram() as api:
        group = api.group("GPU Traders")
        now = datetime.now(UTC)
        with Ledger.open(db) as ledger:
            desk = Desk(ledger, DeskSettings(language="en"))
            base = {"platform": "telegram", "chat_id": str(group.id), "chat_title": "GPU Traders"}
            desk.handle(
                ChatMessage(
                    **base, sender_id="1", sender_name="Alice", text=SELL,
                    sent_at=now - timedelta(minutes=3), message_id="1",
                )
            )  # fmt: skip
            ledger.store_message(
                ChatMessage(
                    **base, sender_id="2", sender_name="Bob", text="/price H100",
                    sent_at=now - timedelta(minutes=1), message_id="2",
                ),
                received_at=now,
            )  # fmt: skip
        process = await start_run(telegram_config(tmp_path, api, db), cwd=tmp_path)
        try:
            [answer] = await api.wait_for_sent(1, timeout=20)
            assert answer.chat_id == group.id
            assert "H100" in answer.plain and "1 seller" in answer.plain
            await wait_until(lambda: api.polling, 20, "the bot to poll")
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, stderr.decode()
        assert "read 1 message(s) left unread by the last run" in stderr.decode()
        with Ledger.open(db) as ledger:  # it went through the outbox, durable, and was marked
            assert ledger.outbox_counts()["sent"] == 1
