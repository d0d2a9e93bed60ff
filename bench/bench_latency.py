"""Message-in to reply-out latency through the real chat libraries, on a full ledger.

Telegram: python-telegram-bot polls a fake Bot API server on 127.0.0.1 (`tests/fakes`); WeChat:
the Wechaty SDK talks gRPC to a fake puppet service on 127.0.0.1. Each round posts a command in
a fresh group, ten a second (so outbound pacing never queues it), and times until the reply
reaches the fake server. The ledger holds 1,000,000 offers from `market_gen`. Target: p99 under
50 ms.
Run: `.venv/bin/python bench/bench_latency.py [--offers N] [--rounds N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.market_gen import END, scratch_ledger  # noqa: E402
from gpudesk.handlers.commands import DeskSettings  # noqa: E402
from gpudesk.handlers.desk import Desk  # noqa: E402
from gpudesk.storage.ledger import Ledger  # noqa: E402

# Rounds arrive 10 a second: below the outbound caps (Telegram: under 30 a second overall),
# so the figure is the desk and the library, not the pacing a flood would meet.
GAP = 0.1


def report(name: str, times: list[float]) -> None:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    verdict = "ok" if p99 < 50 else "OVER TARGET"
    print(
        f"{name:<10} rounds {len(times):4d}   median {statistics.median(times):6.2f} ms"
        f"   p99 {p99:6.2f} ms   (target p99 < 50 ms: {verdict})",
        flush=True,
    )


async def telegram_rounds(desk: Desk, rounds: int) -> list[float]:
    from gpudesk.bot.telegram import TelegramAdapter
    from tests.fakes.telegram_api import FakeTelegram

    times = []
    async with FakeTelegram() as api:
        adapter = TelegramAdapter(
            api.token,
            desk,
            logger=logging.getLogger("bench"),
            base_url=api.base_url,
            poll_timeout=10,
        )
        await adapter.start()
        try:
            for n in range(rounds):
                # A fresh member and group each round: no command limit, no outbound queue.
                user, group = api.user(f"Bench {n}"), api.group(f"bench group {n}")
                before = len(api.sent)
                began = time.perf_counter()
                api.inject_message(group, user, "/book H100 rent")
                await api.wait_for_sent(before + 1, timeout=10)
                times.append((time.perf_counter() - began) * 1000)
                await asyncio.sleep(GAP)
        finally:
            await adapter.stop()
    return times


async def wechat_rounds(desk: Desk, rounds: int) -> list[float]:
    from gpudesk.bot.wechat import WechatAdapter
    from tests.fakes.wechat_puppet import FakePuppetService

    times = []
    service = FakePuppetService()
    for n in range(rounds):
        service.add_contact(f"wxid_bench{n}", f"Bench {n}")
        service.add_room(f"{n}@chatroom", f"bench room {n}", [f"wxid_bench{n}"])
    await service.start()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["CACHE_DIR"] = cache
        adapter = WechatAdapter(
            endpoint=service.endpoint,
            token="bench",
            desk=desk,
            min_seconds_between_messages=0,
            cache_dir=Path(cache),
            liveness_seconds=None,
        )
        await adapter.start()
        await adapter.wait_ready(timeout=10)
        try:
            for n in range(rounds):
                before = len(service.texts())
                began = time.perf_counter()
                service.post(f"{n}@chatroom", f"wxid_bench{n}", "/book H100 rent")
                await service.wait_for(lambda b=before: len(service.texts()) > b, timeout=10)
                times.append((time.perf_counter() - began) * 1000)
                await asyncio.sleep(GAP)
        finally:
            await adapter.stop()
            await service.stop()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("WECHATY_LOG", "warn")

    now = END + timedelta(hours=1)
    # A copy per run: the fakes number chats and messages from 1 each time, and the ledger
    # rightly ignores a message it has already stored.
    with scratch_ledger(args.offers) as path:
        print(f"ledger: {args.offers:,} offers")
        desk = Desk(Ledger.open(path), DeskSettings(language="en"), clock=lambda: now)
        desk.recover()  # as `gpudesk run` starts it
        report("telegram", asyncio.run(telegram_rounds(desk, args.rounds)))
        report("wechat", asyncio.run(wechat_rounds(desk, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
