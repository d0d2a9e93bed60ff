"""The composition root: the one place that turns settings into a ledger, a desk and adapters.

Everything else receives what it needs as arguments; only this module reads `Settings`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from gpudesk.bot.config import Settings
from gpudesk.bot.logs import install_privacy_filter
from gpudesk.bot.outbox import OutboxJanitor, OutboxPolicy
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.market.match import MatchPolicy
from gpudesk.market.normalise import Valuation
from gpudesk.market.pulse import ReadingThresholds
from gpudesk.storage.ledger import Ledger

log = logging.getLogger("gpudesk")


def desk_settings(settings: Settings) -> DeskSettings:
    desk = settings.desk
    admins = frozenset(
        (platform, user_id)
        for platform in ("telegram", "wechat", "console")
        for user_id in getattr(settings.admins, platform)
    )
    return DeskSettings(
        language=desk.language,
        timezone=desk.timezone,
        valuation=Valuation(desk.currency, desk.usd_cny),
        offer_days=desk.offer_days,
        pulse_days=desk.pulse_days,
        match_policy=MatchPolicy(tolerance=desk.match_tolerance),
        thresholds=ReadingThresholds(
            strong=Fraction(desk.reading_strong), lean=Fraction(desk.reading_lean)
        ),
        match_replies=desk.match_replies,
        commands_per_minute=desk.commands_per_minute,
        recover_reply_minutes=desk.recover_reply_minutes,
        admins=admins,
        watch=settings.watch.policy(),
    )


def outbox_policy(settings: Settings) -> OutboxPolicy:
    """How late a queued reply may still go, and how long sent ones are kept (issue 9)."""
    return OutboxPolicy.of(
        resend_within_hours=settings.outbox.resend_within_hours,
        keep_sent_days=settings.outbox.keep_sent_days,
        digest_grace_hours=settings.digest.grace_hours,
    )


def ledger_path(settings: Settings, db: Path | None) -> Path:
    """`--db` (or GPUDESK_DB) wins over `[ledger] path`."""
    return db if db is not None else settings.ledger.path


def open_ledger(settings: Settings, db: Path | None = None) -> Ledger:
    desk = settings.desk
    return Ledger.open(ledger_path(settings, db), Valuation(desk.currency, desk.usd_cny))


def build_desk(settings: Settings, db: Path | None = None) -> Desk:
    return Desk(open_ledger(settings, db), desk_settings(settings))


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request URL at INFO, and a Telegram URL carries the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    install_privacy_filter()  # phone numbers and WeChat ids masked in the log (issue 9)


def run_console(desk: Desk, *, chat: str = "console") -> int:
    """The console chat on `desk` until end of input; returns how many lines were posted."""
    from gpudesk.bot.console import ConsoleChat, typed_lines

    console = ConsoleChat(desk, chat_id=chat, chat_title=chat)
    # A file with bad bytes must not end the session: they are read as U+FFFD.
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")
    if sys.stdin.isatty():
        print(
            "gpudesk console: type offers or commands, e.g. 'alice: 出 H100 8卡 10台 月租7.5w/台',"
            " '/price H100', '/help'. Ctrl-D to leave.",
            flush=True,
        )
        return console.run(typed_lines(), interactive=True)
    return console.run(sys.stdin, interactive=False)


def run(settings: Settings, db: Path | None = None) -> None:
    """Start every adapter the settings enable; the console chat when none is."""
    desk = build_desk(settings, db)
    adapters = []
    if settings.telegram_enabled:
        adapters.append("telegram")
    if settings.wechat_enabled:
        adapters.append("wechat")
    # Their adapters send replies from the ledger's outbox and mark them sent (issue 9); set
    # before `recover()`, so that its answers to what a crash left unread are queued there too.
    desk.outbox_platforms = frozenset(adapters)
    recovered = desk.recover()
    if recovered:
        log.info("read %d message(s) left unread by the last run", recovered)
    if not adapters:
        log.info("no chat credentials configured: starting the console chat")
        desk.take_recovered_replies()  # the console has no one to tell: a new session
        run_console(desk)
        return
    asyncio.run(_run_adapters(settings, desk, adapters))


async def _run_adapters(settings: Settings, desk: Desk, adapters: list[str]) -> None:
    """Run the enabled chat adapters and the digest schedule until SIGINT or SIGTERM."""
    from gpudesk.bot.scheduler import DigestScheduler, Send, WatchAlertScheduler

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    running: list[Any] = []
    endings: list[Awaitable[None]] = [stop.wait()]
    senders: dict[str, Send] = {}
    policy = outbox_policy(settings)
    try:
        if "telegram" in adapters:
            from gpudesk.bot.telegram import TelegramAdapter

            token = settings.telegram.token
            assert token is not None  # telegram_enabled says so
            telegram = TelegramAdapter(
                token.get_secret_value(),
                desk,
                logger=logging.getLogger("gpudesk.telegram"),
                base_url=settings.telegram.base_url,
                allowed_chat_ids=settings.telegram.chats,
                outbox=desk.ledger,  # replies survive a crash (issue 9)
                policy=policy,
            )
            await telegram.start()
            running.append(telegram)
            endings.append(telegram.wait_finished())
            senders["telegram"] = telegram.send
        if "wechat" in adapters:
            from gpudesk.bot.wechat import WechatAdapter

            wechat_settings = settings.wechat
            assert wechat_settings.endpoint is not None and wechat_settings.token is not None
            wechat = WechatAdapter(
                endpoint=wechat_settings.endpoint,
                token=wechat_settings.token.get_secret_value(),
                desk=desk,
                min_seconds_between_messages=wechat_settings.min_seconds_between_messages,
                daily_cap=wechat_settings.daily_cap,
                batch_seconds=wechat_settings.batch_seconds,
                cache_dir=ledger_path(settings, None).resolve().parent / ".wechaty-cache",
                outbox=desk.ledger,  # replies survive a crash (issue 9)
                policy=policy,
                zone=desk.settings.zone,  # the daily cap's day
            )
            await wechat.start()
            running.append(wechat)
            senders["wechat"] = wechat.send
        # What `recover()` answered on a platform not in `outbox_platforms`: sent now.
        for reply in desk.take_recovered_replies():
            if reply.platform in senders:
                await senders[reply.platform](reply)
            else:
                log.warning("no adapter for a recovered reply on %s; dropped", reply.platform)
        janitor = OutboxJanitor(desk.ledger, policy)  # sent replies go after keep_sent_days
        janitor.start()
        running.append(janitor)
        if settings.digest.enabled:
            digests = DigestScheduler(
                desk.ledger,
                desk.settings,
                senders,
                schedule=settings.digest.schedule,
                grace=timedelta(hours=settings.digest.grace_hours),
            )
            digests.start()
            running.append(digests)
        if settings.watch.enabled:
            watch_alerts = WatchAlertScheduler(desk.ledger, desk.settings, senders)
            watch_alerts.start()
            running.append(watch_alerts)
        log.info("gpudesk is running (%s); Ctrl-C to stop", ", ".join(adapters))
        await _first_to_end(endings)
    finally:
        for part in reversed(running):
            try:
                await part.stop()
            except Exception:
                log.exception("could not stop %s cleanly", type(part).__name__)


async def _first_to_end(endings: list[Awaitable[None]]) -> None:
    """Wait for a stop signal, or for an adapter that ends on its own (a revoked token)."""
    tasks = [asyncio.ensure_future(ending) for ending in endings]
    finished, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in finished:
        task.result()  # an adapter's fatal error ends the run with it
