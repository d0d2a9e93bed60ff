"""Regenerate the README's example digest: docs/digest-example.txt and docs/digest-example.png.

Seeds a throwaway ledger with nine weeks of a made-up but plausible market (posts in the
groups' own words, each with the offer it states, so the example does not move when the
parser changes), runs it through the real desk, and renders the digest of 2026-W47 as a group
on the default schedule would get it (Monday 2026-11-23 09:00, Shanghai).

    .venv/bin/python bench/make_digest_example.py            # zh, into docs/
    .venv/bin/python bench/make_digest_example.py --lang en --out /tmp/digest
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from gpudesk.bot.digest_cli import write_digest
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.market.digest import occurrence_for_week, window_ending
from gpudesk.market.message import ChatMessage
from gpudesk.market.offer import Currency, Deal, Offer, PricePer, QuantityUnit, Side
from gpudesk.storage.ledger import Ledger

WEEK = "2026-W47"
SCHEDULE = (0, 9, 0)  # mon 09:00, the default
CHAT = ("telegram", "-1001234567890", "GPU 算力交易群")
WEEKS = 9  # eight on the chart, and the one before them for the first week-on-week move

SELLERS = [
    "老王",
    "张总",
    "深圳阿杰",
    "北京IDC刘",
    "算力小陈",
    "杭州云盛",
    "Kevin HK",
    "乌兰察布机房",
]
BUYERS = ["李经理", "模型公司采购", "周博士", "AI创业团队", "Leo"]
PLACES = ["北京", "上海", "深圳", "杭州", "乌兰察布", "庆阳", "香港"]


@dataclass(frozen=True)
class Model:
    gpu: str
    rent: float  # ¥ per GPU-hour, week 0
    sale: float | None  # ¥ per GPU, week 0
    drift: float  # per week, as a fraction of the price
    sellers: int  # typical posts a week
    buyers: int


MODELS = [
    Model("H100", 14.2, 235_000, -0.012, 7, 2),
    Model("H200", 18.5, 290_000, -0.004, 3, 2),
    Model("A100", 6.8, 98_000, -0.008, 2, 3),
    Model("4090", 2.0, 18_500, 0.003, 3, 1),
]


def post(
    model: Model, side: Side, deal: Deal, price: float, rng: random.Random
) -> tuple[str, Offer]:
    """A post in a group's own words, and the offer it states."""
    place = rng.choice(PLACES)
    servers = rng.choice([1, 2, 4, 8, 16])
    verb = "出" if side is Side.SELL else "收"
    # Three ways groups state a price: per GPU for a sale, per 8-GPU server a month (sellers
    # of rentals, mostly), per GPU-hour (buyers, mostly).
    if deal is Deal.SALE:
        wan = Decimal(str(round(price / 10_000, 1)))
        text = f"{verb} {model.gpu} 整机 {servers}台 {place} {wan}w/卡"
        per, amount, qty, unit = PricePer.GPU, wan * 10_000, servers, QuantityUnit.SERVER
    elif side is Side.SELL and rng.random() < 0.6:
        monthly = Decimal(str(round(price * 8 * 730 / 1000) / 10))  # ¥ "w" (10,000) a month
        text = f"{verb} {model.gpu} 8卡 {servers}台 {place} 月租{monthly}w/台"
        per, amount, qty, unit = (
            PricePer.SERVER_MONTH,
            monthly * 10_000,
            servers,
            QuantityUnit.SERVER,
        )
    else:
        hourly = Decimal(str(round(price, 2)))
        text = f"{verb} {model.gpu} {servers * 8}卡 {place} {hourly}元/卡时"
        per, amount, qty, unit = PricePer.GPU_HOUR, hourly, servers * 8, QuantityUnit.GPU
    offer = Offer(
        side=side,
        deal=deal,
        gpu=model.gpu,
        quantity=qty,
        quantity_unit=unit,
        gpus_per_server=8 if unit is QuantityUnit.SERVER else None,
        price=amount,
        currency=Currency.CNY,
        price_per=per,
        location=place,
    )
    return text, offer


def seed(ledger: Ledger, end: datetime, rng: random.Random) -> None:
    said: dict[str, list[Offer]] = {}
    clock = [end]  # the desk's time: each post's own, as it arrives
    desk = Desk(
        ledger,
        DeskSettings(language="zh"),
        clock=lambda: clock[0],
        parse=lambda text: said.get(text, []),
    )
    posts: list[tuple[datetime, str, str, Offer]] = []
    for week in range(WEEKS):
        week_start = end - timedelta(weeks=WEEKS - week)
        for model in MODELS:
            for deal, base in ((Deal.RENT, model.rent), (Deal.SALE, model.sale)):
                if base is None:
                    continue
                level = base * (1 + model.drift) ** week
                scale = 1 if deal is Deal.RENT else 3  # sales are rarer than rentals
                for side, count, skew in (
                    (Side.SELL, model.sellers // scale, 1.0),
                    (Side.BUY, model.buyers // scale, 0.93),  # bids sit under the asks
                ):
                    for _ in range(count + rng.choice([0, 0, 1])):
                        who = rng.choice(SELLERS if side is Side.SELL else BUYERS)
                        price = level * skew * rng.uniform(0.94, 1.06)
                        text, offer = post(model, side, deal, price, rng)
                        at = week_start + timedelta(hours=rng.uniform(1, 7 * 24 - 1))
                        posts.append((at, who, text, offer))
    for number, (at, who, text, offer) in enumerate(sorted(posts), start=1):
        said[text] = [offer]
        clock[0] = at
        desk.handle(
            ChatMessage(
                platform=CHAT[0],
                chat_id=CHAT[1],
                chat_title=CHAT[2],
                sender_id=who,
                sender_name=who,
                text=text,
                sent_at=at,
                message_id=str(number),
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=["zh", "en"], default="zh")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "docs")
    args = parser.parse_args()
    settings = DeskSettings(language=args.lang)
    start, end = window_ending(
        occurrence_for_week(WEEK, SCHEDULE, settings.zone), SCHEDULE, settings.zone
    )
    with tempfile.TemporaryDirectory() as scratch:
        with Ledger.open(Path(scratch) / "example.db") as ledger:
            seed(ledger, end, random.Random(8))
            chat = ledger.chat(CHAT[0], CHAT[1])
            text, chart = write_digest(
                ledger, settings, chat, start=start, end=end, out=Path(scratch), lang=args.lang
            )
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(text, args.out / "digest-example.txt")
        assert chart is not None, "the example market is never quiet"
        shutil.copyfile(chart, args.out / "digest-example.png")
    print(f"wrote {args.out / 'digest-example.txt'} and {args.out / 'digest-example.png'}")


if __name__ == "__main__":
    main()
