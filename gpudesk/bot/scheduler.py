"""The weekly digest's schedule: every group gets its digest once, on time, or late but once.

`DigestScheduler` wakes at the configured weekly time (`[digest] schedule`, default Monday 09:00
in `[desk] timezone`) and, for every group on a platform it can send to, renders the week's
digest, claims it in the ledger and hands its replies to that platform's `send` coroutine.
A group whose admins said `/digest off` (`ChatRecord.weekly_digest`) is skipped, and nothing
is claimed for it: turned on again within the grace period, it still gets that week's digest.

Correctness lives in the ledger, not in the scheduler. A digest is claimed (a row in the
`digests` table, keyed by chat and ISO week) after it is rendered and before its first reply
goes out, so a restart mid-send never sends it twice: a claimed digest is never claimed again,
whatever became of it (at most once, by design: a group would rather miss a digest than get
two; a send that raises is recorded as failed, not retried). A crash or error while rendering
claims nothing, so the next run within the grace period (a restart) tries again. `run_due()` is
idempotent: it works out the latest scheduled time from the clock, and sends that week's
digest to each group that has not had it, if the time is at most `grace` ago (default 6 h).
So a digest missed while the bot was down goes out once when it comes back within the grace
period, and not at all after it; a restart mid-week sends nothing.

APScheduler only provides the wake-ups. One `AsyncIOScheduler` is shared by everything in the
process that runs on a timer (pass it in; the lead's choice, so there is one timer loop and one
place to shut down), and this class adds one job to it: a cron trigger at the weekly time,
whose first run is `catch_up_delay` after `start()` (the catch-up after a restart, once the
adapters have had time to connect). The job is in memory; nothing needs the scheduler's job
store to survive a restart, since the ledger remembers what was sent. Without a scheduler
passed in, it makes and owns one (tests, a lone digest process).

The clock is injected: tests drive `run_due()` with a fake clock and never sleep for a week.

    scheduler = DigestScheduler(ledger, desk_settings, {"telegram": telegram_send},
                                schedule="mon 09:00", grace=timedelta(hours=6),
                                scheduler=shared_asyncio_scheduler)
    scheduler.start()      # in the running event loop
    ...
    await scheduler.stop()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from gpudesk.bot.config import WEEKDAYS, parse_schedule
from gpudesk.handlers.chart import render_chart
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import system_clock
from gpudesk.handlers.digest_text import chat_language, digest_replies, fit, load_digest
from gpudesk.handlers.watching import due_alerts, mark_failed, mark_sent
from gpudesk.market.digest import (
    Weekly,
    next_occurrence,
    occurrence_at_or_before,
    week_label,
    window_ending,
)
from gpudesk.market.message import Reply
from gpudesk.storage.ledger import EMPTY, FAILED, ChatRecord, Ledger

log = logging.getLogger(__name__)

Send = Callable[[Reply], Awaitable[None]]
"""Deliver one reply (a photo with its caption when `reply.image` is set, else text) to its
`reply.chat_id`; raise if it cannot. The replies of one digest come in order."""

JOB_ID = "gpudesk-weekly-digest"


class DigestScheduler:
    """Sends each group its weekly digest through `senders[platform]` (see the module doc)."""

    def __init__(
        self,
        ledger: Ledger,
        settings: DeskSettings,
        senders: Mapping[str, Send],
        *,
        schedule: str | Weekly = "mon 09:00",
        grace: timedelta = timedelta(hours=6),
        clock: Callable[[], datetime] = system_clock,
        scheduler: AsyncIOScheduler | None = None,
        catch_up_delay: timedelta = timedelta(seconds=30),
    ):
        self.ledger = ledger
        self.settings = settings
        self.senders = dict(senders)
        self.when: Weekly = parse_schedule(schedule) if isinstance(schedule, str) else schedule
        self.grace = grace
        self.clock = clock
        self.catch_up_delay = catch_up_delay
        self._owns_scheduler = scheduler is None
        self.scheduler = scheduler or AsyncIOScheduler(timezone=settings.zone)
        self._lock = asyncio.Lock()  # the weekly run and the catch-up may meet: one at a time

    @property
    def zone(self) -> ZoneInfo:
        return self.settings.zone

    def trigger(self) -> CronTrigger:
        weekday, hour, minute = self.when
        return CronTrigger(
            day_of_week=WEEKDAYS[weekday], hour=hour, minute=minute, timezone=self.zone
        )

    def start(self) -> None:
        """Add the weekly job (first run: the catch-up, shortly); call in the running loop."""
        if self.scheduler.get_job(JOB_ID) is not None:
            # Not `replace_existing` alone: a scheduler not yet started would queue both.
            self.scheduler.remove_job(JOB_ID)
        self.scheduler.add_job(
            self.run_due,
            self.trigger(),
            id=JOB_ID,
            # APScheduler runs on the wall clock, whatever `clock` says (tests fake only ours).
            next_run_time=datetime.now(UTC) + self.catch_up_delay,
            coalesce=True,  # several missed wake-ups are one run: run_due sends each digest once
            max_instances=1,
            misfire_grace_time=int(self.grace.total_seconds()) or 1,
        )
        if self._owns_scheduler and not self.scheduler.running:
            self.scheduler.start()
        log.info(
            "weekly digest: %s %02d:%02d %s, next %s",
            WEEKDAYS[self.when[0]],
            self.when[1],
            self.when[2],
            self.settings.timezone,
            self.next_run().astimezone(self.zone).isoformat(timespec="minutes"),
        )

    async def stop(self) -> None:
        """Remove the job (and shut our own scheduler down); wait for a run in progress."""
        if self.scheduler.get_job(JOB_ID) is not None:
            self.scheduler.remove_job(JOB_ID)
        if self._owns_scheduler and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback: let it run
        async with self._lock:
            pass

    def next_run(self) -> datetime:
        """The next scheduled time after now, in UTC."""
        return next_occurrence(self.clock(), self.when, self.zone)

    async def run_due(self) -> int:
        """Send the latest scheduled digest to every group that has not had it, if it is due
        within the grace period. Returns how many digests went out. Safe to call any time."""
        async with self._lock:
            now = self.clock()
            at = occurrence_at_or_before(now, self.when, self.zone)
            start, end = window_ending(at, self.when, self.zone)
            week = week_label(start, end, self.zone)
            if now - at > self.grace:
                log.info(
                    "digest %s was due %s; more than %s ago, so it is not sent late",
                    week,
                    at.isoformat(timespec="minutes"),
                    self.grace,
                )
                return 0
            sent = 0
            for chat in self.ledger.digest_chats(sorted(self.senders)):
                if not chat.weekly_digest:  # the group said `/digest off`
                    log.debug("digest %s: off in %s %s", week, chat.platform, chat.chat_id)
                    continue
                sent += await self._send_digest(chat, week, (start, end))
            return sent

    async def _send_digest(
        self, chat: ChatRecord, week: str, window: tuple[datetime, datetime]
    ) -> int:
        where = (chat.platform, chat.chat_id, week)
        if self.ledger.digest_record(*where) is not None:
            return 0  # claimed before (this run or an earlier one): never twice
        try:
            digest = load_digest(self.ledger, self.settings, chat, start=window[0], end=window[1])
            lang = chat_language(chat, self.settings)
            text = fit(digest, lang, self.zone, this_group=chat.scope == "group")
            chart = None
            if not digest.quiet:
                # Off the event loop: drawing takes a fraction of a second per chart.
                chart = await asyncio.to_thread(render_chart, digest, lang, self.zone)
        except Exception:
            # Nothing claimed yet: the next run (within the grace period) tries again.
            log.exception("could not render the %s digest of %s %s", week, *where[:2])
            return 0
        # Rendered: claim it, then send. A crash from here on leaves it claimed, never resent.
        if not self.ledger.claim_digest(*where, at=self.clock(), window=window):
            return 0  # another process sent it meanwhile
        if digest.quiet:
            self.ledger.mark_digest_unsent(
                *where, at=self.clock(), status=EMPTY, note="no offers in the window"
            )
            return 0
        send = self.senders[chat.platform]
        try:
            for reply in digest_replies(text, chart, platform=chat.platform, chat_id=chat.chat_id):
                await send(reply)
        except Exception as error:
            log.exception("could not send the %s digest to %s %s", week, *where[:2])
            self.ledger.mark_digest_unsent(
                *where, at=self.clock(), status=FAILED, note=f"{type(error).__name__}: {error}"
            )
            return 0
        self.ledger.mark_digest_sent(*where, at=self.clock())
        log.info("sent the %s digest to %s %s", week, *where[:2])
        return 1


# -- watches (issue 10): digests, summaries past the hourly cap, and expiry reminders ----------

WATCH_JOB_ID = "gpudesk-watch-alerts"


class WatchAlertScheduler:
    """Every `every` (default 30 s), sends what `gpudesk.handlers.watching.due_alerts` finds
    due, through `senders[platform]`: hourly and daily digests, the summaries of hits past a
    member's hourly cap, hits from another platform, and reminders of watches about to lapse.

    `due_alerts` claims each message's alerts in the ledger before it is handed over; they are
    marked sent once `send` returns, failed if it raises, and never sent again either way (at
    most once: record first, send, mark sent). Shares the process's AsyncIOScheduler like
    `DigestScheduler` (without one, it makes and owns one).

        alerts = WatchAlertScheduler(desk.ledger, desk.settings, senders, scheduler=shared)
        alerts.start()     # in the running event loop
        ...
        await alerts.stop()
    """

    def __init__(
        self,
        ledger: Ledger,
        settings: DeskSettings,
        senders: Mapping[str, Send],
        *,
        every: timedelta = timedelta(seconds=30),
        clock: Callable[[], datetime] = system_clock,
        scheduler: AsyncIOScheduler | None = None,
    ):
        self.ledger = ledger
        self.settings = settings
        self.senders = dict(senders)
        self.every = every
        self.clock = clock
        self._owns_scheduler = scheduler is None
        self.scheduler = scheduler or AsyncIOScheduler(timezone=settings.zone)
        self._lock = asyncio.Lock()

    def start(self) -> None:
        """Add the job (first run at once: what came due while the bot was down); call in the
        running loop."""
        if self.scheduler.get_job(WATCH_JOB_ID) is not None:
            self.scheduler.remove_job(WATCH_JOB_ID)
        self.scheduler.add_job(
            self.run_due,
            IntervalTrigger(seconds=self.every.total_seconds()),
            id=WATCH_JOB_ID,
            next_run_time=datetime.now(UTC),
            coalesce=True,
            max_instances=1,
        )
        if self._owns_scheduler and not self.scheduler.running:
            self.scheduler.start()

    async def stop(self) -> None:
        """Remove the job (and shut our own scheduler down); wait for a run in progress."""
        if self.scheduler.get_job(WATCH_JOB_ID) is not None:
            self.scheduler.remove_job(WATCH_JOB_ID)
        if self._owns_scheduler and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
        async with self._lock:
            pass

    async def run_due(self) -> int:
        """Send everything due now; how many messages went out. Safe to call any time."""
        async with self._lock:
            try:
                due = due_alerts(
                    self.ledger, self.settings, self.clock(), platforms=sorted(self.senders)
                )
            except Exception:
                log.exception("could not collect the watch alerts due")
                return 0
            sent = 0
            for item in due:
                try:
                    await self.senders[item.reply.platform](item.reply)
                except Exception:
                    log.exception("could not send a watch alert to %s", item.reply.chat_id)
                    mark_failed(self.ledger, item, self.clock())
                    continue
                mark_sent(self.ledger, item, self.clock())
                sent += 1
            return sent
