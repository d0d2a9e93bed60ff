"""The composition root: the one place that turns settings into a ledger, a desk and adapters.

Everything else receives what it needs as arguments; only this module reads `Settings`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from fractions import Fraction
from pathlib import Path

from gpudesk.bot.config import Settings
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
        admins=admins,
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
    recovered = desk.recover()
    if recovered:
        log.info("read %d message(s) left unread by the last run", recovered)
    adapters = []
    if settings.telegram_enabled:
        adapters.append("telegram")
    if settings.wechat_enabled:
        adapters.append("wechat")
    if not adapters:
        log.info("no chat credentials configured: starting the console chat")
        run_console(desk)
        return
    asyncio.run(_run_adapters(settings, desk, adapters))


async def _run_adapters(settings: Settings, desk: Desk, adapters: list[str]) -> None:
    raise NotImplementedError("chat adapters are wired in a later change")
