"""Guarantee 4 on WeChat (issue 9): replies wait in the ledger's outbox, not in memory.

Every test runs the fake puppet service (`tests/fakes/wechat_puppet.py`) and the real wechaty
SDK against a real ledger file. Replies queued when the bot stops or is killed are sent once
after the restart; the daily cap is counted from the outbox's sent rows, per day in the desk's
time zone, so a restart does not reset it, and what is over it waits for the next day; batched
match replies are marked sent together; a reply left queued past its age limit is marked
expired and logged, never sent; sent replies are pruned after `keep_sent`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gpudesk.bot.app import outbox_policy
from gpudesk.bot.config import ConfigError, load_settings
from gpudesk.bot.outbox import OutboxJanitor, OutboxPolicy
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.message import Reply
from gpudesk.storage.ledger import Ledger
from tests.conftest import START, FakeClock
from tests.fakes.wechat_puppet import FakePuppetService
from tests.processes import start_run
from tests.test_wechat import (  # noqa: F401  (the fixtures `fake` and `connect`)
    ALICE,
    ROOM,
    SELL,
    Connect,
    StubDesk,
    connect,
    eventually,
    fake,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def bid(n: int) -> str:
    """A bid that matches SELL; each of another size, so none is a repost of another."""
    return f"收 H100 8卡 {n + 2}台 北京 月租8w/台"


def add_buyers(service: FakePuppetService, count: int) -> list[str]:
    buyers = [f"wxid_buyer{n}" for n in range(count)]
    for n, buyer in enumerate(buyers):
        service.add_contact(buyer, f"Buyer {n}")
        service.rooms[ROOM].member_ids.append(buyer)
    return buyers


def owed(ledger: Ledger) -> list[str]:
    """The texts of every WeChat reply the desk queued."""
    rows = ledger.conn.execute("SELECT text FROM outbox WHERE platform = 'wechat' ORDER BY id")
    return [row[0] for row in rows]


def statuses(ledger: Ledger) -> list[tuple[str, str]]:
    rows = ledger.conn.execute("SELECT text, status FROM outbox ORDER BY id")
    return [(row[0], row[1]) for row in rows]


# -- nothing queued is lost ----------------------------------------------------------------


async def test_replies_a_stop_left_queued_are_sent_once_after_a_restart(
    ledger: Ledger,
    fake: FakePuppetService,  # noqa: F811
    connect: Connect,  # noqa: F811
) -> None:
    """The room's pacing holds three of four matches back; the bot stops; the next start on
    the same ledger sends those three, and none of them twice."""
    desk = Desk(ledger, DeskSettings(language="en"))
    desk.outbox_platforms = frozenset({"wechat"})
    buyers = add_buyers(fake, 4)
    first = await connect(desk, outbox=ledger, min_seconds_between_messages=60)

    fake.post(ROOM, ALICE, SELL)
    for n, buyer in enumerate(buyers):
        fake.post(ROOM, buyer, bid(n))
    await eventually(lambda: ledger.outbox_counts()["queued"] == 3)
    await first.stop()
    assert len(fake.texts(ROOM)) == 1
    assert ledger.outbox_counts()["sent"] == 1

    await connect(desk, outbox=ledger)
    await eventually(lambda: len(fake.texts(ROOM)) == 4)
    await asyncio.sleep(0.3)  # time for a fifth send, if there were to be one

    assert len(owed(ledger)) == 4
    assert sorted(s.text for s in fake.texts(ROOM)) == sorted(owed(ledger))  # each once
    assert ledger.outbox_counts()["sent"] == 4 and ledger.outbox_counts()["queued"] == 0


def _wechat_config(path: Path, service: FakePuppetService, db: Path, gap: float) -> Path:
    path.write_text(
        f'[ledger]\npath = "{db}"\n'
        f'[wechat]\nendpoint = "{service.endpoint}"\ntoken = "local-test-token"\n'
        f"min_seconds_between_messages = {gap}\n"
        '[desk]\nlanguage = "en"\n[digest]\nenabled = false\n',
        encoding="utf-8",
    )
    return path


def _outbox_statuses(db: Path) -> dict[str, int]:
    """The outbox, read from outside the bot's process."""
    if not db.exists():
        return {}
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return {}
    return dict(rows)


async def test_a_killed_gpudesk_run_sends_every_queued_wechat_reply_once_after_restart(
    tmp_path: Path,
) -> None:
    """A real `gpudesk run` with only `[wechat]`, killed with SIGKILL while three replies wait
    for their turn in the room; started again, it sends each of them, once."""
    service = FakePuppetService()
    service.add_contact(ALICE, "Alice")
    service.add_room(ROOM, "GPU 现货群", [ALICE])
    buyers = add_buyers(service, 4)
    await service.start()
    db = tmp_path / "desk.db"
    config = tmp_path / "config.toml"
    try:
        process = await start_run(_wechat_config(config, service, db, 60), cwd=tmp_path)
        try:
            await service.wait_for(lambda: service.open_streams >= 1, timeout=30)
            service.post(ROOM, ALICE, SELL)
            for n, buyer in enumerate(buyers):
                service.post(ROOM, buyer, bid(n))
            await service.wait_for(
                lambda: _outbox_statuses(db) == {"sent": 1, "queued": 3}, timeout=30
            )
        finally:
            process.kill()  # SIGKILL: no stop, no drain
            await process.wait()
        assert len(service.texts(ROOM)) == 1

        restarted = await start_run(_wechat_config(config, service, db, 0), cwd=tmp_path)
        try:
            await service.wait_for(lambda: len(service.texts(ROOM)) == 4, timeout=30)
            await asyncio.sleep(0.5)  # time for a fifth send, if there were to be one
        finally:
            restarted.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(restarted.communicate(), 30)
        assert restarted.returncode == 0, stderr.decode()
        assert "3 replies left queued; sending" in stderr.decode()
    finally:
        await service.stop()

    with Ledger.open(db) as ledger:
        assert sorted(s.text for s in service.texts(ROOM)) == sorted(owed(ledger))
        assert ledger.outbox_counts()["sent"] == 4 and ledger.outbox_counts()["queued"] == 0
    assert service.unexpected == []


async def test_a_digest_handed_over_while_the_service_is_down_waits_in_the_ledger(
    ledger: Ledger,
    fake: FakePuppetService,  # noqa: F811
    connect: Connect,  # noqa: F811
) -> None:
    """`send()` (the digest and watch schedulers' door) queues in the ledger too."""
    await fake.stop()
    first = await connect(StubDesk(), wait=False, outbox=ledger)
    await first.send(Reply("wechat", ROOM, "本周行情", kind="digest"))
    assert ledger.outbox_counts()["queued"] == 1
    await first.stop()  # or a crash: the digest is in the ledger already

    await fake.start()
    await connect(StubDesk(), outbox=ledger)
    await eventually(lambda: len(fake.texts(ROOM)) == 1)
    assert fake.texts(ROOM)[0].text == "本周行情"
    assert statuses(ledger) == [("本周行情", "sent")]


async def test_a_batch_goes_as_one_message_and_its_replies_are_marked_sent_together(
    ledger: Ledger,
    fake: FakePuppetService,  # noqa: F811
    connect: Connect,  # noqa: F811
) -> None:
    """Three match replies gathered across a restart go as one message, counted once by the
    daily cap; an answer is not held back for them."""
    now = datetime.now(UTC)
    matches = [Reply("wechat", ROOM, f"match {n}", kind="match") for n in range(3)]
    ledger.queue_replies(matches, message_row=None, at=now)
    ledger.queue_replies([Reply("wechat", ROOM, "an answer")], message_row=None, at=now)
    first = await connect(StubDesk(), outbox=ledger, batch_seconds=60)
    await eventually(lambda: len(fake.texts(ROOM)) == 1)
    await first.stop()  # mid-gathering: the matches are still queued
    assert [s.text for s in fake.texts(ROOM)] == ["an answer"]

    await connect(StubDesk(), outbox=ledger, batch_seconds=0.2)
    await eventually(lambda: len(fake.texts(ROOM)) == 2)
    await asyncio.sleep(0.3)

    assert fake.texts(ROOM)[1].text == "match 0\n\nmatch 1\n\nmatch 2"
    rows = ledger.conn.execute(
        "SELECT status, finished_at, platform_messages FROM outbox WHERE kind = 'match' ORDER BY id"
    ).fetchall()
    assert [row[0] for row in rows] == ["sent"] * 3
    assert len({row[1] for row in rows}) == 1  # one mark, one moment
    assert [row[2] for row in rows] == [1, 0, 0]
    day = (now - timedelta(days=1), now + timedelta(days=1))
    assert ledger.sent_messages("wechat", ROOM, since=day[0], until=day[1]) == 2


# -- the daily cap -------------------------------------------------------------------------


async def test_the_daily_cap_is_a_day_in_the_desk_zone_counted_in_the_ledger(
    ledger: Ledger,
    fake: FakePuppetService,  # noqa: F811
    connect: Connect,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Cap 2: two go at 23:30 in Shanghai, the third waits, a restart does not let it
    through, and it goes at 00:10 in Shanghai (still the same day in UTC)."""
    clock = FakeClock(datetime(2026, 11, 2, 15, 30, tzinfo=UTC))  # 23:30 in Shanghai
    answers = [Reply("wechat", ROOM, f"answer {n}") for n in range(3)]
    ledger.queue_replies(answers, message_row=None, at=clock())
    options = {
        "outbox": ledger,
        "clock": clock,
        "zone": SHANGHAI,
        "daily_cap": 2,
        "recheck_seconds": 0.05,
    }
    with caplog.at_level(logging.WARNING, logger="gpudesk.bot.wechat"):
        first = await connect(StubDesk(), **options)
        await eventually(lambda: len(fake.texts(ROOM)) == 2)
        await asyncio.sleep(0.3)
        await first.stop()
        assert "daily cap of 2 messages reached" in caplog.text

        await connect(StubDesk(), **options)  # the day's count is read from the ledger
        await asyncio.sleep(0.3)
        assert len(fake.texts(ROOM)) == 2
        assert ledger.outbox_counts()["queued"] == 1  # held, not dropped

        clock.advance(minutes=40)  # 00:10 in Shanghai: a new day there, not yet in UTC
        await eventually(lambda: len(fake.texts(ROOM)) == 3)

    assert [s.text for s in fake.texts(ROOM)] == ["answer 0", "answer 1", "answer 2"]
    await eventually(lambda: ledger.outbox_counts()["sent"] == 3)  # marked once accepted


# -- too late to send: expired, logged, kept -----------------------------------------------


async def test_after_an_outage_stale_replies_are_marked_expired_and_logged_not_sent(
    ledger: Ledger,
    fake: FakePuppetService,  # noqa: F811
    connect: Connect,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Back 25 hours later: yesterday's match and answer are expired; a digest keeps its own
    limit (6 h here): the one 7 h old is expired, the one 5 h old still goes."""
    clock = FakeClock(START)

    def queue(text: str, kind: str, hours_ago: float) -> None:
        at = START + timedelta(hours=25 - hours_ago)
        ledger.queue_replies([Reply("wechat", ROOM, text, kind=kind)], message_row=None, at=at)

    queue("old match", "match", 25)
    queue("old answer", "answer", 25)
    queue("digest 7 h", "digest", 7)
    queue("digest 5 h", "digest", 5)
    queue("answer 23 h", "answer", 23)
    clock.advance(hours=25)
    policy = OutboxPolicy(resend_within=timedelta(hours=24), digest_within=timedelta(hours=6))

    with caplog.at_level(logging.WARNING, logger="gpudesk.bot.wechat"):
        await connect(StubDesk(), outbox=ledger, clock=clock, policy=policy)
        await eventually(lambda: len(fake.texts(ROOM)) == 2)
        await asyncio.sleep(0.2)

    assert [s.text for s in fake.texts(ROOM)] == ["digest 5 h", "answer 23 h"]
    assert statuses(ledger) == [  # kept, never silently deleted
        ("old match", "expired"),
        ("old answer", "expired"),
        ("digest 7 h", "expired"),
        ("digest 5 h", "sent"),
        ("answer 23 h", "sent"),
    ]
    notes = [row[0] for row in ledger.conn.execute("SELECT note FROM outbox WHERE id <= 3")]
    assert notes == ["queued more than 24 h before it could be sent"] * 2 + [
        "queued more than 6.0 h before it could be sent"
    ]
    assert "1 match reply to 20001@chatroom queued up to 25 h ago, past the 24 h limit" in (
        caplog.text
    )
    assert caplog.text.count("marked expired, not sent") == 3  # one line per chat and kind


def test_a_digest_may_go_as_late_as_its_grace_and_at_least_an_hour() -> None:
    settings = load_settings(None)
    policy = outbox_policy(settings)
    assert policy == OutboxPolicy(
        resend_within=timedelta(hours=24),
        digest_within=timedelta(hours=6),  # [digest] grace_hours
        keep_sent=timedelta(days=7),
    )
    assert policy.limit("match") == policy.limit("alert") == timedelta(hours=24)
    assert policy.limit("digest") == timedelta(hours=6)
    brief = OutboxPolicy.of(resend_within_hours=2, keep_sent_days=1, digest_grace_hours=0)
    assert brief.limit("digest") == timedelta(hours=1)


def test_the_outbox_settings_are_checked(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[outbox]\nresend_within_hours = 6\nkeep_sent_days = 30\n")
    settings = load_settings(config)
    assert (settings.outbox.resend_within_hours, settings.outbox.keep_sent_days) == (6, 30)
    config.write_text("[outbox]\nkeep_sent_days = 0\n")
    with pytest.raises(ConfigError, match=r"outbox.keep_sent_days = 0"):
        load_settings(config)


# -- sent replies are pruned ---------------------------------------------------------------


def test_sent_replies_are_pruned_after_keep_sent_and_nothing_else(
    ledger: Ledger, clock: FakeClock
) -> None:
    """Only rows that went (sent, or begun at most once) and went more than `keep_sent` ago
    are deleted; queued, failed and expired ones stay."""
    texts = ["sent", "failed", "expired", "alert begun", "queued", "sent later"]
    queued = ledger.queue_replies(
        [Reply("wechat", ROOM, text) for text in texts], message_row=None, at=clock()
    )
    ids = [reply.outbox_id or 0 for reply in queued]
    ledger.finish_reply(ids[0], at=clock())
    ledger.finish_reply(ids[1], at=clock(), status="failed", note="refused")
    ledger.expire_replies([ids[2]], at=clock(), note="too old")
    ledger.begin_reply(ids[3], at=clock())
    clock.advance(days=6)
    ledger.finish_reply(ids[5], at=clock())
    janitor = OutboxJanitor(ledger, OutboxPolicy(keep_sent=timedelta(days=7)), clock=clock)

    assert janitor.run_once() == 0  # six days: all kept
    clock.advance(days=1, hours=1)
    assert janitor.run_once() == 2  # the sent one and the begun alert, 7 days 1 hour old
    left = [text for text, _ in statuses(ledger)]
    assert left == ["failed", "expired", "queued", "sent later"]
    clock.advance(days=6)
    assert janitor.run_once() == 1
    assert ledger.outbox_counts() == {
        "queued": 1,
        "sending": 0,
        "sent": 0,
        "failed": 1,
        "expired": 1,
    }


async def test_the_janitor_prunes_at_start_and_then_every_interval(
    ledger: Ledger, clock: FakeClock
) -> None:
    def sent_one() -> None:
        [reply] = ledger.queue_replies([Reply("wechat", ROOM, "x")], message_row=None, at=clock())
        assert reply.outbox_id is not None
        ledger.finish_reply(reply.outbox_id, at=clock())

    sent_one()
    clock.advance(days=8)
    janitor = OutboxJanitor(ledger, OutboxPolicy(), every=timedelta(seconds=0.05), clock=clock)
    janitor.start()
    try:
        assert ledger.outbox_counts()["sent"] == 0  # at start, at once
        sent_one()
        assert ledger.outbox_counts()["sent"] == 1
        clock.advance(days=8)
        await eventually(lambda: ledger.outbox_counts()["sent"] == 0, timeout=2)
    finally:
        await janitor.stop()
