"""The weekly digest's schedule: on time, once, in the right groups, across restarts and crashes.

A fake clock drives `run_due()` hour by hour (nobody sleeps for a week); "restarting" is a new
scheduler on a freshly opened ledger file, as after a process restart. Charts are faked except
in the one test that lets the real APScheduler fire.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gpudesk.bot import scheduler as scheduler_module
from gpudesk.bot.scheduler import JOB_ID, DigestScheduler
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.market.message import ChatMessage, Reply
from gpudesk.storage.ledger import Ledger
from tests.conftest import FakeClock
from tests.test_digest import png_size, structured

GROUPS = [("telegram", "-100"), ("telegram", "-200"), ("wechat", "r1@chatroom")]
TITLES = {"-100": "GPU Traders", "-200": "算力群", "r1@chatroom": "GPU 交流群"}
# Mondays at 09:00 in Shanghai, as UTC: the digests of 2026-W45, W46 and W47.
MONDAYS = [datetime(2026, 11, day, 1, 0, tzinfo=UTC) for day in (9, 16, 23)]
FAKE_PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
WEEK_LABEL = re.compile(r"\d{4}-W\d{2}")


class Crash(BaseException):
    """The process dies here (not an error the scheduler may catch and log)."""


@dataclass
class Outbox:
    """The chats: every reply an adapter was handed, with the time."""

    clock: FakeClock
    sent: list[tuple[datetime, Reply]] = field(default_factory=list)
    trouble: Callable[[Reply], BaseException | None] = lambda reply: None
    delivered_before_trouble: bool = False

    async def __call__(self, reply: Reply) -> None:
        error = self.trouble(reply)
        if error is not None and not self.delivered_before_trouble:
            raise error
        self.sent.append((self.clock(), reply))
        if error is not None:
            raise error

    def digests(self) -> list[tuple[datetime, str, str]]:
        """(when, chat, week) of each digest begun: its first reply carries the chart."""
        return [
            (when, reply.chat_id, week.group() if (week := WEEK_LABEL.search(reply.text)) else "")
            for when, reply in self.sent
            if reply.image is not None
        ]


@dataclass
class World:
    path: Path
    clock: FakeClock
    outbox: Outbox
    ledger: Ledger
    desk: Desk
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def post(self, chat: tuple[str, str], who: str, text: str, **extra: object) -> None:
        title = TITLES.get(chat[1])
        values: dict[str, object] = {
            "platform": chat[0],
            "chat_id": chat[1],
            "chat_title": title,
            "sender_id": who,
            "sender_name": who.title(),
            "text": text,
            "sent_at": self.clock(),
            "message_id": str(next(self._ids)),
            "is_group": title is not None,
        }
        values.update(extra)
        self.desk.handle(ChatMessage(**values))  # type: ignore[arg-type]

    def trade(self) -> None:
        """A day of the market: one offer in each group, at a new price (a repost at the same
        price refreshes the standing offer instead, and readings place offers by first post)."""
        day = self.clock().day
        for number, chat in enumerate(GROUPS):
            price = 10 + number + (day % 7) / 2  # a trader's posts 5 days apart differ > 1%
            self.post(chat, f"trader{(day + number) % 5}", f"sell H100 rent 8 {price} Beijing")

    def scheduler(self, **options: object) -> DigestScheduler:
        senders = {"telegram": self.outbox, "wechat": self.outbox}
        return DigestScheduler(
            self.ledger,
            self.desk.settings,
            senders,
            clock=self.clock,
            **options,  # type: ignore[arg-type]
        )

    def restart(self, **options: object) -> DigestScheduler:
        """A new process: the ledger file opened again, a new scheduler on it."""
        self.ledger.close()
        self.ledger = Ledger.open(self.path)
        self.desk = Desk(self.ledger, self.desk.settings, clock=self.clock, parse=structured)
        return self.scheduler(**options)

    def status(self, chat: tuple[str, str], week: str) -> str | None:
        record = self.ledger.digest_record(*chat, week)
        return None if record is None else record.status


@pytest.fixture(autouse=True)
def fake_chart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "render_chart", lambda *args: FAKE_PNG)


@pytest.fixture
def world(db_path: Path) -> Iterator[World]:
    clock = FakeClock(datetime(2026, 10, 26, 0, 0, tzinfo=UTC))
    ledger = Ledger.open(db_path)
    desk = Desk(ledger, DeskSettings(language="en"), clock=clock, parse=structured)
    made = World(db_path, clock, Outbox(clock), ledger, desk)
    made.ledger.update_chat("telegram", "-200", language="zh")
    # Chats that get no digest: a private chat, the console, a history imported from a group
    # the bot may not be in.
    made.post(("telegram", "42"), "42", "sell A100 rent 8 6 Beijing")
    made.post(("console", "room"), "me", "sell A100 rent 8 6 Beijing", chat_title="Console")
    made.post(("telegram", "-300"), "old", "sell A100 rent 8 6", chat_title="Old", announce=False)
    for _ in range(14):  # two weeks of market before the tests' first Monday
        made.trade()
        clock.advance(days=1)
    yield made
    made.ledger.close()


async def run_hourly(world: World, scheduler: DigestScheduler, until: datetime) -> None:
    """Tick the clock hour by hour to `until`, trading daily at 06:00, running the schedule."""
    while world.clock() < until:
        world.clock.advance(hours=1)
        if world.clock().hour == 6:
            world.trade()
        await scheduler.run_due()


# -- on time, once --------------------------------------------------------------------------


async def test_each_group_gets_one_digest_a_week_on_time(world: World) -> None:
    scheduler = world.scheduler()
    await run_hourly(world, scheduler, until=MONDAYS[-1] + timedelta(days=2))
    expected = [
        (monday, chat_id, week)
        for monday, week in zip(MONDAYS, ("2026-W45", "2026-W46", "2026-W47"), strict=True)
        for _, chat_id in GROUPS
    ]
    assert world.outbox.digests() == expected
    for chat in GROUPS:
        assert world.status(chat, "2026-W47") == "sent"
    assert {reply.kind for _, reply in world.outbox.sent} == {"digest"}
    # Each group in its own language, on its own platform.
    by_chat = {reply.chat_id: reply for _, reply in world.outbox.sent}
    assert by_chat["-200"].text.startswith("GPU 行情周报 2026-W47")
    assert by_chat["-100"].text.startswith("GPU market weekly 2026-W47")
    assert by_chat["r1@chatroom"].platform == "wechat"


async def test_the_next_run_is_where_apscheduler_will_fire(world: World) -> None:
    for zone, schedule in (("Asia/Shanghai", "mon 09:00"), ("America/New_York", "sun 02:30")):
        settings = DeskSettings(timezone=zone)
        scheduler = DigestScheduler(
            world.ledger, settings, {}, schedule=schedule, clock=world.clock
        )
        trigger = scheduler.trigger()
        for moment in (
            datetime(2026, 3, 7, 12, tzinfo=UTC),  # the week New York springs forward
            datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # and the hour it falls back
            MONDAYS[0],
            MONDAYS[0] - timedelta(microseconds=1),
        ):
            world.clock.now = moment
            fire = trigger.get_next_fire_time(None, moment + timedelta(microseconds=1))
            # Instants, not datetimes: a time in a DST gap never equals one in another zone.
            assert scheduler.next_run().timestamp() == fire.timestamp()


async def test_two_processes_on_one_ledger_send_each_digest_once(world: World) -> None:
    other = Ledger.open(world.path)
    try:
        world.clock.now = MONDAYS[0]
        second = DigestScheduler(
            other, world.desk.settings, {"telegram": world.outbox, "wechat": world.outbox},
            clock=world.clock,
        )  # fmt: skip
        sent = await asyncio.gather(world.scheduler().run_due(), second.run_due())
    finally:
        other.close()
    assert sum(sent) == 3
    assert sorted(chat for _, chat, _ in world.outbox.digests()) == sorted(c for _, c in GROUPS)


# -- restarts --------------------------------------------------------------------------------


async def test_a_restart_mid_week_sends_nothing_until_the_next_monday(world: World) -> None:
    await run_hourly(world, world.scheduler(), until=MONDAYS[0] + timedelta(days=2))
    assert len(world.outbox.digests()) == 3
    scheduler = world.restart()
    assert await scheduler.run_due() == 0  # Wednesday: W45 went out already
    await run_hourly(world, scheduler, until=MONDAYS[1] + timedelta(hours=3))
    weeks = [week for _, _, week in world.outbox.digests()]
    assert weeks == ["2026-W45"] * 3 + ["2026-W46"] * 3


@pytest.mark.parametrize(
    ("late", "sent"),
    [
        pytest.param(timedelta(0), True, id="up at the hour"),
        pytest.param(timedelta(hours=3), True, id="3 h late"),
        pytest.param(timedelta(hours=6), True, id="6 h late: the grace, inclusive"),
        pytest.param(timedelta(hours=6, minutes=1), False, id="past the grace"),
        pytest.param(timedelta(days=2), False, id="two days late"),
    ],
)
async def test_a_digest_missed_while_down_goes_out_once_within_the_grace(
    world: World, late: timedelta, sent: bool
) -> None:
    world.clock.now = MONDAYS[0] + late  # the bot was down from last week until now
    scheduler = world.restart(grace=timedelta(hours=6))
    assert await scheduler.run_due() == (3 if sent else 0)
    assert await scheduler.run_due() == 0
    scheduler = world.restart()
    assert await scheduler.run_due() == 0  # and again after another restart
    assert len(world.outbox.digests()) == (3 if sent else 0)
    assert world.status(GROUPS[0], "2026-W45") == ("sent" if sent else None)
    if sent:  # late, but the digest of its own week, not of the week up to now
        caption = world.outbox.sent[0][1].text
        assert caption.startswith("GPU market weekly 2026-W45 · 11-02 09:00 – 11-09 09:00")
    # The week after is on time whatever happened.
    await run_hourly(world, scheduler, until=MONDAYS[1])
    assert [w for _, _, w in world.outbox.digests()][-3:] == ["2026-W46"] * 3


async def test_a_crash_in_the_middle_of_sending_never_sends_twice(world: World) -> None:
    # The chart reaches the second group, then the process dies before anything is recorded.
    world.outbox.trouble = lambda reply: Crash() if reply.chat_id == "-200" else None
    world.outbox.delivered_before_trouble = True
    world.clock.now = MONDAYS[0]
    with pytest.raises(Crash):
        await world.scheduler().run_due()
    assert [chat for _, chat, _ in world.outbox.digests()] == ["-100", "-200"]
    assert world.status(GROUPS[1], "2026-W45") == "claimed"

    world.outbox.trouble = lambda reply: None
    world.clock.advance(minutes=5)
    assert await world.restart().run_due() == 1  # the group never reached gets it now
    assert [chat for _, chat, _ in world.outbox.digests()] == ["-100", "-200", "r1@chatroom"]
    assert await world.restart().run_due() == 0
    assert world.status(GROUPS[1], "2026-W45") == "claimed"  # half sent, and left at that


async def test_a_failed_send_is_recorded_and_not_retried(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.outbox.trouble = lambda reply: (
        RuntimeError("bot was kicked") if reply.chat_id == "-200" else None
    )
    world.clock.now = MONDAYS[0]
    scheduler = world.scheduler()
    with caplog.at_level(logging.ERROR):
        assert await scheduler.run_due() == 2  # the others still get theirs
    assert "could not send the 2026-W45 digest to telegram -200" in caplog.text
    record = world.ledger.digest_record(*GROUPS[1], "2026-W45")
    assert record is not None and record.status == "failed"
    assert record.note == "RuntimeError: bot was kicked"
    world.outbox.trouble = lambda reply: None
    assert await scheduler.run_due() == 0


async def test_a_digest_that_fails_to_render_is_tried_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = itertools.count()

    def flaky(*args: object) -> bytes:
        if next(attempts) == 0:
            raise MemoryError("matplotlib had a bad day")
        return FAKE_PNG

    monkeypatch.setattr(scheduler_module, "render_chart", flaky)
    world.clock.now = MONDAYS[0]
    scheduler = world.scheduler()
    assert await scheduler.run_due() == 2
    assert world.status(GROUPS[0], "2026-W45") is None  # nothing sent, so nothing claimed
    world.clock.advance(hours=1)
    assert await scheduler.run_due() == 1
    assert world.status(GROUPS[0], "2026-W45") == "sent"


async def test_a_week_without_offers_is_recorded_and_not_sent(world: World) -> None:
    world.clock.now = MONDAYS[-1] + timedelta(days=21)  # the market went quiet weeks ago
    for chat in GROUPS:
        world.post(chat, "someone", "anyone around?")
    world.clock.now = MONDAYS[-1] + timedelta(days=28)
    assert await world.scheduler().run_due() == 0
    assert world.outbox.sent == []
    record = world.ledger.digest_record(*GROUPS[0], "2026-W51")
    assert record is not None and (record.status, record.note) == (
        "empty",
        "no offers in the window",
    )


# -- the per-group switch (/digest off, /digest on) -------------------------------------------


async def test_a_group_with_the_digest_off_is_skipped_across_restarts(world: World) -> None:
    world.post(GROUPS[0], "boss", "/digest off", sender_is_admin=True)
    world.post(GROUPS[1], "boss", "/pause", sender_is_admin=True)  # pausing keeps the digest
    assert not world.ledger.chat(*GROUPS[0]).weekly_digest
    await run_hourly(world, world.scheduler(), until=MONDAYS[0] + timedelta(hours=3))
    assert [chat for _, chat, _ in world.outbox.digests()] == ["-200", "r1@chatroom"]
    assert world.status(GROUPS[0], "2026-W45") is None  # skipped, not claimed

    scheduler = world.restart()  # the switch is in the ledger, not in memory
    await run_hourly(world, scheduler, until=MONDAYS[1] + timedelta(hours=3))
    assert [chat for _, chat, w in world.outbox.digests() if w == "2026-W46"] == [
        "-200",
        "r1@chatroom",
    ]

    world.post(GROUPS[0], "boss", "周报 开", sender_is_admin=True)
    await run_hourly(world, scheduler, until=MONDAYS[2] + timedelta(hours=3))
    assert [chat for _, chat, w in world.outbox.digests() if w == "2026-W47"] == [
        chat for _, chat in GROUPS
    ]


async def test_turned_on_again_within_the_grace_the_group_gets_that_weeks_digest(
    world: World,
) -> None:
    world.post(GROUPS[0], "boss", "/digest off", sender_is_admin=True)
    world.clock.now = MONDAYS[0]
    scheduler = world.scheduler()
    assert await scheduler.run_due() == 2
    world.clock.advance(hours=1)
    world.post(GROUPS[0], "boss", "/digest on", sender_is_admin=True)
    assert await scheduler.run_due() == 1
    assert world.status(GROUPS[0], "2026-W45") == "sent"


# -- APScheduler ------------------------------------------------------------------------------


async def test_start_adds_one_job_to_the_shared_scheduler_and_stop_removes_it(
    world: World,
) -> None:
    shared = AsyncIOScheduler()
    scheduler = world.scheduler(scheduler=shared, catch_up_delay=timedelta(seconds=30))
    before = datetime.now(UTC)
    scheduler.start()
    job = shared.get_job(JOB_ID)
    assert job is not None and not shared.running  # the owner starts it, not us
    assert (
        before + timedelta(seconds=30)
        <= job.next_run_time
        <= datetime.now(UTC) + timedelta(seconds=30)
    )
    assert str(job.trigger) == str(scheduler.trigger())
    scheduler.start()  # again (a reconnect): still one job
    assert [j.id for j in shared.get_jobs()] == [JOB_ID]
    await scheduler.stop()
    assert shared.get_jobs() == []


async def test_the_real_scheduler_fires_the_catch_up_and_draws_the_chart(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpudesk.handlers.chart import render_chart

    monkeypatch.setattr(scheduler_module, "render_chart", render_chart)
    world.clock.now = MONDAYS[0] + timedelta(hours=1)
    arrived = asyncio.Event()
    outbox = world.outbox

    async def send(reply: Reply) -> None:
        await outbox(reply)
        if len(outbox.digests()) == len(GROUPS):
            arrived.set()

    scheduler = DigestScheduler(
        world.ledger,
        world.desk.settings,
        {"telegram": send, "wechat": send},
        clock=world.clock,
        catch_up_delay=timedelta(0),
    )
    scheduler.start()
    try:
        await asyncio.wait_for(arrived.wait(), timeout=20)
    finally:
        await scheduler.stop()
    assert not scheduler.scheduler.running
    first = outbox.sent[0][1]
    assert first.image is not None and png_size(first.image)[0] == 1080


def test_the_default_schedule_is_monday_nine_in_shanghai(world: World) -> None:
    scheduler = DigestScheduler(world.ledger, DeskSettings(), {}, clock=world.clock)
    assert scheduler.when == (0, 9, 0)
    assert scheduler.zone == ZoneInfo("Asia/Shanghai")
    world.clock.now = MONDAYS[0] - timedelta(minutes=1)
    assert scheduler.next_run() == MONDAYS[0]
