"""The crash run: a real `gpudesk run` process, killed with SIGKILL at random moments while a fake
Bot API server feeds it updates, restarted after each kill, then audited from outside.

Used by `tests/test_crash.py` (a short run in the suite) and `bench/soak_crash.py` (the long run
behind `make soak`). The fake server (`tests.fakes.telegram_api.FakeTelegram`) lives in this
process, so it outlives every bot process and remembers which updates were confirmed.

What is fed: offers to sell, each from a poster of its own (so no post is a repost of another
and each must yield exactly the offers its text holds); a few bids that match them (one match
reply each, in the group); and commands in private chats (one answer each). What is checked
afterwards, through `gpudesk export` (the audit anyone can run) and SQLite itself:

- every update is in the ledger once: one message row per (chat, message id), none missing;
- every message holds exactly the offers its text parses to, once;
- `PRAGMA integrity_check` is ok, and every update was confirmed to the server;
- every reply the desk owed was sent (at least once), and none is left queued.

    report = asyncio.run(crash_run(Path("/tmp/soak"), updates=10_000, kills=20, seed=9))
    print(report.summary())
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gpudesk.market.parse import parse_offers
from tests.fakes.telegram_api import FakeChat, FakeTelegram, FakeUser

ROOT = Path(__file__).resolve().parents[1]

MODELS = ("H100", "H800", "A100", "4090", "H20", "L40S")
PLACES = ("北京", "上海", "深圳", "杭州", "Singapore", "Tokyo")


@dataclass
class CrashReport:
    """What the crash run fed, did and found."""

    updates: int = 0  # updates fed to the server
    kills: int = 0  # SIGKILLs that hit a running bot
    restarts: int = 0  # bot processes started, the last one included
    lost: int = 0  # updates with no message row
    doubled: int = 0  # updates with more than one message row
    offers: int = 0  # offers in the ledger
    offers_lost: int = 0  # offers a message's text holds that are not in the ledger
    offers_doubled: int = 0  # offers in the ledger beyond what the text holds
    redelivered: int = 0  # updates the server handed out more than once (kills mid-batch)
    unconfirmed: int = 0  # updates never confirmed to the server
    integrity: str = ""  # PRAGMA integrity_check
    replies_owed: int = 0  # answers the desk queued (commands and matches)
    replies_unsent: int = 0  # still queued at the end
    answers_missing: int = 0  # commands and bids fed that got no reply in their chat
    replies_resent: int = 0  # replies that reached the chat twice (at-least-once delivery)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (
            f"updates fed {self.updates}, kills {self.kills} ({self.restarts} starts), "
            f"lost {self.lost}, doubled {self.doubled}; offers {self.offers} "
            f"(lost {self.offers_lost}, doubled {self.offers_doubled}); "
            f"redelivered after a kill {self.redelivered}, unconfirmed {self.unconfirmed}; "
            f"replies owed {self.replies_owed}, unsent {self.replies_unsent}, "
            f"missing {self.answers_missing}, sent twice {self.replies_resent}; "
            f"integrity {self.integrity}; {self.seconds:.1f} s"
        )


@dataclass(frozen=True, slots=True)
class _Fed:
    chat_id: int
    message_id: int
    text: str
    answered: bool  # a reply is owed in `chat_id`


async def crash_run(
    workdir: Path,
    *,
    updates: int,
    kills: int,
    seed: int,
    life: tuple[float, float] = (0.4, 2.0),
    feed_seconds: float | None = None,
    settle_timeout: float = 60.0,
) -> CrashReport:
    """Feed `updates` while killing the bot `kills` times at random moments (each life lasts a
    uniform `life` seconds from its start, seeded), then let a last life finish and audit."""
    rng = random.Random(seed)
    report = CrashReport()
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "ledger.db"
    async with FakeTelegram() as api:
        config = workdir / "config.toml"
        config.write_text(
            f'[ledger]\npath = "{db}"\n[telegram]\ntoken = "{api.token}"\n'
            f'base_url = "{api.base_url}"\n[desk]\nlanguage = "en"\n',
            encoding="utf-8",
        )
        group = api.group("GPU Crash Traders")
        fed: list[_Fed] = []
        pace = feed_seconds if feed_seconds is not None else kills * sum(life) / 2
        feeder = asyncio.create_task(_feed(api, group, fed, updates, pace, rng))
        bot = _Bot(config, workdir)
        try:
            for _ in range(kills):
                await bot.start()
                await asyncio.sleep(rng.uniform(*life))
                if await bot.kill():
                    report.kills += 1
            await feeder
            menus = len(api.calls_to("setMyCommands"))
            await bot.start()
            await _settle(api, db, fed, menus, settle_timeout)
            if not await bot.stop():
                report.problems.append("the last bot did not stop cleanly on SIGTERM")
        finally:
            feeder.cancel()
            await bot.kill()
        report.restarts = bot.starts
        report.updates = len(fed)
        report.redelivered = sum(1 for n in api.delivered.values() if n > 1)
        report.unconfirmed = len(api.pending_update_ids)
        _audit_replies(report, api, fed)
    _audit_ledger(report, db, fed)
    report.seconds = time.monotonic() - started
    _judge(report, kills)
    return report


# --- feeding -----------------------------------------------------------------------------------


async def _feed(
    api: FakeTelegram,
    group: FakeChat,
    fed: list[_Fed],
    updates: int,
    seconds: float,
    rng: random.Random,
) -> None:
    """Inject `updates` updates evenly over `seconds`: mostly offers, a few bids, commands."""
    ticks = max(1, int(seconds / 0.05))
    per_tick = updates / ticks
    bids = set(range(updates - 3, updates))  # last, so that no later ask is matched to them
    owed = 0.0
    for number in range(updates):
        if number == 0:  # the ask every bid below matches
            text = "出 H100 8卡 10台 北京 月租7w/台"
            fed.append(_Fed(group.id, api.inject_message(group, api.user("p0"), text), text, False))
        elif number in bids:
            # A bid above the first ask: it matches, and the desk answers it in the group.
            text = f"收 H100 8卡 2台 北京 月租9w/台 #{number}"
            fed.append(
                _Fed(group.id, api.inject_message(group, api.user(f"b{number}"), text), text, True)
            )
        elif number % 20 == 7:
            user = api.user(f"c{number}")
            message_id = api.inject_private(user, "/help")
            fed.append(_Fed(user.id, message_id, "/help", True))
        else:
            text = _offer(rng, number)
            poster: FakeUser = api.user(f"p{number}")
            fed.append(_Fed(group.id, api.inject_message(group, poster, text), text, False))
        owed += 1
        if owed >= per_tick:
            owed -= per_tick
            await asyncio.sleep(0.05)


def _offer(rng: random.Random, number: int) -> str:
    model, place = rng.choice(MODELS), rng.choice(PLACES)
    servers = rng.randint(1, 20)
    price = rng.randint(50, 90) / 10
    if rng.random() < 0.2:  # some posts carry two offers
        other = rng.choice(MODELS)
        return (
            f"出 {model} 8卡 {servers}台 {place} 月租{price}w/台\n"
            f"出 {other} 8卡 {servers + 1}台 {place} 月租{price + 1}w/台 #{number}"
        )
    return f"出 {model} 8卡 {servers}台 {place} 月租{price}w/台 #{number}"


# --- the bot process ---------------------------------------------------------------------------


class _Bot:
    """`gpudesk run` as a child process, one life at a time."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self._config = config
        self._workdir = workdir
        self._process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("GPUDESK_")}
        log = (self._workdir / f"life-{self.starts:03d}.log").open("wb")
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gpudesk",
                "--config",
                str(self._config),
                "run",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
                cwd=self._workdir,
                env=env,
            )
        finally:
            log.close()  # the child has its own copy

    async def kill(self) -> bool:
        """SIGKILL; True if the bot was still running (a real crash, not a corpse)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return False
        process.send_signal(signal.SIGKILL)
        await process.wait()
        return process.returncode == -signal.SIGKILL

    async def stop(self) -> bool:
        """SIGTERM and wait; True if it ended cleanly."""
        process, self._process = self._process, None
        if process is None:
            return False
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
            return False
        return process.returncode == 0


async def _settle(api: FakeTelegram, db: Path, fed: list[_Fed], menus: int, timeout: float) -> None:
    """Wait until the last life is up (it set both command menus, so SIGTERM stops it
    cleanly), has confirmed every update and has sent every queued reply."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        up = len(api.calls_to("setMyCommands")) >= menus + 2
        read = up and not api.pending_update_ids and _rows(db, "messages") >= len(fed)
        if read and not _queued(db):
            return
        await asyncio.sleep(0.1)


def _rows(db: Path, table: str) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


def _queued(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM outbox WHERE status = 'queued'").fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 1


# --- the audit ---------------------------------------------------------------------------------


def _audit_replies(report: CrashReport, api: FakeTelegram, fed: list[_Fed]) -> None:
    """Each bid is answered under it in the group; each private chat holds one command."""
    answers = Counter(
        (sent.chat_id, sent.reply_to if sent.chat_id < 0 else None) for sent in api.sent
    )
    for item in fed:
        if item.answered:
            got = answers[(item.chat_id, item.message_id if item.chat_id < 0 else None)]
            report.answers_missing += got == 0
            report.replies_resent += got > 1


def _audit_ledger(report: CrashReport, db: Path, fed: list[_Fed]) -> None:
    """Count from outside: the rows `gpudesk export` gives of messages and offers (each with
    its platform message id), and SQLite's own check."""
    messages = Counter((row["chat_id"], row["message_id"]) for row in _export(db, "messages"))
    offers = Counter((row["chat_id"], row["message_id"]) for row in _export(db, "offers"))
    for item in fed:
        key = (str(item.chat_id), str(item.message_id))
        stored = messages.get(key, 0)
        report.lost += stored == 0
        report.doubled += stored > 1
        if item.chat_id < 0:  # a group post: its offers, exactly once
            expected = len(parse_offers(item.text))
            report.offers_lost += max(0, expected - offers.get(key, 0))
            report.offers_doubled += max(0, offers.get(key, 0) - expected)
    report.offers = sum(offers.values())
    with sqlite3.connect(db) as conn:
        report.integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        report.replies_owed = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        report.replies_unsent = conn.execute(
            "SELECT count(*) FROM outbox WHERE status = 'queued'"
        ).fetchone()[0]


def _export(db: Path, what: str) -> list[dict[str, object]]:
    """The rows `gpudesk export --what <what>` writes (the same functions, in process)."""
    from gpudesk.bot.export import message_rows, offer_rows
    from gpudesk.storage.ledger import Ledger

    with Ledger.open(db) as ledger:
        if what == "messages":
            return list(message_rows(ledger))
        return list(offer_rows(ledger, now=datetime.now(UTC)))


def _judge(report: CrashReport, kills: int) -> None:
    checks = {
        f"only {report.kills} of {kills} kills hit a running bot": report.kills >= kills,
        f"{report.lost} updates lost": report.lost == 0,
        f"{report.doubled} updates doubled": report.doubled == 0,
        f"{report.offers_lost} offers lost": report.offers_lost == 0,
        f"{report.offers_doubled} offers doubled": report.offers_doubled == 0,
        f"{report.unconfirmed} updates unconfirmed": report.unconfirmed == 0,
        f"integrity_check said {report.integrity!r}": report.integrity == "ok",
        f"{report.replies_unsent} replies left queued": report.replies_unsent == 0,
        f"{report.answers_missing} answers never arrived": report.answers_missing == 0,
    }
    report.problems.extend(problem for problem, fine in checks.items() if not fine)
