"""Guarantee 4, "nothing queued is dropped": the desk queues its replies in the ledger's outbox
in the transaction that marks their message handled; the Telegram adapter marks each sent, and
on start sends what a crash or a stop left queued, unless it waited past its age limit (then it
is marked expired, not sent) (issue 9). WeChat's side: `tests/test_wechat_outbox.py`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gpudesk.bot.telegram import TelegramAdapter
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.message import ChatMessage, Reply
from gpudesk.market.normalise import Valuation
from gpudesk.market.offer import Offer
from gpudesk.storage.ledger import Ledger
from tests.conftest import START, Chat, FakeClock
from tests.fakes.telegram_api import FakeTelegram
from tests.test_telegram import BUY, FAST, LOG, SELL, running

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def telegram_desk(tmp_path: Path) -> Iterator[Desk]:
    with Ledger.open(tmp_path / "ledger.db", Valuation()) as ledger:
        desk = Desk(ledger, DeskSettings(language="en"))
        desk.outbox_platforms = frozenset({"telegram"})
        yield desk


def test_queued_replies_come_back_until_marked_sent_or_failed(ledger: Ledger) -> None:
    """The outbox keeps every field of a reply, and only queued ones are handed out."""
    replies = [
        Reply("telegram", "-100", "one <b>", reply_to_id="7", mention_ids=("5", "6"), kind="match"),
        Reply("telegram", "42", "two", private=True, image=b"\x89PNG"),
        Reply("wechat", "room@chatroom", "three"),
    ]
    queued = ledger.queue_replies(replies, message_row=None, at=NOW)
    assert [r.outbox_id for r in queued] == [1, 2, 3]
    assert ledger.unsent_replies("telegram") == queued[:2]
    ledger.finish_reply(1, at=NOW)
    ledger.finish_reply(2, at=NOW, status="failed", note="403")
    assert ledger.unsent_replies("telegram") == []
    assert ledger.outbox_counts() == {
        "queued": 1,
        "sending": 0,
        "sent": 1,
        "failed": 1,
        "expired": 0,
    }
    with pytest.raises(ValueError, match="outbox status"):
        ledger.finish_reply(3, at=NOW, status="lost")


def test_a_private_answer_to_a_group_message_comes_back_unthreaded(chat: Chat) -> None:
    """A reply can only quote a message of its own chat; the ledger knows which chat it was."""
    chat.desk.outbox_platforms = frozenset({"console"})
    chat.send("alice", SELL)
    stored = chat.desk.ledger.conn.execute("SELECT id FROM messages").fetchone()[0]
    ledger = chat.desk.ledger
    ledger.queue_replies(
        [Reply("console", "alice", "psst", reply_to_id="1", private=True)],
        message_row=stored,
        at=NOW,
    )
    [private] = ledger.unsent_replies("console")
    assert private.reply_to_id is None


def test_the_desk_queues_its_answer_with_the_handled_mark(chat: Chat) -> None:
    """Replies on an outbox platform carry their outbox id; the row is committed with them."""
    chat.desk.outbox_platforms = frozenset({"console"})
    [answer] = chat.send("bob", "/help")
    assert answer.outbox_id is not None
    [queued] = chat.desk.ledger.unsent_replies("console")
    assert queued == answer
    assert chat.desk.ledger.unhandled_messages() == []


def test_without_an_outbox_platform_replies_are_only_returned(chat: Chat) -> None:
    [answer] = chat.send("bob", "/help")
    assert answer.outbox_id is None
    assert chat.desk.ledger.outbox_counts()["queued"] == 0


def test_a_failure_mid_answer_queues_nothing_and_keeps_the_message_unread(
    ledger: Ledger, clock: FakeClock
) -> None:
    """The rollback takes the offers and the queued replies with it; the message stays in the
    inbox for `recover()`, and the sender hears an apology."""

    def broken_parse(text: str) -> list[Offer]:
        raise RuntimeError("parser bug")

    desk = Desk(ledger, DeskSettings(language="en"), clock=clock, parse=broken_parse)
    desk.outbox_platforms = frozenset({"console"})
    chat = Chat(desk, clock)
    [sorry] = chat.send("alice", SELL)
    assert sorry.outbox_id is None and "wrong" in sorry.text.lower()
    assert [m.text for _, m in ledger.unhandled_messages()] == [SELL]
    assert ledger.outbox_counts()["queued"] == 0 and ledger.offer_count() == 0


async def test_replies_left_queued_by_a_stop_are_sent_on_the_next_start(
    telegram_desk: Desk,
) -> None:
    """A group's pacing holds replies back; the stop's drain gives up on them, and they stay
    queued in the ledger until the next start sends them."""
    async with FakeTelegram() as api:
        group = api.group("G")
        asks = [api.inject_message(group, api.user(f"s{n}"), f"{SELL} #{n}") for n in range(3)]
        bids = [api.inject_message(group, api.user(f"b{n}"), f"{BUY} #{n}") for n in range(5)]
        slow = {**FAST, "group_messages_per_minute": 2, "group_burst": 1, "drain_timeout": 0.2}
        async with running(api, telegram_desk, outbox=telegram_desk.ledger, **slow):
            await api.wait_until_confirmed()
            await api.wait_for_sent(1)
        first = len(api.sent)
        assert first < 5
        assert telegram_desk.ledger.outbox_counts() == {
            "queued": 5 - first,
            "sending": 0,
            "sent": first,
            "failed": 0,
            "expired": 0,
        }

        async with running(api, telegram_desk, outbox=telegram_desk.ledger):
            await api.wait_for_sent(5, timeout=10)
            await asyncio.sleep(0.1)
        assert sorted(s.reply_to for s in api.sent) == bids  # each bid answered, once
        assert not set(asks) & {s.reply_to for s in api.sent}
        assert telegram_desk.ledger.outbox_counts() == {
            "queued": 0,
            "sending": 0,
            "sent": 5,
            "failed": 0,
            "expired": 0,
        }


async def test_a_crash_between_commit_and_send_loses_no_reply(telegram_desk: Desk) -> None:
    """The process "dies" right after the desk committed a match: the redelivered update is
    ignored, and the answer comes from the outbox instead."""
    crashed = False

    class CrashingDesk:
        def handle(self, message: ChatMessage) -> list[Reply]:
            nonlocal crashed
            replies = telegram_desk.handle(message)
            if replies and not crashed:
                crashed = True
                raise asyncio.CancelledError  # the replies never reach the adapter's queue
            return replies

        def needs_admin(self, text: str) -> bool:
            return telegram_desk.needs_admin(text)

        def command_menu(self, language: str) -> list[tuple[str, str]]:
            return telegram_desk.command_menu(language)

    async with FakeTelegram() as api:
        group, seller, buyer = api.group("G"), api.user("Seller"), api.user("Buyer")
        api.inject_message(group, seller, SELL)
        wanted = api.inject_message(group, buyer, BUY)
        first = TelegramAdapter(
            api.token, CrashingDesk(), logger=LOG, base_url=api.base_url, **FAST
        )
        await first.run_until_stopped()
        assert crashed and api.sent == []
        async with running(api, telegram_desk, outbox=telegram_desk.ledger):
            await api.wait_until_confirmed()
            [match] = await api.wait_for_sent(1)
            await asyncio.sleep(0.2)
    assert match.reply_to == wanted and "Seller" in match.plain
    assert len(api.sent) == 1
    assert telegram_desk.ledger.outbox_counts()["sent"] == 1


async def test_a_reply_telegram_refuses_is_marked_failed_not_retried(
    telegram_desk: Desk,
) -> None:
    async with FakeTelegram() as api:
        group, kim = api.group("G"), api.user("Kim")
        ledger = telegram_desk.ledger
        ledger.queue_replies(
            [Reply("telegram", str(kim.id), "you never wrote to me", private=True)],
            message_row=None,
            at=datetime.now(UTC),  # left queued a moment ago: fresh enough to send
        )
        async with running(api, telegram_desk, outbox=ledger):
            api.inject_message(group, kim, "/help")
            await api.wait_for_sent(1)
            await api.wait_for_calls("sendMessage", 2)
            await asyncio.sleep(0.1)
    assert ledger.outbox_counts() == {
        "queued": 0,
        "sending": 0,
        "sent": 1,
        "failed": 1,
        "expired": 0,
    }


async def test_an_alert_caught_mid_send_by_a_crash_is_never_sent_again(ledger: Ledger) -> None:
    """Watch alerts go at most once: marked `sending` first, a crash leaves them unsent for good."""
    [alert, answer] = ledger.queue_replies(
        [
            Reply("telegram", "42", "H100 at your price", private=True, kind="alert"),
            Reply("telegram", "-100", "an answer"),
        ],
        message_row=None,
        at=START,
    )
    assert alert.outbox_id is not None and answer.outbox_id is not None
    ledger.begin_reply(alert.outbox_id, at=START)  # the adapter begins alerts only
    # ...the process dies here, before either is marked sent: the answer goes again, the alert
    # does not.
    assert [r.text for r in ledger.unsent_replies("telegram")] == ["an answer"]
    assert ledger.outbox_counts()["sending"] == 1


async def test_replies_left_queued_too_long_are_expired_on_start_not_sent(
    telegram_desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    """After a long outage, a reply queued more than `resend_within` ago is marked expired and
    logged, and kept in the ledger; a younger one still goes."""
    ledger = telegram_desk.ledger
    async with FakeTelegram() as api:
        group = api.group("G")
        now = datetime.now(UTC)
        for text, hours in (("from yesterday", 25), ("from an hour ago", 1)):
            ledger.queue_replies(
                [Reply("telegram", str(group.id), text, kind="match")],
                message_row=None,
                at=now - timedelta(hours=hours),
            )
        with caplog.at_level(logging.WARNING, logger=LOG.name):
            async with running(api, telegram_desk, outbox=ledger):
                await api.wait_for_sent(1)
                await asyncio.sleep(0.1)
    assert [s.plain for s in api.sent] == ["from an hour ago"]
    assert ledger.outbox_counts() == {
        "queued": 0,
        "sending": 0,
        "sent": 1,
        "failed": 0,
        "expired": 1,
    }
    assert "1 match reply to" in caplog.text and "marked expired, not sent" in caplog.text


async def test_a_digest_handed_to_send_is_queued_first_and_goes_at_most_once(
    telegram_desk: Desk,
) -> None:
    """`send()` (the schedulers' door) writes the reply to the outbox before it is paced out;
    a digest is marked `sending` first, like an alert, so a crash never sends it twice."""
    ledger = telegram_desk.ledger
    async with FakeTelegram() as api:
        group = api.group("G")
        async with running(api, telegram_desk, outbox=ledger) as adapter:
            await adapter.send(Reply("telegram", str(group.id), "this week", kind="digest"))
            assert ledger.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
            await api.wait_for_sent(1)
            await asyncio.sleep(0.1)
    assert [s.plain for s in api.sent] == ["this week"]
    rows = ledger.conn.execute("SELECT kind, status FROM outbox").fetchall()
    assert rows == [("digest", "sent")]
