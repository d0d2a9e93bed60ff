"""The weekly digest: its numbers, its words, its chart, the files it renders, /digest.

A seeded market of two weeks goes through the real desk (with a parser for a plain test
notation, so that these tests do not depend on how Chinese posts are read) and the digest is
checked against a count made here, independently, from the seed itself, by the method of
README (pulse): parties counted by the listings standing in the ISO week, not by the posts.
"""

from __future__ import annotations

import io
import itertools
import logging
import statistics
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import click
import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gpudesk.bot.config import Settings
from gpudesk.bot.digest_cli import digest as digest_command
from gpudesk.handlers import chart
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.digest_text import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    digest_replies,
    fit,
    load_digest,
    render_text,
    utf16_len,
)
from gpudesk.market.digest import (
    Digest,
    Notable,
    build_digest,
    next_occurrence,
    occurrence_at_or_before,
    occurrence_for_week,
    parse_week,
    week_label,
    window_ending,
)
from gpudesk.market.listings import micros
from gpudesk.market.message import ChatMessage, Reply
from gpudesk.market.offer import Currency, Deal, Offer, PricePer, QuantityUnit, Side
from gpudesk.market.pulse import Pulse, Reading
from gpudesk.storage.ledger import Ledger
from tests.conftest import FakeClock

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_9AM = (0, 9, 0)
# The digest of 2026-W47: due Monday 2026-11-23 09:00 in Shanghai, covering the week before.
DUE = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
START = DUE - timedelta(days=7)
WEEK = "2026-W47"
# Its figures are the pulse of ISO week 2026-W47 in Shanghai: Monday 16 to Monday 23 November.
WEEK_START = datetime(2026, 11, 16, tzinfo=SHANGHAI)
WEEK_END = WEEK_START + timedelta(days=7)
LIFETIME = timedelta(days=14)  # `[desk] offer_days`: a listing stands 14 days after its last post
GROUP = ("telegram", "-100")


def structured(text: str) -> list[Offer]:
    """The tests' parser: `sell H100 rent 16 12.50 Beijing` (GPUs, then the price per GPU-hour
    for rent or per GPU for sale, `-` for none, then an optional place)."""
    words = text.split()
    if len(words) < 5 or words[0] not in ("sell", "buy"):
        return []
    side, gpu, deal, gpus, price = words[:5]
    return [
        Offer(
            side=Side(side),
            deal=Deal(deal),
            gpu=gpu,
            quantity=int(gpus),
            quantity_unit=QuantityUnit.GPU,
            price=None if price == "-" else Decimal(price),
            currency=Currency.CNY,
            price_per=PricePer.GPU_HOUR if deal == "rent" else PricePer.GPU,
            location=" ".join(words[5:]) or None,
        )
    ]


def at(day: int, hour: int) -> datetime:
    """November 2026, UTC."""
    return datetime(2026, 11, day, hour, tzinfo=UTC)


# (when, who, post). The week before the digest's window, then the window itself.
SEED: list[tuple[datetime, str, str]] = [
    (at(10, 2), "alice", "sell H100 rent 16 14.00 Beijing"),
    (at(11, 2), "bob", "sell H100 rent 8 13.00 Shanghai"),
    (at(12, 2), "gina", "sell A100 rent 8 6.00 Beijing"),
    (at(16, 3), "alice", "sell H100 rent 16 13.50 Beijing"),
    (at(17, 3), "carol", "sell H100 rent 32 12.00 Beijing"),
    (at(18, 3), "dave", "sell H100 rent 64 13.20 Shenzhen"),
    (at(18, 5), "alice", "sell H100 rent 16 12.80 Beijing"),  # alice cuts her price
    (at(19, 3), "erin", "sell H100 rent 8 - Beijing"),
    (at(20, 3), "frank", "buy H100 rent 16 11.50 Beijing"),
    (at(20, 5), "gina", "sell A100 rent 8 5.80 Beijing"),
    (at(21, 3), "hank", "buy A100 rent 16 6.50 Beijing"),
    (at(21, 5), "ivan", "buy A100 rent 8 6.20 Beijing"),
    (at(22, 3), "jack", "sell H100 sale 8 230000 Hong Kong"),
]


@dataclass
class Market:
    ledger: Ledger
    desk: Desk
    clock: FakeClock
    replies: list[tuple[datetime, Reply]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def post(
        self,
        when: datetime,
        who: str,
        text: str,
        *,
        chat: tuple[str, str] = GROUP,
        title: str | None = "GPU Traders",
        **extra: object,
    ) -> list[Reply]:
        self.clock.now = when
        values: dict[str, object] = {
            "platform": chat[0],
            "chat_id": chat[1],
            "chat_title": title,
            "sender_id": who,
            "sender_name": who.title(),
            "text": text,
            "sent_at": when,
            "message_id": str(next(self._ids)),
        }
        values.update(extra)
        replies = self.desk.handle(ChatMessage(**values))  # type: ignore[arg-type]
        self.replies.extend((when, reply) for reply in replies)
        return replies

    def digest(self, chat: tuple[str, str] = GROUP) -> Digest:
        record = self.ledger.chat(*chat)
        return load_digest(self.ledger, self.desk.settings, record, start=START, end=DUE)


@pytest.fixture
def market(ledger: Ledger) -> Market:
    clock = FakeClock(at(9, 0))
    desk = Desk(ledger, DeskSettings(language="en"), clock=clock, parse=structured)
    seeded = Market(ledger, desk, clock)
    for when, who, text in SEED:
        seeded.post(when, who, text)
    return seeded


# -- the independent count --------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    sell_posts: int
    sell_posters: int
    sellers: int
    buy_posts: int
    buy_posters: int
    buyers: int
    median_ask: Decimal | None
    median_bid: Decimal | None


def count(start: datetime, end: datetime) -> dict[tuple[str, str], Row]:
    """Per (gpu, deal), straight from SEED, for the week [start, end).

    SEED has no broker, no withdrawal and no lot silent for 14 days, so the method comes down
    to: each post keeps its party's lot standing for 14 days, a party is active when it posted
    the lot in the week or in the 14 days before it, and its price is the last it stated before
    the week's end. Posts are the week's messages, posters their distinct authors.
    """
    rows = {}
    seed = [(when, who, text.split()) for when, who, text in SEED]
    for gpu, deal in {(w[1], w[2]) for when, _, w in seed if start - LIFETIME < when < end}:

        def side(name: str, gpu: str = gpu, deal: str = deal) -> tuple[int, int, int, Any]:
            mine = sorted((when, who, w) for when, who, w in seed if w[:3] == [name, gpu, deal])
            posts = [who for when, who, _ in mine if start <= when < end]
            active = {who for when, who, _ in mine if start - LIFETIME < when < end}
            price = {who: Decimal(w[4]) for when, who, w in mine if when < end and w[4] != "-"}
            prices = [price[who] for who in active if who in price]
            median = statistics.median(prices) if prices else None
            return len(posts), len(set(posts)), len(active), median

        sell_posts, sell_posters, sellers, ask = side("sell")
        buy_posts, buy_posters, buyers, bid = side("buy")
        rows[(gpu, deal)] = Row(
            sell_posts, sell_posters, sellers, buy_posts, buy_posters, buyers, ask, bid
        )
    return rows


def active_parties(side: str) -> set[str]:
    """Who has a listing of `side` standing in the digest's week, any model, from SEED."""
    return {
        who
        for when, who, text in SEED
        if text.split()[0] == side and WEEK_START - LIFETIME < when < WEEK_END
    }


def test_the_digest_counts_the_parties_whose_listings_stand_in_the_iso_week(
    market: Market,
) -> None:
    digest = market.digest()
    expected = count(WEEK_START, WEEK_END)
    got = {
        (p.gpu, p.deal.value): Row(
            p.sell_offers,
            p.sell_posters,
            p.sellers,
            p.buy_offers,
            p.buy_posters,
            p.buyers,
            p.median_ask,
            p.median_bid,
        )
        for p in digest.models
    }
    assert got == expected
    # By hand: bob posted on the 11th, so his listing stands until the 25th: five sellers
    # (alice, bob, carol, dave, erin) from five posts by four posters; the median of alice's
    # cut 12.80, bob's 13.00, carol's 12.00 and dave's 13.20 (erin states none) is 12.90.
    assert expected[("H100", "rent")] == Row(5, 4, 5, 1, 1, 1, Decimal("12.90"), Decimal("11.50"))
    assert digest.overall.sellers == len(active_parties("sell")) == 7  # gina and jack too
    assert digest.overall.buyers == len(active_parties("buy")) == 3
    posts = sum(WEEK_START <= when < WEEK_END for when, _, _ in SEED)
    assert digest.overall.posts == posts == 10
    assert digest.overall.ratio == Decimal("2.3")  # 7 / 3
    assert digest.overall.reading is Reading.SELLERS_OUTNUMBER  # 7 < 3·3, 2·7 >= 3·3
    assert digest.week == WEEK


def test_week_on_week_is_the_median_ask_against_the_week_before(market: Market) -> None:
    digest = market.digest()
    h100 = next(p for p in digest.models if (p.gpu, p.deal) == ("H100", Deal.RENT))
    before = count(WEEK_START - timedelta(days=7), WEEK_START)[("H100", "rent")].median_ask
    now = count(WEEK_START, WEEK_END)[("H100", "rent")].median_ask
    # By hand: alice's 14.00 and bob's 13.00 the week before, 12.90 this week (above).
    assert (before, now) == (Decimal("13.50"), Decimal("12.90"))
    assert h100.wow_ask == (now - before) / before  # -0.60 / 13.50: -4.4%
    assert digest.overall.lead == h100  # the busiest model with a move leads the headline


def test_notable_offers_are_listings_standing_in_the_week(market: Market) -> None:
    digest = market.digest()
    assert [(n.post and n.post.poster_id, n.price) for n in digest.lowest_asks] == [
        ("carol", Decimal("12.00")),
        ("gina", Decimal("5.80")),
        ("jack", Decimal("230000")),
    ]
    assert [(n.post and n.post.poster_id, n.price) for n in digest.highest_bids] == [
        ("frank", Decimal("11.50")),
        ("hank", Decimal("6.50")),
    ]
    # dave 64, carol 32; then three parties with 16 GPUs, the first listed first: alice (since
    # the 10th), at the price she cut to on the 18th, quoted from that post.
    assert [(n.name, n.gpus) for n in digest.largest_lots] == [
        ("Dave", 64),
        ("Carol", 32),
        ("Alice", 16),
    ]
    alice = digest.largest_lots[2]
    assert alice.price == Decimal("12.80")
    assert alice.post is not None and alice.post.posted_at == at(18, 5)
    assert alice.listing.first_at == micros(at(10, 2))
    # The lowest ask shown is the pulse's best ask, the highest bid its best bid.
    for notable in digest.lowest_asks:
        assert notable.price == _pulse_of(digest, notable).best_ask
    for notable in digest.highest_bids:
        assert notable.price == _pulse_of(digest, notable).best_bid


def test_the_notable_offers_are_the_listings_the_pulse_counts_posted_before_the_week_too(
    market: Market,
) -> None:
    # The week before the digest's: kate lists a big lot cheaper than anyone, leo listed one
    # cheaper still but long ago, mia listed one and then said it was gone.
    market.post(at(1, 2), "leo", "sell H100 rent 8 10.00 Beijing")  # stood until the 15th 02:00
    market.post(at(12, 2), "mia", "sell H100 rent 8 10.50 Beijing")
    market.post(at(14, 2), "mia", "H100已出")
    market.post(at(13, 2), "kate", "sell H100 rent 128 11.00 Guangzhou")
    digest = market.digest()
    h100 = next(p for p in digest.models if (p.gpu, p.deal) == ("H100", Deal.RENT))
    assert (h100.sellers, h100.best_ask) == (5 + 1, Decimal("11.00"))  # kate; not leo, nor mia
    cheapest = digest.lowest_asks[0]
    assert (cheapest.name, cheapest.price, cheapest.gpus) == ("Kate", Decimal("11.00"), 128)
    assert cheapest.post is not None and cheapest.post.posted_at == at(13, 2)  # not in the window
    assert (digest.largest_lots[0].name, digest.largest_lots[0].gpus) == ("Kate", 128)
    text = render_text(digest, "en", SHANGHAI).full.splitlines()
    assert "  H100 rent ¥11.00/GPU-h · 128 GPUs · Guangzhou · Kate" in text
    assert "  sell H100 rent 128 GPUs · ¥11.00/GPU-h · Guangzhou · Kate" in text
    assert not any("Leo" in line or "Mia" in line for line in text)


def test_a_notable_listing_whose_post_was_not_read_speaks_for_itself(market: Market) -> None:
    book = market.ledger.listings(until=DUE, lifetime=LIFETIME)
    digest = build_digest([], start=START, end=DUE, week=WEEK, book=book, zone=SHANGHAI)
    assert digest.models == market.digest().models  # the figures need only the listings
    carol = digest.lowest_asks[0]
    assert (carol.post, carol.name, carol.price, carol.gpus) == (
        None,
        "carol",
        Decimal("12.00"),
        32,
    )
    text = render_text(digest, "en", SHANGHAI).full.splitlines()
    assert "  H100 rent ¥12.00/GPU-h · 32 GPUs · Beijing · carol" in text


def test_offers_alone_are_read_as_listings_the_same_way(market: Market) -> None:
    # SEED has no repost, so each booked offer is one advertisement.
    records = market.ledger.offers_seen_between(START - timedelta(weeks=8), DUE)
    offers = [record.posted for record in records]
    digest = build_digest(offers, start=START, end=DUE, week=WEEK, zone=SHANGHAI)
    from_ledger = market.digest()
    assert digest.models == from_ledger.models
    assert (digest.overall, digest.history) == (from_ledger.overall, from_ledger.history)
    for mine, theirs in (
        (digest.lowest_asks, from_ledger.lowest_asks),
        (digest.highest_bids, from_ledger.highest_bids),
        (digest.largest_lots, from_ledger.largest_lots),
    ):
        assert [(n.post, n.price) for n in mine] == [(n.post, n.price) for n in theirs]


def _pulse_of(digest: Digest, notable: Notable) -> Pulse:
    lot = notable.listing.lot
    return next(p for p in digest.models if (p.gpu, p.deal) == (lot.gpu, lot.deal))


def test_the_matches_made_are_those_the_desk_announced(market: Market) -> None:
    announced = [
        line
        for when, reply in market.replies
        if reply.kind == "match" and START < when <= DUE
        for line in reply.text.splitlines()
        if line[:1].isdigit()  # "1. Carol in GPU Traders, ..."
    ]
    digest = market.digest()
    assert digest.match_count == len(announced) == 6
    best = digest.matches[0]
    # hank's bid of 6.50 over gina's ask of 5.80 is the deal with the bid furthest above.
    assert (best.seller.poster_id, best.buyer.poster_id) == ("gina", "hank")
    assert best.gap == Decimal("5.80") - Decimal("6.50")


def test_an_edited_post_takes_its_matches_with_it(market: Market) -> None:
    [reply] = market.post(at(22, 5), "kim", "buy H100 rent 8 12.50 Beijing", message_id="k")
    assert reply.kind == "match"
    kims = [m for m in market.ledger.matches_between(START, DUE) if m.offer.poster_id == "kim"]
    assert {m.counterparty.poster_id for m in kims} == {"carol", "alice", "bob"}
    # The edit drops the offer (foreign keys on): its matches must go too, not block it. The
    # new reading, at 9.00, meets no ask; only erin, who names no price, is still a match.
    market.post(at(22, 6), "kim", "buy H100 rent 8 9.00 Beijing", message_id="k", edited=True)
    kims = [m for m in market.ledger.matches_between(START, DUE) if m.offer.poster_id == "kim"]
    assert [(m.counterparty.poster_id, m.offer.unit_price) for m in kims] == [
        ("erin", Decimal("9.00"))
    ]


def test_a_match_is_recorded_once() -> None:
    with Ledger.open(":memory:") as ledger:
        message = ChatMessage("console", "room", "a", "A", "x", at(16, 3), "1", chat_title="R")
        row = ledger.store_message(message, received_at=at(16, 3)).id
        ids = [
            ledger.add_offer(
                message_row=row,
                item=item,
                message=message,
                offer=offer,
                gpus=8,
                posted_at=at(16, 3),
                expires_at=at(30, 3),
            )
            for item, offer in enumerate(structured("sell H100 rent 8 12 x") * 2)
        ]
        for _ in range(2):
            ledger.record_match(ids[0], ids[1], matched_at=at(16, 4), gap=Decimal("-1"))
        [made] = ledger.matches_between(START, DUE)
        assert (made.offer.id, made.counterparty.id, made.gap) == (ids[0], ids[1], Decimal("-1"))


def test_a_group_with_its_own_scope_gets_its_own_market(market: Market) -> None:
    other = ("telegram", "-200")
    market.post(at(19, 3), "kate", "sell H200 rent 8 18.00 Beijing", chat=other)
    market.ledger.update_chat(*other, scope="group")
    assert [(p.gpu, p.deal) for p in market.digest(other).models] == [("H200", Deal.RENT)]
    assert ("H200", Deal.RENT) in [(p.gpu, p.deal) for p in market.digest(GROUP).models]
    text = fit(market.digest(other), "en", SHANGHAI, this_group=True).head
    assert "(this group)" in text


def test_a_week_without_offers_is_quiet(ledger: Ledger) -> None:
    digest = load_digest(ledger, DeskSettings(), None, start=START, end=DUE)
    assert digest.quiet
    text = render_text(digest, "en", SHANGHAI)
    assert text.full == "No offers from 11-16 09:00 to 11-23 09:00: nothing to sum up."
    assert digest_replies(text, None, platform="telegram", chat_id="-100") == [
        Reply("telegram", "-100", text.full, kind="digest")
    ]


# -- words ------------------------------------------------------------------------------------


def test_the_text_says_the_numbers_in_english(market: Market) -> None:
    text = render_text(market.digest(), "en", SHANGHAI).full
    assert text.splitlines()[:3] == [
        "GPU market weekly 2026-W47 · 11-16 09:00 – 11-23 09:00",
        "Sellers outnumber buyers: 2.3 sellers per buyer, "
        "median H100 rent ask down 4% week on week.",
        "Sellers: 7 · buyers: 3 · posts: 10 · matches made: 6",
    ]
    for line in (
        "H100 rent · sell 5/5 · buy 1/1 · everyone selling, few buying",
        "  median ask ¥12.90/GPU-h (-4% w/w) · bid ¥11.50/GPU-h",
        "A100 rent · sell 1/1 · buy 2/2 · buyers outnumber sellers",
        "  median ask ¥5.80/GPU-h (-3% w/w) · bid ¥6.35/GPU-h",
        "H100 sale · sell 1/1 · buy 0/0 · everyone selling, few buying",
        "  median ask ¥230,000/GPU · bid n/a",
        "  H100 rent ¥12.00/GPU-h · 32 GPUs · Beijing · Carol",
        "  sell H100 rent 64 GPUs · ¥13.20/GPU-h · Shenzhen · Dave",
        "Matches made: 6. The best:",
        "  A100 rent: Gina asks ¥5.80/GPU-h ↔ Hank bids ¥6.50/GPU-h",
    ):
        assert line in text.splitlines()


def test_the_text_says_the_numbers_in_chinese(market: Market) -> None:
    text = render_text(market.digest(), "zh", SHANGHAI).full
    lines = text.splitlines()
    assert lines[1] == "卖方多于买方：卖方是买方的 2.3 倍，H100 租赁卖价中位数周环比下跌 4%。"
    assert "H100 租赁 · 卖 5/5 · 买 1/1 · 卖的多，买的少" in lines
    assert "  卖价中位 ¥12.90/卡时（周环比 -4%）· 买价中位 ¥11.50/卡时" in lines
    assert "本周撮合 6 次，最优：" in lines
    assert not any(word in text for word in ("sell", "buy", "median", "GPUs"))


def test_replies_fit_telegram_whatever_the_week(market: Market) -> None:
    png = b"\x89PNG fake"
    small = fit(market.digest(), "en", SHANGHAI)
    if utf16_len(small.full) <= CAPTION_LIMIT:
        assert len(digest_replies(small, png, platform="telegram", chat_id="-1")) == 1
    # A busy week: 40 models, names with emoji (2 UTF-16 units each): split and trimmed.
    for n in range(40):
        market.post(at(19, 4), f"seller{n}", f"sell M{n:02d} rent 8 {10 + n} 北京🚀🚀🚀")
    big = fit(market.digest(), "zh", SHANGHAI)
    first, second = digest_replies(big, png, platform="telegram", chat_id="-1")
    assert first.image == png and second.image is None
    assert first.text == big.head and second.text == big.body
    assert utf16_len(first.text) <= CAPTION_LIMIT
    assert utf16_len(second.text) <= MESSAGE_LIMIT
    assert "……另有" in second.text  # rows dropped to fit, and said so
    assert {r.kind for r in (first, second)} == {"digest"}


# -- the chart --------------------------------------------------------------------------------


def test_the_chart_says_what_the_numbers_say(market: Market) -> None:
    digest = market.digest()
    figure = chart.build_figure(digest, "en", SHANGHAI)
    assert figure.get_suptitle() == "GPU market 2026-W47"
    rent, sale, parties = figure.axes
    assert rent.get_title(loc="left") == "Median ask, rent (¥/GPU-h), last 8 weeks"
    assert sale.get_title(loc="left") == "Median ask, sale (¥/GPU), last 8 weeks"
    lines = {line.get_label(): line.get_ydata() for line in rent.get_lines()}
    assert list(lines) == ["H100", "A100"]
    assert list(lines["H100"]) == [13.5, 12.9]  # the two weeks with listings standing
    assert [t.get_text() for t in rent.texts] == ["¥12.90", "¥5.80"]  # last points, labelled
    assert [t.get_text() for t in rent.get_xticklabels()][-2:] == ["11-16", "11-23"]
    names = [t.get_text() for t in parties.get_yticklabels()]
    assert names == ["H100 rent", "A100 rent", "H100 sale"]
    sellers, buyers = (
        [int(bar.get_width()) for bar in container] for container in parties.containers
    )
    assert sellers == [p.sellers for p in digest.models] == [5, 1, 1]
    assert buyers == [p.buyers for p in digest.models] == [1, 2, 0]
    counts = [t.get_text() for t in parties.texts]
    assert counts == ["5", "1", "1", "1", "2", "0"]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_chart_is_a_png_of_phone_size_with_chinese_that_renders(market: Market) -> None:
    family = chart.cjk_font()
    assert family is not None, "no CJK font: run `make install` (apt-get fonts-wqy-microhei)"
    digest = market.digest()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = chart.render_chart(digest, "zh", SHANGHAI)
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert not missing  # matplotlib warns for every glyph it draws as a box
    width, height = png_size(png)
    assert width == 1080 and 900 <= height <= 2000
    assert 20_000 < len(png) < 1_000_000
    # Every Chinese character the figure shows is in the font matplotlib picked.
    from matplotlib import font_manager, ft2font

    figure = chart.build_figure(digest, "zh", SHANGHAI)
    texts = [figure.get_suptitle()] + [
        t.get_text() for ax in figure.axes for t in (*ax.texts, *ax.get_yticklabels())
    ]
    texts += [ax.get_title(loc="left") for ax in figure.axes]
    shown = {c for text in texts for c in text if ord(c) > 0x2E80}
    assert {"卖", "价", "周", "租", "赁"} <= shown
    face = ft2font.FT2Font(font_manager.findfont(family, fallback_to_default=False))
    assert all(face.get_char_index(ord(c)) for c in shown)


@pytest.fixture
def no_cjk_font(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(chart, "CJK_FAMILIES", ())
    monkeypatch.setattr(chart, "CJK_FILE_HINTS", ())
    chart.cjk_font.cache_clear()
    yield
    chart.cjk_font.cache_clear()


@pytest.mark.usefixtures("no_cjk_font")
def test_without_a_cjk_font_the_chart_still_renders_and_says_why(
    market: Market, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the boxes this test expects
        png = chart.render_chart(market.digest(), "en", SHANGHAI)
    assert png_size(png)[0] == 1080
    assert "no CJK font found" in caplog.text and "fonts-wqy-microhei" in caplog.text


# -- the CLI and the command ------------------------------------------------------------------


def test_the_cli_renders_a_chat_and_a_week_to_files(
    market: Market, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.toml here: defaults (zh, Shanghai, mon 09:00)
    out = tmp_path / "out"
    args = ["--db", str(db_path), "--chat", "-100", "--week", WEEK, "--out", str(out)]
    result = CliRunner().invoke(digest_command, args)
    assert result.exit_code == 0, result.output
    expected = fit(market.digest(), "zh", SHANGHAI).full
    assert (out / "digest.txt").read_text(encoding="utf-8") == expected + "\n"
    assert png_size((out / "digest.png").read_bytes())[0] == 1080


def test_the_cli_renders_every_chat_in_its_own_folder(
    market: Market, db_path: Path, tmp_path: Path
) -> None:
    market.post(at(19, 3), "kate", "sell H200 rent 8 18.00", chat=("console", "room b"))
    market.ledger.update_chat("console", "room b", language="en")
    root = click.Group(commands=[digest_command])  # as cli.py registers it
    state = SimpleNamespace(settings=Settings())
    args = ["digest", "--db", str(db_path), "--week", WEEK, "--out", str(tmp_path / "all")]
    result = CliRunner().invoke(root, args, obj=state)
    assert result.exit_code == 0, result.output
    folders = sorted(p.name for p in (tmp_path / "all").iterdir())
    assert folders == ["console-room_b", "telegram--100"]
    english = (tmp_path / "all" / "console-room_b" / "digest.txt").read_text(encoding="utf-8")
    assert english.startswith("GPU market weekly 2026-W47")  # the chat's own language


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--week", "2026-W60"], "must be an ISO week"),
        (["--chat", "nowhere"], "no chat nowhere in the ledger"),
    ],
)
def test_the_cli_names_what_is_wrong(
    market: Market, db_path: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        digest_command, ["--db", str(db_path), "--out", str(tmp_path), *args]
    )
    assert result.exit_code != 0 and message in result.output


def test_the_cli_will_not_make_an_empty_ledger(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    result = CliRunner().invoke(digest_command, ["--db", str(missing), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "there is no ledger" in result.output
    assert not missing.exists()


def test_digest_command_is_for_admins_and_sends_the_chart(market: Market) -> None:
    [refused] = market.post(DUE, "mallory", "/digest")
    assert refused.text == "Only group admins can use /digest."
    replies = market.post(DUE, "root", "周报", sender_is_admin=True)
    assert replies[0].image is not None and png_size(replies[0].image)[0] == 1080
    assert all(r.kind == "digest" and r.reply_to_id == str(len(SEED) + 2) for r in replies)
    assert "".join(r.text for r in replies).count("H100 rent · sell 5/5") == 1


# -- the calendar -----------------------------------------------------------------------------


def test_the_monday_digest_is_the_week_just_ended() -> None:
    monday_late = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    due = occurrence_at_or_before(monday_late, MONDAY_9AM, SHANGHAI)
    assert due == DUE
    assert window_ending(due, MONDAY_9AM, SHANGHAI) == (START, DUE)
    assert week_label(START, DUE, SHANGHAI) == WEEK
    assert occurrence_for_week(WEEK, MONDAY_9AM, SHANGHAI) == DUE
    assert next_occurrence(DUE, MONDAY_9AM, SHANGHAI) == DUE + timedelta(days=7)
    assert parse_week("2026w47") == (2026, 47)


ZONES = [ZoneInfo(name) for name in ("Asia/Shanghai", "UTC", "America/New_York", "Europe/Paris")]


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    ),
    weekday=st.integers(0, 6),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 30, 59]),
    zone=st.sampled_from(ZONES),
)
# Windows across the spring change in New York: the UTC middle of one fell on the next's week.
@example(datetime(2024, 3, 22, tzinfo=UTC), 3, 11, 30, ZoneInfo("America/New_York"))
@example(datetime(2020, 3, 13, tzinfo=UTC), 3, 11, 30, ZoneInfo("America/New_York"))
def test_scheduled_windows_tile_time_and_each_has_its_own_week(
    moment: datetime, weekday: int, hour: int, minute: int, zone: ZoneInfo
) -> None:
    when = (weekday, hour, minute)
    due = occurrence_at_or_before(moment, when, zone)
    after = next_occurrence(moment, when, zone)
    assert due <= moment < after
    start, end = window_ending(after, when, zone)
    assert (start, end) == (due, after)  # no gap, no overlap, even across daylight saving
    assert timedelta(hours=166) <= end - start <= timedelta(hours=170)
    label = week_label(*window_ending(due, when, zone), zone)
    assert label != week_label(start, end, zone)
    assert occurrence_for_week(label, when, zone) == due


def test_matches_outside_the_window_are_not_this_weeks(market: Market) -> None:
    made = market.ledger.matches_between(START - timedelta(days=30), DUE + timedelta(days=30))
    late = [replace(m, matched_at=DUE + timedelta(seconds=1)) for m in made]
    digest = build_digest([], start=START, end=DUE, week=WEEK, matches=late)
    assert digest.quiet and digest.match_count == 0 and digest.matches == ()


def test_the_png_size_helper_reads_a_known_image() -> None:
    from matplotlib.figure import Figure

    out = io.BytesIO()
    Figure(figsize=(2, 1)).savefig(out, format="png", dpi=100)
    assert png_size(out.getvalue()) == (200, 100)
