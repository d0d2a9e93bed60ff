"""Watch alerts on Telegram (issue 10), end to end: the real desk and adapter against the fake
Bot API on 127.0.0.1.

A member who has started the bot gets a direct message; one who never did (Telegram answers
403) is mentioned in the group where they set the watch, paced like any reply there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gpudesk.bot.scheduler import WatchAlertScheduler
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.storage.ledger import Ledger
from tests.conftest import FakeClock
from tests.fakes.telegram_api import FakeTelegram, SentMessage
from tests.test_telegram import running

WATCH = "/watch H100 rent <= 1.6 USD/GPU-hr"
CHEAP = "出 H100 8卡 4台 北京 月租5.5w/台"


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))  # Telegram stamps posts with the real time


@pytest.fixture
def desk(tmp_path: Path, clock: FakeClock) -> Iterator[Desk]:
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        yield Desk(ledger, DeskSettings(language="en", commands_per_minute=100), clock=clock)


def saying(messages: list[SentMessage], words: str) -> list[SentMessage]:
    return [message for message in messages if words in message.plain]


async def test_a_member_who_started_the_bot_gets_a_direct_message(
    api: FakeTelegram, desk: Desk
) -> None:
    group = api.group("GPU Traders", username="gpu_traders")
    bob, alice = api.user("Bob"), api.user("Alice")
    async with running(api, desk):
        api.inject_private(bob, "/help")  # Bob has started the bot
        api.inject_message(group, bob, WATCH)
        post = api.inject_message(group, alice, CHEAP)
        await api.wait_until_confirmed()
        await api.wait_until(lambda: len(api.sent_to(bob)) >= 2, 5, "the alert")
    [alert] = saying(api.sent_to(bob), "Your watch #1")
    assert "Alice in GPU Traders" in alert.plain
    assert f"https://t.me/gpu_traders/{post}" in alert.plain
    assert [m.plain[:13] for m in api.sent_to(group)] == ["Watch #1 set:"]


@pytest.mark.parametrize("durable", [False, True], ids=["replies", "outbox"])
async def test_a_member_who_never_started_the_bot_is_mentioned_in_the_group(
    api: FakeTelegram, desk: Desk, durable: bool
) -> None:
    group = api.group("GPU Traders")
    carol, alice = api.user("Carol"), api.user("Alice")
    if durable:  # as `gpudesk run` has it: replies queued in the ledger's outbox (issue 9)
        desk.outbox_platforms = frozenset({"telegram"})
    async with running(api, desk, outbox=desk.ledger if durable else None):
        api.inject_message(group, carol, WATCH)
        api.inject_message(group, alice, CHEAP)
        await api.wait_until_confirmed()
        await api.wait_until(lambda: len(api.sent_to(group)) >= 2, 5, "the mention")
    refused = [c for c in api.calls_to("sendMessage") if c.status == 403]
    assert [int(c.params["chat_id"]) for c in refused] == [carol.id]
    [alert] = saying(api.sent_to(group), "Your watch #1")
    assert alert.plain.startswith("Carol Your watch #1 (sellers of H100 rent")
    assert f'<a href="tg://user?id={carol.id}">Carol</a>' in alert.raw
    assert alert.reply_to is None and "post 2 in GPU Traders" in alert.plain
    assert api.sent_to(carol) == []
    if durable:  # the refused direct message counts as done: it went to the group instead
        assert desk.ledger.outbox_counts()["queued"] == 0


async def test_digests_go_out_on_schedule_even_after_a_restart(
    api: FakeTelegram, desk: Desk, clock: FakeClock
) -> None:
    group = api.group("GPU Traders")
    bob, carol, alice = api.user("Bob"), api.user("Carol"), api.user("Alice")
    async with running(api, desk):
        api.inject_private(bob, "/help")
        api.inject_message(group, bob, WATCH + " digest hourly")
        api.inject_message(group, carol, WATCH + " 每小时汇总")
        api.inject_message(group, alice, CHEAP)
        await api.wait_until_confirmed()
        await api.wait_for_sent(3)  # /help and the two confirmations: no alert yet
    assert saying(api.sent, "Your watch") == []

    clock.advance(hours=1)
    async with running(api, desk) as adapter:  # a new process: it has not seen Carol's name
        alerts = WatchAlertScheduler(
            desk.ledger, desk.settings, {"telegram": adapter.send}, clock=clock
        )
        assert await alerts.run_due() == 2
        await api.wait_until(lambda: len(saying(api.sent, "digest")) >= 2, 5, "the digests")
        assert await alerts.run_due() == 0  # sent once
    [direct] = saying(api.sent_to(bob), "Watch digest since")
    assert "(1 new)" in direct.plain and "Alice in GPU Traders" in direct.plain
    [mention] = saying(api.sent_to(group), "Watch digest since")
    assert f'<a href="tg://user?id={carol.id}">👤</a>' in mention.raw
    statuses = desk.ledger.conn.execute("SELECT status FROM alerts ORDER BY id").fetchall()
    assert statuses == [("sent",), ("sent",)]


async def test_the_alert_job_starts_and_stops_with_its_scheduler(desk: Desk) -> None:
    sent: list[Any] = []

    async def send(reply: Any) -> None:
        sent.append(reply)

    alerts = WatchAlertScheduler(desk.ledger, desk.settings, {"telegram": send})
    alerts.start()
    assert alerts.scheduler.get_job("gpudesk-watch-alerts") is not None
    await alerts.stop()
    assert alerts.scheduler.get_job("gpudesk-watch-alerts") is None
