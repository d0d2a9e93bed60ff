"""`gpudesk run` as an operator starts it: a real process, config from a file, stdin closed."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from gpudesk.storage.ledger import Ledger
from tests.fakes.telegram_api import FakeTelegram
from tests.processes import start_run, telegram_config

ROOT = Path(__file__).resolve().parents[1]


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def open_offers(db: Path) -> int:
    if not db.exists():
        return 0
    with Ledger.open(db) as ledger:
        return len(ledger.open_offers(now=datetime.now(UTC)))


async def test_a_telegram_only_config_runs_the_telegram_adapter(tmp_path: Path) -> None:
    db = tmp_path / "desk.db"
    async with FakeTelegram() as api:
        config = telegram_config(tmp_path, api, db)
        process = await start_run(config, cwd=tmp_path)
        try:
            await wait_until(lambda: api.polling, 20, "the bot to poll")
            group = api.group("GPU Traders")
            alice, bob = api.user("Alice"), api.user("Bob")
            api.inject_message(group, alice, "WTS 4x H100 nodes Singapore $12k/node/month")
            await wait_until(lambda: open_offers(db) == 1, 10, "the offer in the ledger")
            api.inject_message(group, bob, "WTB 2x H100 nodes Singapore up to $13k/node/month")
            [reply] = await api.wait_for_sent(1, timeout=10)
            assert "Alice" in reply.plain and reply.reply_to is not None
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, stderr.decode()
        log = stderr.decode()
        assert "polling as @gpudesk_test_bot" in log
        assert api.token not in log  # the token never reaches a log
        assert set(api.commands) == {"", "zh"}  # the menu in English (default) and Chinese
