"""Benchmark the desk on a full ledger: 1,000,000 offers over 90 days from `market_gen`.

Reports the time to take in a new offer and answer it with its matches (store, parse, book,
match: median and p99; target under 10 ms), `/price` and `/market` (target under 50 ms), and the
ledger file size and process memory. Before timing, the desk starts as `gpudesk run` starts it
(`Desk.recover`, which builds the market state the pulse commands keep up to date, and saves
it in the ledger). Last, a restart in a process of its own: the market is read back from the
ledger, with the rows added since. Run: `.venv/bin/python bench/bench_desk.py [--offers N]`.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.market_gen import END, scratch_ledger  # noqa: E402
from gpudesk.handlers.commands import DeskSettings  # noqa: E402
from gpudesk.handlers.desk import Desk  # noqa: E402
from gpudesk.market.message import ChatMessage  # noqa: E402
from gpudesk.storage.ledger import Ledger  # noqa: E402

NEW_OFFERS = [
    "出 H100 8卡 4台 北京 月租7.2w/台",
    "收 H100 8卡 2台 上海 月租8w/台",
    "WTS 64x H100 SXM Dallas $2.10/GPU/hr",
    "WTB 128 H200 Singapore budget $2.40/GPU/hr",
    "收 4090 48G 100张 1.8w/张 深圳",
    "出 A100 80G 32张 6.5w/张 杭州",
    "求租 H20 8卡 10台 月租2.3w/台",
    "出 910B 整机 8卡 20台 贵安 95w/台",
]


def timed(runs: int, action: Callable[[int], object]) -> list[float]:
    """Milliseconds per call of `action(i)` over `runs` calls."""
    times = []
    for i in range(runs):
        began = time.perf_counter()
        action(i)
        times.append((time.perf_counter() - began) * 1000)
    return times


def summary(name: str, times: list[float], target_ms: float) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    verdict = "ok" if p99 < target_ms else "OVER TARGET"
    return (
        f"{name:<22} median {statistics.median(times):7.2f} ms   p99 {p99:7.2f} ms"
        f"   (target < {target_ms:g} ms: {verdict})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--restart", type=Path, help=argparse.SUPPRESS)  # the restart's process
    args = parser.parse_args()
    if args.restart is not None:
        return restart(args.restart)

    with scratch_ledger(args.offers) as path:
        measure(path, args)
        # A restart, in a process of its own (its memory apart), on the ledger as the run left it.
        done = subprocess.run(
            [sys.executable, __file__, "--restart", str(path)], capture_output=True, text=True
        )
        print(done.stdout + done.stderr, end="")
        return done.returncode


def restart(path: Path) -> int:
    ledger = Ledger.open(path)
    desk = Desk(ledger, DeskSettings(language="en"), clock=lambda: END + timedelta(hours=1))
    began = time.perf_counter()
    desk.recover()
    started = time.perf_counter() - began
    print(f"restart (recover, the market read back from the ledger): {started:.1f} s")
    print(f"restart's process memory (max RSS): {peak_rss_of_this_process():.0f} MiB")
    return 0


def peak_rss_of_this_process() -> float:
    """MiB. `ru_maxrss` would not do in a process started by this one: Linux carries it over
    from the parent across fork and exec; the kernel's high-water mark of this process's own
    memory (`VmHWM`) starts afresh."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: Path, args: argparse.Namespace) -> None:
    now = END + timedelta(hours=1)
    ledger = Ledger.open(path)
    desk = Desk(ledger, DeskSettings(language="en"), clock=lambda: now)
    rng = random.Random(1)

    def said(text: str, sender_id: str, message_id: str) -> object:
        message = ChatMessage(
            platform="console",
            chat_id="bench",
            sender_id=sender_id,
            sender_name=sender_id.partition("-")[0],
            text=text,
            sent_at=now,
            message_id=message_id,
        )
        return desk.handle(message)

    def post(i: int) -> object:
        text = NEW_OFFERS[i % len(NEW_OFFERS)]
        return said(text, f"bench-{rng.random()}", f"bench-{time.time_ns()}-{i}")

    def command(text: str) -> Callable[[int], object]:
        def run(i: int) -> object:
            return said(text, f"asker-{i}", f"cmd-{time.time_ns()}-{i}")

        return run

    # What `gpudesk run` does on start: read what a crash left unread, and build the market
    # state that /price and /market read (seconds for a million posts, once).
    began = time.perf_counter()
    desk.recover()
    started = time.perf_counter() - began
    post(0)  # warm up: SQLite page cache, parser automata
    print(f"ledger: {path} ({path.stat().st_size / 2**20:.0f} MiB), {args.offers:,} offers")
    print(f"start (recover, market state built): {started:.1f} s")
    print(summary("new offer + matches", timed(args.runs, post), 10))
    print(summary("/price H100", timed(50, command("/price H100")), 50))
    print(summary("/book H100 rent", timed(50, command("/book H100 rent")), 50))
    print(summary("/market", timed(20, command("/market")), 50))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process memory (max RSS): {rss:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
