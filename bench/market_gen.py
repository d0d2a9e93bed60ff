"""A realistic synthetic market for benchmarks: offers over N days, written into a real ledger.

Models, deals, sides, prices, sizes and places follow the shapes of real GPU groups: H100 and
4090 dominate, rent outnumbers sale, sellers outnumber buyers about three to one, prices scatter
around a per-model level, a few thousand parties post in a few dozen groups, and many posts are
reposts. The same seed gives the same ledger.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from gpudesk.market.message import ChatMessage
from gpudesk.market.normalise import gpu_count
from gpudesk.market.offer import Currency, Deal, Offer, PricePer, QuantityUnit, Side
from gpudesk.storage.ledger import Ledger

# model: (weight, rent CNY per GPU-hour, sale CNY per GPU)
MODELS = {
    "H100": (30, 12.0, 210_000),
    "H800": (8, 9.0, 180_000),
    "H200": (8, 16.0, 260_000),
    "H20": (10, 3.5, 95_000),
    "A100": (10, 6.0, 80_000),
    "A800": (5, 5.5, 75_000),
    "RTX 4090": (20, 1.8, 18_000),
    "RTX 4090D": (4, 1.6, 16_000),
    "L40S": (4, 4.0, 52_000),
    "B200": (3, 25.0, 380_000),
    "Ascend 910B": (6, 4.5, 110_000),
    "MI300X": (2, 10.0, 150_000),
}
PLACES = [
    "Beijing",
    "Shanghai",
    "Shenzhen",
    "Hangzhou",
    "Ulanqab",
    "Qingyang",
    "Wuhu",
    "Chengdu",
    "Guiyang",
    "Hong Kong",
    "Singapore",
    "Dallas",
    None,
]
END = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Post:
    message: ChatMessage
    offer: Offer


def posts(count: int, days: int = 90, seed: int = 7, end: datetime = END) -> Iterator[Post]:
    rng = random.Random(seed)
    names = list(MODELS)
    weights = [MODELS[name][0] for name in names]
    start = end - timedelta(days=days)
    span = (end - start).total_seconds()
    for n in range(count):
        gpu = rng.choices(names, weights)[0]
        _, rent_level, sale_level = MODELS[gpu]
        deal = Deal.RENT if rng.random() < 0.65 else Deal.SALE
        side = Side.SELL if rng.random() < 0.75 else Side.BUY
        by_server = rng.random() < 0.5
        level = rent_level if deal is Deal.RENT else sale_level
        unit = level * rng.uniform(0.7, 1.3) * (0.9 if side is Side.BUY else 1.0)
        usd = rng.random() < 0.15
        if deal is Deal.RENT:
            per = PricePer.SERVER_MONTH if by_server else PricePer.GPU_HOUR
            amount = unit * (730 * 8 if by_server else 1)
        else:
            per = PricePer.SERVER if by_server else PricePer.GPU
            amount = unit * (8 if by_server else 1)
        if usd:
            amount /= 7.2
        price = None if rng.random() < 0.15 else Decimal(str(round(amount, 2 if usd else 0)))
        quantity = (
            rng.choice([1, 2, 4, 8, 10, 16, 32]) if by_server else rng.choice([8, 16, 64, 100, 256])
        )
        offer = Offer(
            side=side,
            deal=deal,
            gpu=gpu,
            quantity=quantity,
            quantity_unit=QuantityUnit.SERVER if by_server else QuantityUnit.GPU,
            gpus_per_server=8 if by_server else None,
            price=price,
            currency=None if price is None else (Currency.USD if usd else Currency.CNY),
            price_per=None if price is None else per,
            location=rng.choice(PLACES),
        )
        party = rng.randrange(5000)
        chat = rng.randrange(40)
        sent_at = start + timedelta(seconds=span * n / count)
        message = ChatMessage(
            platform="telegram" if chat < 15 else "wechat",
            chat_id=f"group-{chat}",
            chat_title=f"GPU 交易群 {chat}",
            sender_id=f"user-{party}",
            sender_name=f"trader{party}",
            text=f"{side.value} {gpu} {deal.value} #{n}",
            sent_at=sent_at,
            message_id=str(n),
        )
        yield Post(message, offer)


def fill(
    ledger: Ledger, count: int, *, days: int = 90, lifetime_days: int = 14, progress: bool = True
) -> float:
    """Write `count` posts and their offers into `ledger`; returns seconds taken."""
    began = time.perf_counter()
    batch = 20_000
    lifetime = timedelta(days=lifetime_days)
    stream = posts(count, days)
    done = 0
    while done < count:
        with ledger.transaction():
            for post in stream:
                stored = ledger.store_message(post.message, received_at=post.message.sent_at)
                gpus = gpu_count(post.offer)
                offer_id = ledger.add_offer(
                    message_row=stored.id,
                    item=0,
                    message=post.message,
                    offer=post.offer,
                    gpus=gpus,
                    posted_at=post.message.sent_at,
                    expires_at=post.message.sent_at + lifetime,
                )
                # Every offer the desk reads is also an advertisement (issue 11): the pulse
                # behind /price and /market counts listings from them.
                ledger.record_advert(
                    message_row=stored.id,
                    item=0,
                    message=post.message,
                    offer=post.offer,
                    gpus=gpus,
                    offer_id=offer_id,
                )
                ledger.mark_handled(stored.id)
                done += 1
                if done % batch == 0:
                    break
        if progress:
            print(f"  filled {done:,}/{count:,} offers", end="\r", flush=True)
    if progress:
        print()
    return time.perf_counter() - began


# Bumped when what `fill` writes changes, so that a cached ledger of the old shape is rebuilt.
SHAPE = "adverts"


def ledger_with(path: Path, count: int) -> Path:
    """A ledger file with `count` generated offers, built once and reused across runs (and
    brought to the current schema here, so that each scratch copy opens at once)."""
    marker = path.with_suffix(".complete")
    if path.exists() and marker.exists() and marker.read_text() == f"{count} {SHAPE}":
        with Ledger.open(path) as ledger:  # new migrations, applied once to the shared file
            ledger.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path
    for stale in (path, path.with_suffix(".db-wal"), path.with_suffix(".db-shm"), marker):
        stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with Ledger.open(path) as ledger:
        seconds = fill(ledger, count)
        ledger.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # one self-contained file
    print(f"  built {path} with {count:,} offers in {seconds:.0f} s")
    marker.write_text(f"{count} {SHAPE}")
    return path


@contextmanager
def scratch_ledger(count: int) -> Iterator[Path]:
    """A throw-away copy of the shared generated ledger, so a benchmark never alters it."""
    source = ledger_with(ROOT / "build" / f"bench-{count}.db", count)
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / source.name
        shutil.copyfile(source, copy)
        yield copy
