"""Guarantee 3: writes never fail on contention. Two writer processes and the bot share one
ledger file, thousands of transactions each, and not one "database is locked" (issue 9)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import pytest

from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.market.normalise import Valuation
from gpudesk.storage.ledger import Ledger
from tests.fakes.telegram_api import FakeTelegram
from tests.test_telegram import running

ROOT = Path(__file__).resolve().parents[1]
WRITES = 2_000  # transactions per writer process
BOT_UPDATES = 600

pytestmark = pytest.mark.slow


async def test_two_writers_and_the_bot_never_see_a_locked_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every transaction of every writer commits, and the bot reads every update."""
    db = tmp_path / "ledger.db"
    Ledger.open(db).close()  # the bot's ledger exists before the others open it
    with Ledger.open(db, Valuation()) as ledger:
        desk = Desk(ledger, DeskSettings(language="en"))
        async with FakeTelegram() as api:
            group = api.group("Busy")
            writers = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "tests.contention_writer",
                    str(db),
                    name,
                    str(WRITES),
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    cwd=ROOT,
                )
                for name in ("import-a", "import-b")
            ]
            with caplog.at_level(logging.WARNING):
                async with running(api, desk):
                    for n in range(BOT_UPDATES):
                        text = f"出 A100 8卡 {n % 9 + 1}台 上海 月租{4 + n % 30 / 10}w/台 #{n}"
                        api.inject_message(group, api.user(f"t{n}"), text)
                        if n % 25 == 0:
                            await asyncio.sleep(0.25)  # updates keep coming while they write
                    outputs = [await w.communicate() for w in writers]
                    await api.wait_until_confirmed(timeout=60)
        counts = dict(
            ledger.conn.execute("SELECT platform, count(*) FROM messages GROUP BY platform")
        )

    for writer, (out, err) in zip(writers, outputs, strict=True):
        log = err.decode()
        assert writer.returncode == 0, log
        assert "locked" not in log and "could not handle" not in log, log
        summary = json.loads(out.decode().splitlines()[-1])
        assert summary["done"] == WRITES and summary["failed"] == 0
    assert "locked" not in caplog.text and "could not handle" not in caplog.text
    assert counts == {"import": 2 * WRITES, "telegram": BOT_UPDATES}
