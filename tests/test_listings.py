"""Market truth, the pure core: listings from posts, withdrawals, and the weekly pulse.

Each test builds a small history by hand that isolates one rule of README (pulse) and checks
what the engine makes of it (`gpudesk.market.listings`), down to every field of the pulse.
Times are local Shanghai times in November 2026: week 45 runs from Monday 2 to Sunday 8.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpudesk.market.book import PostedOffer
from gpudesk.market.listings import (
    Advert,
    Closing,
    Codes,
    Listings,
    Lot,
    Role,
    Week,
    Withdrawal,
    advert,
    build_listings,
    micros,
    moment,
    pulse_of,
    pulses,
    standing_in,
)
from gpudesk.market.normalise import Unit
from gpudesk.market.offer import Currency, Deal, Offer, Side
from gpudesk.market.pulse import Pulse, Reading, compute_pulse

ZONE = ZoneInfo("Asia/Shanghai")
W45 = Week(2026, 45, ZONE)
H100_BJ = Lot(Side.SELL, Deal.RENT, "H100", 80, "Beijing")
H100_SH = Lot(Side.SELL, Deal.RENT, "H100", 80, "Shanghai")
H100_WANTED = Lot(Side.BUY, Deal.RENT, "H100", 16, "Beijing")
_ids = itertools.count(1)


def at(day: int, hour: float = 10) -> datetime:
    """A local Shanghai time on `day` November 2026 (0 and below: the end of October), as UTC."""
    local = datetime(2026, 11, 1, tzinfo=ZONE) + timedelta(days=day - 1, hours=hour)
    return local.astimezone(UTC)


def post(
    who: str,
    when: datetime,
    price: str | None,
    lot: Lot = H100_BJ,
    *,
    chat: str = "g1",
    variant: str | None = None,
    offer: int | None = None,
) -> Advert:
    """One post by `who` (on telegram) for `lot`, at a unit price in CNY per GPU-hour."""
    n = next(_ids)
    return advert(
        n,
        at=when,
        party=("telegram", who),
        lot=lot,
        price=None if price is None else Decimal(price),
        chat=("telegram", chat),
        variant=variant,
        offer=offer,
    )


def said(
    who: str,
    when: datetime,
    *,
    gpu: str | None = "H100",
    reply_to: Advert | None = None,
    **named: object,
) -> Withdrawal:
    """ "已出" from `who`: naming `gpu` (and `named`), or answering the post `reply_to`."""
    n = next(_ids)
    return Withdrawal(
        id=n,
        message=n,
        at=micros(when),
        party=("telegram", who),
        chat=("telegram", "g1"),
        reply_to=None if reply_to is None else reply_to.message,
        gpu=gpu,
        **named,  # type: ignore[arg-type]
    )


def read(*adverts: Advert, withdrawals: tuple[Withdrawal, ...] = ()) -> Listings:
    return build_listings(adverts, withdrawals, lifetime=timedelta(days=14))


def pulse(book: Listings, week: Week = W45, deal: Deal = Deal.RENT) -> Pulse:
    return pulse_of(book, "H100", deal, week)


def roles(book: Listings) -> list[list[Role]]:
    return [[role for _, role in listing.adverts] for listing in book.listings]


# -- what advertises a listing ------------------------------------------------------------------


def test_a_repost_is_the_same_listing_and_one_party() -> None:
    book = read(post("alice", at(2), "12.84"), post("alice", at(5), "12.84"))
    assert roles(book) == [[Role.ORIGINAL, Role.REPOST]]
    p = pulse(book)
    assert (p.sellers, p.sell_messages, p.sell_posters) == (1, 2, 1)


def test_a_copy_in_another_group_is_a_cross_post_of_the_same_listing() -> None:
    book = read(post("alice", at(2), "12.84"), post("alice", at(2, 11), "12.84", chat="g2"))
    assert roles(book) == [[Role.ORIGINAL, Role.CROSS_POST]]
    assert (pulse(book).sellers, pulse(book).sell_messages) == (1, 2)


def test_a_brokers_repost_within_a_day_at_the_same_price_is_no_party() -> None:
    # 75,000 CNY a server-month is 12.8425 per GPU-hour; the broker's $1.78 at 7.2 is 12.816.
    owner = post("alice", at(2), "12.8425")
    relay = post("bob", at(2, 15), "12.816")
    book = read(owner, relay)
    assert roles(book) == [[Role.ORIGINAL, Role.BROKER_REPOST]]
    assert book.listings[0].party == ("telegram", "alice")
    p = pulse(book)
    assert (p.sellers, p.sell_posters, p.sell_messages) == (1, 2, 2)
    assert p.median_ask == Decimal("12.8425")  # the party's own price, never the broker's


@pytest.mark.parametrize(
    ("relay", "why"),
    [
        (post("bob", at(3, 11), "12.8425"), "another day: 25 hours later"),
        (post("bob", at(2, 15), "12.8425", H100_SH), "another place"),
        (post("bob", at(2, 15), "13.10"), "a price 2% off"),
        (post("bob", at(2, 15), "12.8425", Lot(Side.SELL, Deal.RENT, "H100", 64, "Beijing")), "64"),
        (post("bob", at(2, 15), "12.8425", variant="PCIe"), "a conflicting variant"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_two_parties_that_merely_look_alike_stay_two(relay: Advert, why: str) -> None:
    book = read(post("alice", at(2), "12.8425", variant="SXM"), relay)
    assert (len(book.listings), pulse(book).sellers) == (2, 2), why


def test_without_a_stated_size_and_place_no_post_is_a_brokers() -> None:
    bare = Lot(Side.SELL, Deal.RENT, "H100", None, None)
    book = read(post("alice", at(2), "12.84", bare), post("bob", at(2, 11), "12.84", bare))
    assert pulse(book).sellers == 2


def test_a_brokers_repost_keeps_the_listing_standing() -> None:
    alone = read(post("alice", at(2), "12.84"))
    relayed = read(post("alice", at(2), "12.84"), post("bob", at(3, 9), "12.84"))
    w47 = W45.shifted(2)
    assert alone.listings[0].ends_at == micros(at(16))
    assert relayed.listings[0].ends_at == micros(at(17, 9))  # 14 days after the relay
    assert moment(relayed.listings[0].ends_at) > w47.start
    assert pulse(alone, w47).sellers == 1  # alone it ends on the Monday of week 47 at 10:00
    assert pulse(relayed, W45.shifted(3)).sellers == 0


def test_a_relay_of_a_relay_is_still_the_same_lot() -> None:
    book = read(
        post("alice", at(2, 0), "12.84"),
        post("bob", at(2, 20), "12.84"),
        post("carol", at(3, 18), "12.84"),  # 42 h after alice, 22 h after bob
    )
    assert roles(book) == [[Role.ORIGINAL, Role.BROKER_REPOST, Role.BROKER_REPOST]]
    assert pulse(book).sellers == 1


def test_a_new_price_holds_from_the_post_that_states_it() -> None:
    book = read(post("alice", at(2), "14.00"), post("alice", at(5), "12.00"))
    assert roles(book) == [[Role.ORIGINAL, Role.PRICE_CHANGE]]
    assert pulse(book).median_ask == Decimal("12.00")  # the latest in force in the week
    # A cut in week 46 leaves week 45 at the old price, and week 46 says by how much.
    book = read(post("alice", at(2), "14.00"), post("alice", at(10), "12.00"))
    assert pulse(book).median_ask == Decimal("14.00")
    assert pulse(book, W45.shifted(1)).wow_ask == Decimal(-2) / Decimal(14)


def test_an_unpriced_repost_keeps_the_last_stated_price() -> None:
    book = read(post("alice", at(2), "14.00"), post("alice", at(4), None))
    assert roles(book) == [[Role.ORIGINAL, Role.REPOST]]
    assert pulse(book).median_ask == Decimal("14.00")


def test_a_party_counts_once_at_its_latest_price_and_latest_quantity() -> None:
    smaller = Lot(Side.SELL, Deal.RENT, "H100", 16, "Shanghai")
    book = read(post("alice", at(2), "12.00"), post("alice", at(4), "13.00", smaller))
    assert len(book.listings) == 2
    p = pulse(book)
    assert (p.sellers, p.median_ask, p.qty_offered) == (1, Decimal("13.00"), 16)
    counted = {
        (s.listing.lot.place, s.counted_price) for s in standing_in(book, "H100", Deal.RENT, W45)
    }
    assert counted == {("Beijing", False), ("Shanghai", True)}


# -- standing and withdrawals --------------------------------------------------------------------


def test_a_quiet_seller_stands_for_the_lifetime_after_its_last_post() -> None:
    book = read(post("alice", at(2, 10), "12.84"))  # Monday of week 45, 10:00
    sellers = [pulse(book, W45.shifted(n)).sellers for n in range(4)]
    # Until Monday of week 47 at 10:00: it stands at some moment of weeks 45, 46 and 47.
    assert sellers == [1, 1, 1, 0]
    assert [p.week for p in pulses(book, [W45.shifted(n) for n in range(4)])] == [
        "2026-W45",
        "2026-W46",
        "2026-W47",
    ]


def test_a_repost_after_the_listing_lapsed_is_a_new_listing() -> None:
    book = read(post("alice", at(2), "12.84"), post("alice", at(20), "12.84"))
    assert roles(book) == [[Role.ORIGINAL], [Role.ORIGINAL]]


def test_a_withdrawal_by_name_closes_the_posters_listing_of_that_model() -> None:
    mine = post("alice", at(2), "12.84")
    other_model = post("alice", at(2), "6.00", Lot(Side.SELL, Deal.RENT, "A100", 8, "Beijing"))
    book = read(mine, other_model, withdrawals=(said("alice", at(4)),))
    h100, a100 = book.listings
    assert h100.closed_by is not None and h100.ends_at == micros(at(4))
    assert a100.closed_by is None
    assert pulse(book).sellers == 1  # it stood in week 45 until Wednesday
    assert pulse(book, W45.shifted(1)).sellers == 0


def test_a_withdrawal_by_reply_closes_the_listing_of_the_post_it_answers() -> None:
    mine = post("alice", at(2), "12.84")
    book = read(mine, withdrawals=(said("alice", at(4), gpu=None, reply_to=mine),))
    assert book.listings[0].ends_at == micros(at(4))


def test_nobody_else_closes_a_partys_listing() -> None:
    mine = post("alice", at(2), "12.84")
    book = read(
        mine,
        withdrawals=(
            said("carol", at(3)),  # carol has no H100 listing: her "已出" closes nothing
            said("carol", at(3, 11), gpu=None, reply_to=mine),  # "sold?" under alice's post
        ),
    )
    assert book.listings[0].closed_by is None


def test_a_withdrawal_closes_only_what_it_names() -> None:
    book = read(
        post("alice", at(2), "12.84"),
        post("alice", at(2), "12.84", H100_SH),
        withdrawals=(said("alice", at(3), place="Shanghai"),),
    )
    assert [listing.closed_by is not None for listing in book.listings] == [False, True]


def test_a_brokers_note_closes_a_listing_only_naming_it_whole_and_only_while_open() -> None:
    owner, relay = post("alice", at(2), "12.84"), post("bob", at(2, 12), "12.84")
    whole = {"deal": Deal.RENT, "place": "Beijing", "gpus": 80}
    vague = read(owner, relay, withdrawals=(said("bob", at(4)),))  # "H100已出": no lot named
    assert vague.listings[0].closed_by is None
    named = read(owner, relay, withdrawals=(said("bob", at(4), **whole),))
    assert named.listings[0].ends_at == micros(at(4))
    # Alice closed it on Wednesday; bob's note on Friday is late and changes nothing.
    first = said("alice", at(4))
    late = read(owner, relay, withdrawals=(first, said("bob", at(6), **whole)))
    assert late.listings[0].closed_by == first
    assert late.listings[0].ends_at == micros(at(4))


def test_cancel_and_filled_close_the_listing_their_book_offer_advertised() -> None:
    mine = post("alice", at(2), "12.84", offer=7)
    reposted = post("alice", at(3), "12.84", offer=7)
    cancel = Withdrawal(9, None, micros(at(5)), ("telegram", "alice"), ("telegram", "g1"),
                        kind=Closing.CANCEL, offer=7)  # fmt: skip
    book = read(mine, reposted, withdrawals=(cancel,))
    assert book.listings[0].ends_at == micros(at(5))


def test_a_listing_withdrawn_the_instant_it_was_posted_never_stood() -> None:
    mine = post("alice", at(2), "12.84", offer=7)
    cancel = Withdrawal(9, mine.message + 1, mine.at, ("telegram", "alice"), ("telegram", "g1"),
                        kind=Closing.CANCEL, offer=7)  # fmt: skip
    p = pulse(read(mine, withdrawals=(cancel,)))
    assert (p.sellers, p.median_ask, p.sell_messages) == (0, None, 1)


def test_a_post_after_a_withdrawal_is_a_new_listing() -> None:
    book = read(
        post("alice", at(2), "12.84"),
        post("alice", at(5), "12.84"),
        withdrawals=(said("alice", at(4)),),
    )
    assert roles(book) == [[Role.ORIGINAL], [Role.ORIGINAL]]
    assert book.listings[0].closed_by is not None and book.listings[1].closed_by is None


# -- the pulse, field by field --------------------------------------------------------------------


def market() -> Listings:
    """Week 45: three priced sellers, one unpriced, two buyers; week 44: one seller at 11."""
    buyers = [
        post("bob", at(3), "9.00", H100_WANTED),
        post("carol", at(4), "8.00", Lot(Side.BUY, Deal.RENT, "H100", 8, "Shanghai")),
    ]
    return read(
        post("old", at(-3), "11.00", H100_SH),  # Wednesday 28 October, week 44
        post("s1", at(2), "10.00", Lot(Side.SELL, Deal.RENT, "H100", 8, "Wuhu")),
        post("s2", at(3), "12.00", Lot(Side.SELL, Deal.RENT, "H100", 16, "Wuhu")),
        post("s2", at(3, 11), "12.00", Lot(Side.SELL, Deal.RENT, "H100", 16, "Wuhu"), chat="g2"),
        post("s3", at(4), "14.00", Lot(Side.SELL, Deal.RENT, "H100", 24, "Wuhu")),
        post("s4", at(5), None, Lot(Side.SELL, Deal.RENT, "H100", 32, "Wuhu")),
        *buyers,
    )


def test_every_field_of_a_weeks_pulse() -> None:
    p = pulse(market())
    assert (p.week, p.gpu, p.deal, p.unit, p.currency) == (
        "2026-W45",
        "H100",
        Deal.RENT,
        Unit.GPU_HOUR,
        Currency.CNY,
    )
    assert (p.window_start, p.window_end) == (W45.start, W45.end)
    # "old" posted on 28 October still stands: five sellers, four of them priced.
    assert (p.sellers, p.buyers) == (5, 2)
    assert (p.median_ask, p.p25_ask, p.p75_ask) == (
        Decimal("11.5"),
        Decimal("10.75"),
        Decimal("12.5"),
    )
    assert (p.best_ask, p.best_bid, p.spread) == (
        Decimal("10.00"),
        Decimal("9.00"),
        Decimal("1.00"),
    )
    assert (p.median_bid, p.p25_bid, p.p75_bid) == (
        Decimal("8.5"),
        Decimal("8.25"),
        Decimal("8.75"),
    )
    assert p.wow_ask == (Decimal("11.5") - Decimal("11.00")) / Decimal("11.00")
    assert p.reading is Reading.SELLERS_OUTNUMBER  # 5 to 2: 2·5 ≥ 3·2, but 5 < 3·2
    assert (p.sell_posters, p.sell_messages) == (4, 5)  # "old" posted in week 44
    assert (p.buy_posters, p.buy_messages) == (2, 2)
    assert (p.qty_offered, p.qty_wanted) == (80 + 8 + 16 + 24 + 32, 16 + 8)


@pytest.mark.parametrize(
    ("sellers", "buyers", "reading"),
    [
        (3, 1, Reading.EVERYONE_SELLING),  # s ≥ 3b
        (2, 0, Reading.EVERYONE_SELLING),  # b = 0
        (5, 2, Reading.SELLERS_OUTNUMBER),  # 2s ≥ 3b
        (3, 2, Reading.SELLERS_OUTNUMBER),
        (4, 3, Reading.BALANCED),
        (2, 2, Reading.BALANCED),
        (2, 3, Reading.BUYERS_OUTNUMBER),  # 3s ≤ 2b
        (1, 3, Reading.EVERYONE_BUYING),  # 3s ≤ b
        (0, 2, Reading.EVERYONE_BUYING),  # s = 0
    ],
)
def test_the_reading_in_integers(sellers: int, buyers: int, reading: Reading) -> None:
    posts = [
        post(f"s{n}", at(2), "12", Lot(Side.SELL, Deal.RENT, "H100", 8 * (n + 1), "Wuhu"))
        for n in range(sellers)
    ] + [
        post(f"b{n}", at(2), "9", Lot(Side.BUY, Deal.RENT, "H100", 8 * (n + 1), "Wuhu"))
        for n in range(buyers)
    ]
    assert pulse(read(*posts)).reading is reading


def test_sale_prices_are_per_gpu() -> None:
    sale = Lot(Side.SELL, Deal.SALE, "H100", 8, "Shenzhen")
    p = pulse(read(post("alice", at(2), "210000", sale)), deal=Deal.SALE)
    assert (p.unit, p.median_ask, p.sellers) == (Unit.GPU, Decimal("210000"), 1)


def test_a_week_is_monday_to_monday_in_the_desks_zone() -> None:
    assert W45.label == "2026-W45" and Week.parse("2026w45", ZONE) == W45
    assert W45.start == datetime(2026, 11, 1, 16, tzinfo=UTC)  # Monday 00:00 in Shanghai
    assert W45.end - W45.start == timedelta(days=7)
    assert Week.of(datetime(2026, 11, 1, 15, 59, tzinfo=UTC), ZONE).label == "2026-W44"
    with pytest.raises(ValueError, match="ISO week"):
        Week.parse("2026-W54", ZONE)
    book = read(post("alice", at(8, 23.9), "12.84"))  # Sunday 23:54
    assert pulse(book).sell_messages == 1 and pulse(book, W45.shifted(1)).sell_messages == 0


# -- the same figures however and whenever computed ------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Advert], list[Withdrawal]]:
    """A few parties posting a few lots, some of them twice, over five weeks, some '已出'."""
    lots = [H100_BJ, H100_SH, H100_WANTED, Lot(Side.SELL, Deal.RENT, "H100", None, None)]
    adverts: list[Advert] = []
    withdrawals: list[Withdrawal] = []
    for n in range(draw(st.integers(1, 25))):
        who = draw(st.sampled_from(["alice", "bob", "carol", "dave"]))
        when = at(1) + timedelta(hours=draw(st.integers(0, 24 * 35)))
        price = draw(st.sampled_from(["12.00", "12.05", "13.00", None]))
        lot = draw(st.sampled_from(lots))
        chat = draw(st.sampled_from(["g1", "g2"]))
        adverts.append(
            Advert(n + 1, n + 1, micros(when), ("telegram", who), ("telegram", chat), lot,
                   None, None if price is None else Decimal(price), None)
        )  # fmt: skip
    for n in range(draw(st.integers(0, 4))):
        who = draw(st.sampled_from(["alice", "bob", "carol"]))
        when = at(1) + timedelta(hours=draw(st.integers(0, 24 * 35)))
        reply = draw(st.sampled_from([None, *[a.message for a in adverts]]))
        withdrawals.append(
            Withdrawal(100 + n, 100 + n, micros(when), ("telegram", who), ("telegram", "g1"),
                       reply_to=reply, gpu=None if reply else "H100")
        )  # fmt: skip
    return adverts, withdrawals


WEEKS = [W45.shifted(n) for n in range(-1, 6)]


@settings(max_examples=60, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_a_past_week_reads_the_same_later_and_in_any_order(
    history: tuple[list[Advert], list[Withdrawal]], shuffle: random.Random
) -> None:
    adverts, withdrawals = history
    whole = pulses(read(*adverts, withdrawals=tuple(withdrawals)), WEEKS)
    shuffled = adverts[:]
    shuffle.shuffle(shuffled)
    assert pulses(read(*shuffled, withdrawals=tuple(reversed(withdrawals))), WEEKS) == whole
    for week in WEEKS:
        # What was known at the end of the week says the same of it as everything since.
        then = micros(week.end)
        early = read(
            *(a for a in adverts if a.at < then),
            withdrawals=tuple(w for w in withdrawals if w.at < then),
        )
        assert [p for p in pulses(early, [week])] == [p for p in whole if p.week == week.label]


@settings(max_examples=30, deadline=None)
@given(histories())
def test_lean_and_coded_readings_make_the_same_pulse(
    history: tuple[list[Advert], list[Withdrawal]],
) -> None:
    adverts, withdrawals = history
    full = pulses(read(*adverts, withdrawals=tuple(withdrawals)), WEEKS)
    lean = build_listings(adverts, withdrawals, keep_posts=False)
    assert pulses(lean, WEEKS) == full
    # The ledger's compact rows: parties, lots and prices by code.
    parties = sorted({a.party for a in adverts})
    lots = sorted({a.lot for a in adverts}, key=str)
    prices = sorted({a.price for a in adverts if a.price is not None})
    codes = Codes(
        parties=dict(enumerate(parties)),  # type: ignore[arg-type]
        lots=dict(enumerate(lots)),
        prices=dict(enumerate(prices)),
    )
    rows = [
        (a.id, a.message, a.at, parties.index(a.party), a.chat, lots.index(a.lot), a.variant,
         None if a.price is None else prices.index(a.price), a.offer)
        for a in adverts
    ]  # fmt: skip
    coded_withdrawals = [
        Withdrawal(w.id, w.message, w.at, parties.index(w.party) if w.party in parties else -1,
                   w.chat, reply_to=w.reply_to, gpu=w.gpu)
        for w in withdrawals
    ]  # fmt: skip
    coded = build_listings(rows, coded_withdrawals, codes=codes, keep_posts=False)  # type: ignore[arg-type]
    assert pulses(coded, WEEKS) == full


def test_compute_pulse_reads_posted_offers_the_same_way() -> None:
    offers = [
        PostedOffer(n, Offer(Side.SELL, Deal.RENT, "H100", location="Beijing"), who, who,
                    "telegram", "g1", None, when, Decimal("12.84"), 80, str(n))
        for n, (who, when) in enumerate([("alice", at(2)), ("bob", at(2, 12)), ("carol", at(4))])
    ]  # fmt: skip
    p = compute_pulse(offers, "H100", Deal.RENT, now=at(8), window=timedelta(days=7))
    assert (p.sellers, p.sell_posters, p.sell_messages) == (2, 3, 3)  # bob relays alice's lot
