"""The market as it goes: `LiveMarket` and `Ledger.week_pulses` give the figures of the whole
history (`pulses` over `build_listings`), post by post, week after week.

Random histories (reposts, price cuts, brokers' relays, look-alikes, posts of the same instant,
withdrawals by name, by reply, by `/cancel` and brokers' notes) are fed to a market built part
way through, in order and a little out of order; at every step its pulse of this week and the
week before must equal the one read from the whole history up to that moment. Then the same
through the desk: `/price` against `gpudesk export --what pulse`, before and after an import
of an older week, an edit, a withdrawal.
"""

from __future__ import annotations

import os
import pickle
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gpudesk.bot import export as ex
from gpudesk.bot.backfill import backfill
from gpudesk.bot.importers import ChatTarget, open_export
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.market import listings
from gpudesk.market.listings import (
    ITSELF,
    Advert,
    LiveMarket,
    Lot,
    Week,
    Withdrawal,
    build_listings,
    micros,
    pulses,
)
from gpudesk.market.message import ChatMessage
from gpudesk.market.normalise import Valuation, gpu_count
from gpudesk.market.offer import Currency, Deal, Offer, PricePer, QuantityUnit, Side
from gpudesk.market.withdrawal import Withdrawn
from gpudesk.storage.ledger import Ledger
from tests.conftest import Chat, FakeClock

ZONE = ZoneInfo("Asia/Shanghai")
LIFETIME = timedelta(days=14)
START = datetime(2026, 10, 5, tzinfo=ZONE).astimezone(UTC)  # a Monday, week 2026-W41
LOTS = [
    Lot(Side.SELL, Deal.RENT, "H100", 80, "Beijing"),
    Lot(Side.SELL, Deal.RENT, "H100", 80, "Shanghai"),
    Lot(Side.SELL, Deal.RENT, "H100", 16, "Beijing"),
    Lot(Side.SELL, Deal.RENT, "H100", None, None),  # bare: never relayed
    Lot(Side.BUY, Deal.RENT, "H100", 16, "Beijing"),
    Lot(Side.SELL, Deal.SALE, "A100", 8, "Shenzhen"),
    Lot(Side.BUY, Deal.SALE, "A100", 8, "Shenzhen"),
]
PRICES = [Decimal("12.00"), Decimal("12.05"), Decimal("11.50"), Decimal("13.00"), None]
OWNERS = [("telegram", f"s{n}") for n in range(6)]
BROKERS = [("telegram", "k1"), ("wechat", "k2")]


def history(seed: int, days: int = 42) -> tuple[list[Advert], list[Withdrawal]]:
    """A random market over `days`: posts on the hour (so that some share an instant)."""
    rng = random.Random(seed)
    adverts: list[Advert] = []
    withdrawals: list[Withdrawal] = []
    ids = iter(range(1, 10**6))
    message = 0
    for hour in range(days * 24):
        if rng.random() > 0.35:
            continue
        when = micros(START + timedelta(hours=hour))
        roll = rng.random()
        if roll < 0.75 or not adverts:  # a post, sometimes of two lots at once
            message += 1
            who = rng.choice(OWNERS)
            chat = ("telegram", rng.choice(["g1", "g2"]))
            for _ in range(1 if rng.random() < 0.8 else 2):
                lot, price = rng.choice(LOTS), rng.choice(PRICES)
                offer = rng.randrange(1, 60)
                adverts.append(Advert(next(ids), message, when, who, chat, lot, None, price, offer))
            if rng.random() < 0.3:  # a broker relays it within the day, near the price
                source = adverts[-1]
                later = when + rng.randrange(1, 30) * 3_600_000_000
                price = source.price
                if price is not None and rng.random() < 0.5:
                    price = (price * Decimal("1.004")).quantize(Decimal("0.0001"))
                message += 1
                adverts.append(
                    Advert(next(ids), message, later, rng.choice(BROKERS), ("wechat", "w1"),
                           source.lot, None, price, rng.randrange(60, 90))
                )  # fmt: skip
        else:  # a withdrawal: by name, by reply, a broker's note, or /cancel
            message += 1
            kind = rng.random()
            if kind < 0.35:
                withdrawals.append(
                    Withdrawal(next(ids), message, when, rng.choice(OWNERS), ("telegram", "g1"),
                               gpu=rng.choice(["H100", "A100"]))
                )  # fmt: skip
            elif kind < 0.7:
                target = rng.choice(adverts)
                who = target.party if rng.random() < 0.8 else rng.choice(OWNERS)
                withdrawals.append(
                    Withdrawal(next(ids), message, when, who, ("telegram", "g1"),
                               reply_to=target.message)
                )  # fmt: skip
            elif kind < 0.85:
                lot = rng.choice(LOTS)
                withdrawals.append(
                    Withdrawal(next(ids), message, when, rng.choice(BROKERS), ("wechat", "w1"),
                               gpu=lot.gpu, deal=lot.deal, place=lot.place, gpus=lot.gpus)
                )  # fmt: skip
            else:
                withdrawals.append(
                    Withdrawal(next(ids), message, when, rng.choice(OWNERS), ("telegram", "g1"),
                               offer=rng.randrange(1, 90))
                )  # fmt: skip
    adverts.sort(key=lambda a: (a[2], a[1], a[0]))
    return adverts, withdrawals


def whole(
    adverts: list[Advert], withdrawals: list[Withdrawal], now: int, week: Week
) -> list[object]:
    busy, listings.BUSY_LOT = listings.BUSY_LOT, 32
    try:
        return _whole(adverts, withdrawals, now, week)
    finally:
        listings.BUSY_LOT = busy


def _whole(
    adverts: list[Advert], withdrawals: list[Withdrawal], now: int, week: Week
) -> list[object]:
    book = build_listings(
        [a for a in adverts if a[2] <= now],
        [w for w in withdrawals if w.at <= now],
        lifetime=LIFETIME,
        keep_posts=False,
    )
    return list(pulses(book, [week], currency=Currency.CNY))


def build(adverts: list[Advert], withdrawals: list[Withdrawal], now: int) -> LiveMarket:
    return LiveMarket.build(
        [a for a in adverts if a[2] <= now],
        [w for w in withdrawals if w.at <= now],
        codes=ITSELF,
        lifetime=LIFETIME,
        zone=ZONE,
        now=START + timedelta(microseconds=now - micros(START)),
    )


def moments(rng: random.Random, first: int, last: int) -> Iterator[int]:
    """Moments from `first` to `last`, a few hours apart (some at the hour, some between)."""
    now = first
    while now < last:
        now += rng.choice([1, 3, 7, 20, 45]) * 3_600_000_000 + rng.choice([0, 0, 1_800_000_000])
        yield min(now, last)


@pytest.mark.parametrize("busy", [32, 1], ids=["few per lot", "busy lots"])
@pytest.mark.parametrize("seed", range(12))
def test_fed_post_by_post_it_reads_as_the_whole_history(
    seed: int, busy: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With `BUSY_LOT` at 1 every lot's listings are read in the order last advertised, as a
    # lot held by thousands of parties is; the whole history is read the usual way.
    monkeypatch.setattr(listings, "BUSY_LOT", busy)
    adverts, withdrawals = history(seed)
    rng = random.Random(seed + 1000)
    begin = micros(START + timedelta(days=rng.choice([3, 9, 16])))
    market = build(adverts, withdrawals, begin)
    seen = begin
    rebuilt = 0
    for now in moments(rng, begin, micros(START + timedelta(days=44))):
        new_adverts = [a for a in adverts if seen < a[2] <= now]
        new_withdrawals = [w for w in withdrawals if seen < w.at <= now]
        if rng.random() < 0.3:  # delivered out of order, as across chats
            rng.shuffle(new_adverts)
        moment_ = START + timedelta(microseconds=now - micros(START))
        if not market.feed(new_adverts, new_withdrawals, moment_):
            market, rebuilt = build(adverts, withdrawals, now), rebuilt + 1
        seen = now
        week = Week.of(moment_, ZONE)
        for asked in (week, week.shifted(-1)):
            live = market.pulses(asked, currency=Currency.CNY)
            assert live == whole(adverts, withdrawals, now, asked), (seed, asked.label, now)
    assert rebuilt <= 12  # most of it was fed in place


def test_one_item_late_is_read_in_place_unless_something_after_it_met_it() -> None:
    adverts, withdrawals = history(3)
    cut = micros(START + timedelta(days=20))
    market = build(adverts, withdrawals, cut)
    then = START + timedelta(days=20, hours=2)
    alice = ("telegram", "alice")
    lot = Lot(Side.SELL, Deal.RENT, "H200", 64, "Wuhu")
    first = Advert(900_001, 900_001, cut + 3_600_000_000, alice, ("telegram", "g1"), lot, None,
                   Decimal("15.00"), None)  # fmt: skip
    assert market.feed([first], [], then)
    bob, other_lot = ("telegram", "bob"), lot._replace(gpus=8)
    late = Advert(900_002, 900_002, cut + 1_800_000_000, bob, ("telegram", "g1"), other_lot,
                  None, Decimal("15.00"), None)  # fmt: skip
    assert market.feed([late], [], then)  # nothing after it shares its lot or party
    again = Advert(900_003, 900_003, cut + 1_700_000_000, alice, ("telegram", "g2"), lot, None,
                   Decimal("15.00"), None)  # fmt: skip
    assert not market.feed([again], [], then)  # alice posted that lot after it: build again


# -- through the desk and the ledger -------------------------------------------------------

SELL = "出 H100 8卡 10台 北京 月租7.5w/台"
SELL_CUT = "出 H100 8卡 10台 北京 月租7w/台"
SELL_SH = "出 H100 8卡 4台 上海 月租7.2w/台"
BUY = "收 H100 8卡 2台 北京 月租6w/台"
RELAYED = "WTS 80x H100 Beijing $1.78/GPU/hr"


def export_row(ledger: Ledger, clock: FakeClock, week: Week) -> dict[str, object] | None:
    rows = ex.pulse_rows(ledger, zone=ZONE, lifetime=LIFETIME, now=clock(), weeks=[week])
    found = [r for r in rows if (r["gpu"], r["deal"]) == ("H100", "rent")]
    return found[0] if found else None


def live_row(ledger: Ledger, clock: FakeClock, week: Week) -> dict[str, object] | None:
    found = [
        ex.pulse_row(p)
        for p in ledger.week_pulses(week, now=clock(), lifetime=LIFETIME)
        if (p.gpu, p.deal) == ("H100", Deal.RENT)
    ]
    return found[0] if found else None


def same_as_export(ledger: Ledger, clock: FakeClock) -> None:
    this = Week.of(clock(), ZONE)
    for week in (this, this.shifted(-1), this.shifted(-2)):
        assert live_row(ledger, clock, week) == export_row(ledger, clock, week), week.label


def test_price_says_what_the_export_says_as_posts_come_and_go(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    rng = random.Random(5)
    posts = [SELL, SELL_CUT, SELL_SH, BUY, RELAYED, "H100已出，谢谢各位"]
    people = ["alice", "bob", "carol", "dave"]
    for _ in range(60):
        chat.post(rng.choice(people), rng.choice(posts))
        if rng.random() < 0.2:
            chat.post("erin", "/price H100")  # the market is kept from the first one on
        clock.advance(hours=rng.choice([1, 5, 11, 29]))
        same_as_export(ledger, clock)
    text = chat.post("erin", "/price H100 rent")
    row = export_row(ledger, clock, Week.of(clock(), ZONE))
    if row is not None and (row["sellers"] or row["buyers"]):
        assert f"{row['sellers']} sellers · {row['buyers']} buyers" in text


def test_an_edit_and_an_import_of_an_older_week_move_the_figures_as_the_export(
    chat: Chat, ledger: Ledger, clock: FakeClock, tmp_path: Path
) -> None:
    for who in ("alice", "bob", "carol"):
        chat.post(who, SELL_SH if who == "carol" else SELL)
        clock.advance(hours=3)
    chat.post("dave", "/price H100")  # builds the market
    posted = chat.message("alice", SELL)
    chat.desk.handle(posted)
    clock.advance(days=1)
    chat.desk.handle(chat.message("alice", SELL_CUT, message_id=posted.message_id, edited=True))
    same_as_export(ledger, clock)
    # An import of the week before: posts of parties that still stand this week.
    before = clock() - timedelta(days=8)
    export = tmp_path / "older.txt"
    export.write_text(
        "\n".join(
            f"{(before + timedelta(hours=n)).astimezone(ZONE):%Y-%m-%d %H:%M:%S} {who}\n{text}\n"
            for n, (who, text) in enumerate(
                [("frank", SELL), ("gina", BUY), ("alice", SELL_SH), ("frank", SELL_CUT)]
            )
        ),
        encoding="utf-8",
    )
    target = ChatTarget(chat.platform, chat.chat_id)
    report = backfill(chat.desk, [open_export(export, zone=ZONE)], targets=(target,))
    assert report.read == 4 and not report.problems
    same_as_export(ledger, clock)
    clock.advance(days=3)
    chat.post("frank", "H100已出")
    same_as_export(ledger, clock)


def test_a_group_with_its_own_scope_reads_its_own_posts(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    other = Chat(chat.desk, clock, chat_id="room2", chat_title="GPU现货群")
    chat.post("alice", SELL)
    other.post("bob", SELL_SH)
    ledger.update_chat("console", "room2", scope="group")
    assert "1 sellers" in other.post("carol", "/price H100 rent")
    chat.post("dave", SELL_SH)
    other.post("erin", SELL_CUT)
    assert "2 sellers" in other.post("carol", "/price H100 rent")
    # everywhere: alice, bob (dave relays his lot the same day, at his price) and erin
    assert "3 sellers" in chat.post("carol", "/price H100 rent")


def test_warm_builds_the_market_before_the_first_question(ledger: Ledger, clock: FakeClock) -> None:
    desk = Desk(ledger, DeskSettings(language="en"), clock=clock)
    Chat(desk, clock).post("alice", SELL)
    assert not ledger._markets
    desk.recover()
    assert ledger._markets


def test_a_copy_reads_on_as_the_original_and_leaves_it_be() -> None:
    adverts, withdrawals = history(7)
    cut = micros(START + timedelta(days=15))
    market = build(adverts, withdrawals, cut)
    copy = market.copy()
    for now in (cut + 2 * 86_400_000_000, cut + 9 * 86_400_000_000):
        moment_ = START + timedelta(microseconds=now - micros(START))
        fed = (
            [a for a in adverts if cut < a[2] <= now],
            [w for w in withdrawals if cut < w.at <= now],
        )
        assert copy.feed(*fed, moment_)
        week = Week.of(moment_, ZONE)
        assert copy.pulses(week, currency=Currency.CNY) == whole(adverts, withdrawals, now, week)
        cut = now
    then = Week.of(START + timedelta(days=15), ZONE)
    assert market.pulses(then, currency=Currency.CNY) == whole(
        adverts, withdrawals, micros(START + timedelta(days=15)), then
    )


def test_an_edit_or_a_late_post_goes_back_a_day_not_to_the_start(
    chat: Chat, ledger: Ledger, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(11)
    posts = [SELL, SELL_CUT, SELL_SH, BUY, RELAYED]
    sent = []
    for _ in range(40):
        message = chat.message(rng.choice(["alice", "bob", "carol"]), rng.choice(posts))
        chat.desk.handle(message)
        sent.append(message)
        chat.post("erin", "/price H100")
        clock.advance(hours=rng.choice([2, 5, 9]))
    built = []
    real = Ledger._build_market

    def counted(*args: object, **kwargs: object) -> object:
        built.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "_build_market", counted)
    restored = []
    real_restore = Ledger._restore

    def counted_restore(*args: object, **kwargs: object) -> bool:
        restored.append(1)
        return real_restore(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "_restore", counted_restore)
    edited = sent[-3]
    chat.desk.handle(chat.message(edited.sender_id, SELL_CUT.replace("7w", "6.8w"),
                                  message_id=edited.message_id, edited=True))  # fmt: skip
    same_as_export(ledger, clock)
    late = chat.message("frank", SELL_SH, sent_at=clock() - timedelta(hours=7))
    chat.desk.handle(late)
    same_as_export(ledger, clock)
    assert built == [] and restored  # it went back to a copy of the day before


@pytest.mark.parametrize("seed", range(20))
def test_busy_lots_read_in_the_order_last_advertised_make_the_same_listings(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    adverts, withdrawals = history(seed, days=30)
    weeks = [Week.of(START, ZONE).shifted(n) for n in range(6)]
    usual = pulses(build_listings(adverts, withdrawals, lifetime=LIFETIME), weeks)
    monkeypatch.setattr(listings, "BUSY_LOT", seed % 3)
    assert pulses(build_listings(adverts, withdrawals, lifetime=LIFETIME), weeks) == usual


# -- built in pieces, forgetting as it goes; frozen and thawed -----------------------------


@pytest.mark.parametrize("seed", range(8))
def test_built_a_few_posts_at_a_time_forgetting_as_it_goes_it_reads_as_the_whole_history(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Forgetting after every few posts what can change no more (a million posts' way, here
    # with a few hundred) leaves the same market as reading the whole history at once.
    monkeypatch.setattr(listings, "FORGET_EVERY", 1)
    monkeypatch.setattr(listings, "BUILD_CHUNK", 1 + seed % 4)
    monkeypatch.setattr(listings, "BUSY_LOT", [32, 4, 1, 0][seed % 4])
    adverts, withdrawals = history(seed)
    rng = random.Random(seed)
    for day in sorted(rng.sample(range(8, 43), 5)):
        now = micros(START + timedelta(days=day, hours=rng.randrange(24)))
        market = build(adverts, withdrawals, now)
        week = Week.of(moment_of(now), ZONE)
        for asked in (week, week.shifted(-1)):
            assert market.pulses(asked, currency=Currency.CNY) == whole(
                adverts, withdrawals, now, asked
            ), (seed, day, asked.label)


@pytest.mark.parametrize("seed", range(8))
def test_a_frozen_market_thaws_into_one_that_reads_on_as_the_whole_history(seed: int) -> None:
    adverts, withdrawals = history(seed)
    rng = random.Random(seed + 7)
    seen = micros(START + timedelta(days=rng.choice([5, 10, 15])))
    market = build(adverts, withdrawals, seen)
    kept = market.freeze()
    for now in moments(rng, seen, micros(START + timedelta(days=44))):
        fed = (
            [a for a in adverts if seen < a[2] <= now],
            [w for w in withdrawals if seen < w.at <= now],
        )
        if rng.random() < 0.3:  # packed and unpacked on the way
            kept = market.freeze()
            market = kept.thaw()
            assert (market.cursor, market.now) == (kept.cursor, kept.now)
        if not market.feed(*fed, moment_of(now)):
            market = build(adverts, withdrawals, now)
        seen = now
        week = Week.of(moment_of(now), ZONE)
        for asked in (week, week.shifted(-1)):
            live = market.pulses(asked, currency=Currency.CNY)
            assert live == whole(adverts, withdrawals, now, asked), (seed, asked.label)
    # A copy packed long ago is as it was: thawed, it reads on from where it stood.
    back = kept.thaw()
    later = [a for a in adverts if a[2] > back.cursor[0]]
    assert back.feed(later, [w for w in withdrawals if w.at > back.cursor[0]], moment_of(seen))


def moment_of(us: int) -> datetime:
    return START + timedelta(microseconds=us - micros(START))


# -- a generated ledger, read both ways week by week ---------------------------------------

MODELS = ["H100", "A100", "RTX 4090"]
PLACES = ["Beijing", "Shanghai", None]


def fill_ledger(ledger: Ledger, seed: int, days: int = 36) -> None:
    """A market of a few dozen parties over `days`, written as the desk writes one: posts in
    yuan and dollars (per server-month and per GPU-hour), reposts and price cuts, brokers
    relaying lots within the day near their price, deals ended by name and by reply."""
    rng = random.Random(seed)
    parties = [f"p{n}" for n in range(24)]
    brokers = ["k1", "k2"]
    lots = [
        (rng.choice(list(Side)), rng.choice(list(Deal)), rng.choice(MODELS),
         rng.choice([1, 2, 4]), rng.choice(PLACES))
        for _ in range(14)
    ]  # fmt: skip
    posted: list[tuple[ChatMessage, Offer]] = []
    at = START - timedelta(days=days)
    n = 0
    with ledger.transaction():
        while at < START + timedelta(days=2):
            at += timedelta(minutes=rng.choice([7, 30, 90, 240]))
            n += 1
            roll = rng.random()
            if roll < 0.12 and posted:  # a deal ends: by name, or by a reply to its post
                source, offer = rng.choice(posted[-40:])
                reply = rng.random() < 0.5
                said = Withdrawn("已出", gpu=None if reply else offer.gpu)
                message = ChatMessage(
                    platform="telegram", chat_id=source.chat_id, sender_id=source.sender_id,
                    sender_name=source.sender_name, text="已出", sent_at=at, message_id=str(n),
                    reply_to_id=source.message_id if reply else None,
                )  # fmt: skip
                stored = ledger.store_message(message, received_at=at, handled=True)
                ledger.record_withdrawal(
                    message_row=stored.id, message=message, said=said, at=at, lifetime=LIFETIME
                )
                continue
            if roll < 0.3 and posted:  # a broker relays a post of the day, near its price
                source, offer = posted[-1]
                if at - source.sent_at > timedelta(hours=20):
                    continue
                who = rng.choice(brokers)
                if offer.price is not None and rng.random() < 0.5:
                    offer = replace(offer, price=(offer.price * Decimal("1.005")).quantize(
                        Decimal("0.01")))  # fmt: skip
            else:
                who = rng.choice(parties)
                side, deal, gpu, servers, place = rng.choice(lots)
                usd = rng.random() < 0.3
                level = {"H100": 12, "A100": 6, "RTX 4090": 2}[gpu] * (
                    1 if deal is Deal.RENT else 17500
                )
                level *= rng.choice([1.0, 1.0, 0.95, 1.1])
                per_server = rng.random() < 0.5
                amount = level * (5840 if deal is Deal.RENT else 8) if per_server else level
                if usd:
                    amount /= 7.2
                price = None if rng.random() < 0.15 else Decimal(str(round(amount, 2)))
                offer = Offer(
                    side=side, deal=deal, gpu=gpu, quantity=servers * 8,
                    quantity_unit=QuantityUnit.GPU, price=price,
                    currency=None if price is None else (Currency.USD if usd else Currency.CNY),
                    price_per=None if price is None else (
                        (PricePer.SERVER_MONTH if per_server else PricePer.GPU_HOUR)
                        if deal is Deal.RENT else (PricePer.SERVER if per_server else PricePer.GPU)
                    ),
                    gpus_per_server=8 if per_server else None, location=place,
                )  # fmt: skip
            message = ChatMessage(
                platform="telegram", chat_id=rng.choice(["g1", "g2"]), sender_id=who,
                sender_name=who, text=f"{offer.gpu} #{n}", sent_at=at, message_id=str(n),
            )  # fmt: skip
            stored = ledger.store_message(message, received_at=at, handled=True)
            gpus = gpu_count(offer)
            offer_id = ledger.add_offer(
                message_row=stored.id, item=0, message=message, offer=offer, gpus=gpus,
                posted_at=at, expires_at=at + LIFETIME,
            )  # fmt: skip
            ledger.record_advert(
                message_row=stored.id, item=0, message=message, offer=offer, gpus=gpus,
                offer_id=offer_id,
            )  # fmt: skip
            posted.append((message, offer))


@pytest.mark.parametrize("seed", range(3))
def test_the_market_of_a_generated_ledger_reads_week_by_week_as_its_whole_history(
    seed: int, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The live market (read a few rows at a time, forgetting as it goes, priced quote by
    # quote, packed and thawed to go back a day, saved in the ledger and read back) against
    # the listings of the whole history, for each week a market is asked about: this week,
    # the week before, two weeks back. Three desks read it: one that has run all along, one
    # started again just now (it reads the market saved in the ledger), and one that builds
    # it from history.
    monkeypatch.setattr(listings, "FORGET_EVERY", 1)
    monkeypatch.setattr(listings, "BUILD_CHUNK", 40)
    ledger = Ledger.open(db_path)
    fill_ledger(ledger, seed)
    rng = random.Random(seed)
    running = Ledger.open(db_path)
    now = START - timedelta(days=22)
    while now < START + timedelta(days=3):
        now += timedelta(hours=rng.choice([5, 17, 41]))
        this = Week.of(now, ZONE)
        restarted = Ledger.open(db_path)
        built = Ledger.open(db_path)
        for week in (this, this.shifted(-1), this.shifted(-2)):
            book = running.listings(until=now, lifetime=LIFETIME)
            expected = pulses(book, [week], currency=running.valuation.currency)
            for reader in (running, restarted, built):
                if reader is built and week == this:
                    built.conn.execute("DELETE FROM market_saved")
                assert reader.week_pulses(week, now=now, lifetime=LIFETIME) == expected, (
                    seed, now, week.label)  # fmt: skip
        restarted.close()
        built.close()
    # An edit of a post of the day before sends the market back to its packed copy.
    row = running.conn.execute("SELECT max(message) FROM adverts WHERE at_us < ?",
                               (micros(now - timedelta(hours=20)),)).fetchone()[0]  # fmt: skip
    running.forget_listing_facts(row)
    this = Week.of(now, ZONE)
    book = running.listings(until=now, lifetime=LIFETIME)
    for week in (this, this.shifted(-1)):
        expected = pulses(book, [week], currency=running.valuation.currency)
        assert running.week_pulses(week, now=now, lifetime=LIFETIME) == expected
    running.close()
    ledger.close()


def expected_pulses(ledger: Ledger, now: datetime, week: Week) -> list[object]:
    book = ledger.listings(until=now, lifetime=LIFETIME)
    return list(pulses(book, [week], currency=ledger.valuation.currency))


def counting_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    built: list[int] = []
    real = Ledger._build_market

    def counted(*args: object, **kwargs: object) -> object:
        built.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "_build_market", counted)
    return built


def test_a_restart_reads_the_saved_market_and_the_rows_since_not_the_history(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Ledger.open(db_path) as ledger:
        fill_ledger(ledger, 7)
        then = START - timedelta(days=9, hours=5)
        ledger.warm_market(now=then, lifetime=LIFETIME, zone=ZONE)  # built, and saved
        saved = ledger.conn.execute("SELECT count(*), max(now_us) FROM market_saved").fetchone()
        assert saved[0] == 1 and saved[1] < micros(then)  # a copy of a day before
    built = counting_builds(monkeypatch)
    for now in (then, START + timedelta(hours=30)):  # rows since: read on from the copy
        with Ledger.open(db_path) as restarted:
            this = Week.of(now, ZONE)
            for week in (this, this.shifted(-1)):
                found = restarted.week_pulses(week, now=now, lifetime=LIFETIME)
                assert found == expected_pulses(restarted, now, week)
    assert built == []


@pytest.mark.parametrize(
    "spoil",
    ["lifetime", "rate", "zone", "edited before it", "garbled", "not a market", "a ledger before"],
)
def test_a_saved_market_that_does_not_fit_is_read_again_from_history(
    spoil: str, db_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with Ledger.open(db_path) as ledger:
        fill_ledger(ledger, 3)
        ledger.warm_market(now=START, lifetime=LIFETIME, zone=ZONE)
    lifetime, zone, valuation = LIFETIME, ZONE, None
    ran = tmp_path / "ran"
    with Ledger.open(db_path) as ledger:
        conn = ledger.conn
        if spoil == "lifetime":
            lifetime = timedelta(days=10)
        elif spoil == "rate":
            valuation = Valuation(usd_cny=Decimal("7.1"))
        elif spoil == "zone":
            zone = ZoneInfo("Europe/Berlin")
        elif spoil == "edited before it":  # a post older than the copy, edited since
            saved_at = conn.execute("SELECT now_us FROM market_saved").fetchone()[0]
            row = conn.execute(
                "SELECT max(message) FROM adverts WHERE at_us < ?", (saved_at - 10**9,)
            ).fetchone()[0]
            ledger.forget_listing_facts(row)
        elif spoil == "garbled":
            conn.execute("UPDATE market_saved SET packed = randomblob(length(packed))")
        elif spoil == "not a market":  # read as data only: no code named in it is run
            evil = pickle.dumps(Evil(str(ran)), protocol=pickle.HIGHEST_PROTOCOL)
            conn.execute("UPDATE market_saved SET packed = ?", (evil,))
        else:  # the ledger put back from before some rows the copy read
            conn.execute("UPDATE market_saved SET advert = advert + 1000000")
    built = counting_builds(monkeypatch)
    with Ledger.open(db_path, valuation) as ledger:
        for week in (Week.of(START, zone), Week.of(START, zone).shifted(-1)):
            found = ledger.week_pulses(week, now=START, lifetime=lifetime)
            book = ledger.listings(until=START, lifetime=lifetime)
            assert found == pulses(book, [week], currency=ledger.valuation.currency)
    assert built == [1]
    assert not ran.exists()


class Evil:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("seed", range(12))
def test_a_weeks_parties_are_the_same_whatever_the_order_its_listings_come_in(seed: int) -> None:
    # `LiveMarket.build` adds listings to the weeks as it forgets them, not in the order they
    # were made: a party's price and quantity must not depend on it (posts on the hour tie).
    adverts, withdrawals = history(seed)
    book = build_listings(adverts, withdrawals, lifetime=LIFETIME)
    edges = [micros(Week.of(START, ZONE).shifted(n).start) for n in range(7)]

    def parties(order: list[listings.Listing]) -> dict[object, object]:
        tally = listings._Tally(edges, book.codes.lots)
        tally.add_listings(order)
        return {
            (group, index, party): (
                *entry[:2],
                entry[2].seq,
                *entry[3:5],
                entry[5] and entry[5].seq,
            )  # type: ignore[union-attr]
            for group, windows in tally.groups.items()
            for index, side in enumerate(windows)
            if side is not None
            for party, entry in side.parties.items()
        }

    shuffled = list(book.listings)
    random.Random(seed).shuffle(shuffled)
    assert parties(shuffled) == parties(book.listings)


def test_a_market_of_one_unpriced_listing_packs_and_thaws() -> None:
    alice = ("telegram", "alice")
    lot = LOTS[0]
    adverts = [Advert(1, 1, micros(START), alice, ("telegram", "g1"), lot, None, None, None)]
    relayed = Advert(2, 2, micros(START) + 3_600_000_000, ("telegram", "k1"), ("telegram", "g2"),
                     lot, None, None, None)  # fmt: skip
    market = build([*adverts, relayed], [], micros(START) + 7_200_000_000)
    thawed = market.copy()
    week = Week.of(START, ZONE)
    assert thawed.pulses(week, currency=Currency.CNY) == market.pulses(week, currency=Currency.CNY)
    (listing,) = thawed.builder.listings
    assert listing.own_prices == [None] and [r[1] for r in listing.relays] == [None]
