"""Benchmark watches (issue 10): the cost of checking a new offer against 100,000 active watches.

Run as `.venv/bin/python bench/bench_watch.py [--watches N] [--offers M] [--seed S]`. Builds a
ledger in a temporary directory with N running watches from N/8 members (a market's mix: most
watch for sellers of the popular GPUs, with price ceilings around the going rate, half of them
tied to a place, some to a quantity or one group), then times `Ledger.watches_for` (the index
walk plus the exact test of every candidate) for M new offers drawn from the same market.
Prints p50/p99/mean per offer and how many watches an offer meets (the cost grows with that:
every watch met is a member to tell), and the one-off cost of loading the watches into memory.
Target: p50 and mean under 5 ms per offer.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpudesk.market.book import PostedOffer  # noqa: E402
from gpudesk.market.normalise import Valuation, gpu_count  # noqa: E402
from gpudesk.market.offer import Currency, Deal, Offer, PricePer, QuantityUnit, Side  # noqa: E402
from gpudesk.market.watch import Delivery, Watch  # noqa: E402
from gpudesk.storage.ledger import Ledger  # noqa: E402

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
# GPU, share of the market, going rent (¥ per GPU-hour) and sale (¥ per GPU) prices.
MARKET = (
    ("H100", 30, 12.0, 210_000),
    ("H200", 10, 16.0, 260_000),
    ("H800", 8, 11.0, 190_000),
    ("A100", 12, 6.0, 90_000),
    ("A800", 6, 6.5, 95_000),
    ("RTX 4090", 12, 1.8, 16_000),
    ("H20", 6, 5.0, 95_000),
    ("L40S", 4, 4.0, 55_000),
    ("B200", 6, 25.0, 380_000),
    ("L20", 3, 2.5, 30_000),
    ("A10", 3, 1.2, 12_000),
)
PLACES = (
    "Beijing",
    "Shanghai",
    "Shenzhen",
    "Hangzhou",
    "Guangzhou",
    "Chengdu",
    "Ulanqab",
    "Guiyang",
    "Wuhan",
    "Hong Kong",
    "Singapore",
    "Tokyo",
    "Dallas",
    "Frankfurt",
    "Iceland",
)
GROUPS = tuple(f"-100{n:04d}" for n in range(50))


def pick_gpu(rng: random.Random) -> tuple[str, float, int]:
    gpu, _, rent, sale = rng.choices(MARKET, weights=[m[1] for m in MARKET])[0]
    return gpu, rent, sale


def make_watch(rng: random.Random, member: int) -> Watch:
    gpu, rent, sale = pick_gpu(rng)
    side = Side.SELL if rng.random() < 0.85 else Side.BUY  # most members are buying
    deal = rng.choices((Deal.RENT, Deal.SALE, None), weights=(65, 25, 10))[0]
    limit = None
    if deal is not None and rng.random() < 0.8:
        going = rent if deal is Deal.RENT else sale
        # Ceilings a little under the going rate (hoping for a deal), floors a little over it.
        factor = rng.uniform(0.6, 1.1) if side is Side.SELL else rng.uniform(0.9, 1.4)
        limit = Decimal(str(round(going * factor, 2)))
    return Watch(
        gpu=gpu,
        side=side,
        deal=deal,
        limit=limit,
        currency=Currency.CNY,
        place=rng.choice(PLACES) if rng.random() < 0.5 else None,
        min_gpus=rng.choice((8, 16, 32, 64, 128, 256)) if rng.random() < 0.4 else None,
        scope=("telegram", rng.choice(GROUPS)) if rng.random() < 0.05 else None,
        delivery=Delivery.EACH if rng.random() < 0.8 else Delivery.DAILY,
        owner=("telegram", str(10_000 + member)),
    )


def make_offer(rng: random.Random, valuation: Valuation, n: int) -> PostedOffer:
    gpu, rent, sale = pick_gpu(rng)
    deal = Deal.RENT if rng.random() < 0.7 else Deal.SALE
    going = rent if deal is Deal.RENT else sale
    priced = rng.random() < 0.85
    offer = Offer(
        side=Side.SELL if rng.random() < 0.7 else Side.BUY,
        deal=deal,
        gpu=gpu,
        quantity=rng.choice((None, 8, 16, 32, 64, 128, 512)),
        quantity_unit=QuantityUnit.GPU,
        price=Decimal(str(round(going * rng.uniform(0.8, 1.3), 2))) if priced else None,
        currency=Currency.CNY if priced else None,
        price_per=(PricePer.GPU_HOUR if deal is Deal.RENT else PricePer.GPU) if priced else None,
        location=rng.choice(PLACES) if rng.random() < 0.8 else None,
    )
    return PostedOffer(
        id=n,
        offer=offer,
        poster_id=str(rng.randrange(10_000, 30_000)),
        poster_name="poster",
        platform="telegram",
        chat_id=rng.choice(GROUPS),
        chat_title="group",
        posted_at=NOW,
        unit_price=valuation.unit_price(offer),
        gpus=gpu_count(offer),
        message_id=str(n),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=100_000)
    parser.add_argument("--offers", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    valuation = Valuation()

    with tempfile.TemporaryDirectory() as tmp, Ledger.open(Path(tmp) / "bench.db") as ledger:
        began = time.perf_counter()
        members = max(1, args.watches // 8)
        with ledger.transaction():
            for n in range(args.watches):
                ledger.add_watch(
                    make_watch(rng, n % members),
                    name="member",
                    chat_id=rng.choice(GROUPS),
                    in_group=True,
                    lang="zh",
                    stated="bench",
                    created_at=NOW - timedelta(days=rng.uniform(0, 29)),
                    expires_at=NOW + timedelta(days=rng.uniform(1, 30)),
                    most=1_000,
                )
        print(
            f"watches {args.watches:,} from {members:,} members, built in"
            f" {time.perf_counter() - began:.1f}s"
        )

        offers = [make_offer(rng, valuation, n) for n in range(args.offers)]
        began = time.perf_counter()
        ledger.watches_for(offers[0], now=NOW)  # a process's first check loads the book
        print(f"book loaded from the ledger in {time.perf_counter() - began:.2f}s (once a process)")
        for posted in offers[:50]:  # warm the caches
            ledger.watches_for(posted, now=NOW)
        clock = time.perf_counter_ns
        timings, found = [], []
        gc.disable()
        try:
            for posted in offers:
                t0 = clock()
                met = ledger.watches_for(posted, now=NOW)
                timings.append(clock() - t0)
                found.append(len(met))
        finally:
            gc.enable()

    timings.sort()
    p50 = timings[len(timings) // 2] / 1e6
    p99 = timings[int(len(timings) * 0.99)] / 1e6
    mean = statistics.fmean(timings) / 1e6
    print(f"offers checked {len(offers):,}")
    print(
        f"per offer: p50 {p50:.2f} ms  p99 {p99:.2f} ms  mean {mean:.2f} ms"
        f"  max {timings[-1] / 1e6:.2f} ms"
    )
    print(
        f"watches met per offer: mean {statistics.fmean(found):.1f}  max {max(found)}"
        f"  (offers meeting none: {sum(1 for f in found if not f) / len(found):.0%})"
    )
    ok = p50 < 5 and mean < 5
    print("target (p50 and mean < 5 ms per offer):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
