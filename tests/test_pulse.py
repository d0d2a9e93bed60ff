"""Market readings: the balance word, percentiles and one gpu's pulse (gpudesk.market.pulse)."""

from __future__ import annotations

import ast
import statistics
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gpudesk.market.digest
import gpudesk.market.listings
import gpudesk.market.match
import gpudesk.market.pulse
from gpudesk.market.book import PostedOffer
from gpudesk.market.normalise import Unit, gpu_count, unit_price
from gpudesk.market.offer import Currency, Deal, Offer, PricePer, QuantityUnit, Side
from gpudesk.market.pulse import (
    Pulse,
    Reading,
    ReadingThresholds,
    compute_market,
    compute_pulse,
    percentile,
    read_market,
)
from tests import factories

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def posted(side: str = "sell", *, days_ago: float = 1, **fields: Any) -> PostedOffer:
    """A posted offer (see `tests.factories.posted`), `days_ago` days before NOW."""
    return factories.posted(side, at=NOW - timedelta(days=days_ago), **fields)


def pulse(offers: list[PostedOffer]) -> Pulse:
    """The H100 rent pulse at NOW over the default week."""
    return compute_pulse(offers, "H100", Deal.RENT, now=NOW)


# --- read_market --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sellers", "buyers", "expected"),
    [
        pytest.param(3, 1, Reading.EVERYONE_SELLING, id="three sellers to one buyer: everyone"),
        pytest.param(5, 0, Reading.EVERYONE_SELLING, id="sellers and no buyers: everyone selling"),
        pytest.param(1, 0, Reading.EVERYONE_SELLING, id="one lone seller: everyone selling"),
        pytest.param(5, 2, Reading.SELLERS_OUTNUMBER, id="five to two is short of three times"),
        pytest.param(3, 2, Reading.SELLERS_OUTNUMBER, id="three to two is exactly one and a half"),
        pytest.param(4, 3, Reading.BALANCED, id="four to three is under one and a half"),
        pytest.param(2, 2, Reading.BALANCED, id="equal numbers are balanced"),
        pytest.param(2, 3, Reading.BUYERS_OUTNUMBER, id="two to three: buyers outnumber"),
        pytest.param(1, 3, Reading.EVERYONE_BUYING, id="one seller to three buyers: everyone"),
        pytest.param(0, 4, Reading.EVERYONE_BUYING, id="buyers and no sellers: everyone buying"),
        pytest.param(0, 0, None, id="an empty market has no reading"),
    ],
)
def test_read_market_default_thresholds(
    sellers: int, buyers: int, expected: Reading | None
) -> None:
    assert read_market(sellers, buyers, ReadingThresholds()) == expected


def test_read_market_custom_thresholds() -> None:
    # Twice is "everyone", a quarter more is "outnumber".
    thresholds = ReadingThresholds(strong=Fraction(2), lean=Fraction(5, 4))
    assert read_market(4, 2, thresholds) == Reading.EVERYONE_SELLING
    assert read_market(5, 4, thresholds) == Reading.SELLERS_OUTNUMBER
    assert read_market(6, 5, thresholds) == Reading.BALANCED


@pytest.mark.parametrize(
    ("strong", "lean"),
    [
        pytest.param(Fraction(3), Fraction(1), id="a lean of one would let both sides outnumber"),
        pytest.param(Fraction(2), Fraction(3), id="lean above strong is a mistake"),
    ],
)
def test_thresholds_that_cannot_read_are_refused(strong: Fraction, lean: Fraction) -> None:
    with pytest.raises(ValueError):
        ReadingThresholds(strong=strong, lean=lean)


MIRROR = {
    Reading.EVERYONE_SELLING: Reading.EVERYONE_BUYING,
    Reading.SELLERS_OUTNUMBER: Reading.BUYERS_OUTNUMBER,
    Reading.BALANCED: Reading.BALANCED,
    Reading.BUYERS_OUTNUMBER: Reading.SELLERS_OUTNUMBER,
    Reading.EVERYONE_BUYING: Reading.EVERYONE_SELLING,
    None: None,
}


@st.composite
def thresholds(draw: st.DrawFn) -> ReadingThresholds:
    lean = 1 + draw(st.fractions(min_value=Fraction(1, 20), max_value=3, max_denominator=20))
    strong = lean + draw(st.fractions(min_value=0, max_value=3, max_denominator=20))
    return ReadingThresholds(strong=strong, lean=lean)


@given(s=st.integers(0, 200), b=st.integers(0, 200), t=thresholds())
def test_reading_is_symmetric_under_swapping_sides(s: int, b: int, t: ReadingThresholds) -> None:
    assert MIRROR[read_market(s, b, t)] == read_market(b, s, t)


# --- percentile ---------------------------------------------------------------------------------


def dec(*values: str) -> list[Decimal]:
    return [Decimal(v) for v in values]


@pytest.mark.parametrize(
    ("values", "p25", "median", "p75"),
    [
        pytest.param(dec("7"), "7", "7", "7", id="one value is every percentile"),
        pytest.param(dec("1", "2"), "1.25", "1.5", "1.75", id="two values interpolate"),
        pytest.param(dec("1", "2", "3", "4", "5"), "2", "3", "4", id="five values land on ranks"),
        # p25 at position 0.75: 10 + 0.75·10; p75 at 2.25: 30 + 0.25·10.
        pytest.param(dec("40", "10", "30", "20"), "17.5", "25", "32.5", id="unsorted four values"),
        # p25 at 1.25: 2 + 0.25·1; median at 2.5: 3 + 0.5·97; p75 at 3.75: 100 + 0.75·100.
        pytest.param(
            dec("1", "2", "3", "100", "200", "300"),
            "2.25",
            "51.5",
            "175",
            id="an outlier moves the median only halfway",
        ),
        pytest.param(dec("14.6", "15"), "14.7", "14.8", "14.9", id="decimals stay exact"),
    ],
)
def test_percentile_hand_computed(values: list[Decimal], p25: str, median: str, p75: str) -> None:
    assert percentile(values, Fraction(1, 4)) == Decimal(p25)
    assert percentile(values, Fraction(1, 2)) == Decimal(median)
    assert percentile(values, Fraction(3, 4)) == Decimal(p75)


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], Fraction(1, 2)) is None


@given(st.lists(st.decimals(0, 10_000, places=2), min_size=2, max_size=30))
def test_quartiles_agree_with_statistics_inclusive(values: list[Decimal]) -> None:
    quartiles = [percentile(values, Fraction(k, 4)) for k in (1, 2, 3)]
    assert quartiles == statistics.quantiles(values, n=4, method="inclusive")


# --- compute_pulse ------------------------------------------------------------------------------


def test_prices_and_counts_over_parties() -> None:
    offers = [
        posted(who="s1", price="10", gpus=8),
        posted(who="s2", price="20", gpus=16),
        posted(who="s3", price="30", gpus=None),
        posted(who="s4", price="40", gpus=64),
        posted("buy", who="b1", price="6", gpus=32),
        posted("buy", who="b2", price="8", gpus=None),
        posted("buy", who="b3", price="9", gpus=8),
    ]
    p = pulse(offers)
    assert (p.sellers, p.buyers, p.sell_offers, p.buy_offers) == (4, 3, 4, 3)
    assert [p.p25_ask, p.median_ask, p.p75_ask] == dec("17.5", "25", "32.5")
    assert [p.p25_bid, p.median_bid, p.p75_bid] == dec("7", "8", "8.5")
    assert (p.best_ask, p.best_bid, p.spread) == (Decimal(10), Decimal(9), Decimal(1))
    assert (p.qty_offered, p.qty_wanted) == (88, 40)
    assert p.reading == Reading.BALANCED  # 4 to 3
    assert (p.unit, p.currency) == (Unit.GPU_HOUR, Currency.CNY)
    assert (p.window_start, p.window_end) == (NOW - timedelta(days=7), NOW)


def test_a_party_posting_five_times_counts_once_at_its_latest() -> None:
    noisy = [
        posted(who="spam", price=str(p), gpus=64, days_ago=d)
        for p, d in zip(["50", "40", "30", "20", "12"], [5, 4, 3, 2, 1], strict=True)
    ]
    p = pulse([*noisy, posted(who="quiet", price="10", gpus=8)])
    assert (p.sellers, p.sell_offers) == (2, 5 + 1)
    assert p.median_ask == Decimal(11)  # 10 and spam's latest 12, not its 50
    assert p.qty_offered == 64 + 8
    assert p.reading == Reading.EVERYONE_SELLING


def test_prices_come_from_the_latest_priced_post_quantities_from_the_latest_post() -> None:
    p = pulse(
        [
            posted(who="s", price="10", gpus=8, days_ago=2),
            posted(who="s", price=None, gpus=16, days_ago=1),
        ]
    )
    assert (p.median_ask, p.qty_offered) == (Decimal(10), 16)


def test_a_party_is_in_the_window_while_its_listing_stands_in_it() -> None:
    # The window is (now - 7 days, now]; a listing stands 14 days after its last post, so a
    # post counts from 21 days back: one exactly 21 days old lapsed at the window's open start.
    offers = [
        posted(who="lapsed at the start", price="1", days_ago=21),
        posted(who="standing a second in", price="2", days_ago=21 - 1 / 86400),
        posted(who="a week ago", price="6", days_ago=7),
        posted(who="at now", price="3", days_ago=0),
        posted(who="future", price="4", days_ago=-1),  # not posted yet at now
    ]
    p = pulse(offers)
    # Standing: 2, 6 and 3; sorted 2, 3, 6.
    assert (p.sellers, p.best_ask, p.median_ask) == (3, Decimal(2), Decimal(3))
    # Posts are counted in the window only: "a week ago" is at its open start, "at now" in.
    assert (p.sell_offers, p.sell_posters) == (1, 1)


def test_other_gpus_and_deals_are_left_out() -> None:
    p = pulse(
        [
            posted(who="a", price="10"),
            posted(who="b", gpu="H200", price="20"),
            posted(who="c", deal="sale", price="200000"),
        ]
    )
    assert (p.sellers, p.median_ask) == (1, Decimal(10))


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [
        pytest.param(["20"], ["25"], "0.25", id="a median ask up from 20 to 25 is +25%"),
        pytest.param(["10", "30"], ["18"], "-0.1", id="a median of 20 down to 18 is -10%"),
        pytest.param(["30"], ["10"], "-0.6666666666666666666666666667", id="thirds round"),
        pytest.param([], ["25"], None, id="nothing the week before: no change"),
        pytest.param(["20"], [], None, id="nothing this week: no change"),
    ],
)
def test_week_on_week_change_of_the_median_ask(
    before: list[str], now: list[str], expected: str | None
) -> None:
    # Posted 24 days ago, a listing stands from 24 to 10 days ago: the week before only.
    offers = [posted(who=f"old{i}", price=p, days_ago=24) for i, p in enumerate(before)]
    offers += [posted(who=f"new{i}", price=p, days_ago=1) for i, p in enumerate(now)]
    assert pulse(offers).wow_ask == (None if expected is None else Decimal(expected))


def test_a_listing_standing_in_both_weeks_counts_in_both() -> None:
    # Posted 10 days ago, it stands until 4 days from now: 20 the week before; 20 and 26 now.
    offers = [
        posted(who="still there", price="20", days_ago=10),
        posted(who="new", price="26", days_ago=1),
    ]
    p = pulse(offers)
    assert (p.sellers, p.median_ask, p.sell_offers) == (2, Decimal(23), 1)
    assert p.wow_ask == (Decimal(23) - Decimal(20)) / Decimal(20) == Decimal("0.15")


def test_the_previous_window_is_the_same_length_just_before() -> None:
    # The week before is (now - 14 days, now - 7 days]; listings stand 14 days.
    offers = [
        posted(who="a", price="30", days_ago=2),  # after the week before: this week only
        posted(who="edge", price="20", days_ago=7),  # at its closed end: both weeks
        posted(who="old", price="10", days_ago=28 - 1 / 86400),  # lapses a second into it
        posted(who="gone", price="99", days_ago=28),  # lapsed at its open start: neither
    ]
    # The week before: 10 and 20, median 15; this week: 20 and 30, median 25.
    assert pulse(offers).wow_ask == (Decimal(25) - Decimal(15)) / Decimal(15)


@pytest.mark.parametrize(
    ("relays", "posters", "sellers"),
    [
        pytest.param(
            [("broker", "Beijing", "100", 3)], 2, 1, id="a broker relaying a lot is one seller"
        ),
        pytest.param(
            [("broker", "Beijing", "100", 3), ("broker2", "Beijing", "100", 26)],
            3,
            1,
            id="a relay of a relay a day later is still one seller",
        ),
        pytest.param(
            [("broker", "Shanghai", "100", 3)], 2, 2, id="the same lot in another place stays two"
        ),
        pytest.param(
            [("broker", "Beijing", "102", 3)], 2, 2, id="a 2% markup is another seller's lot"
        ),
        pytest.param(
            [("broker", "Beijing", "100", 30)], 2, 2, id="more than a day apart stays two"
        ),
    ],
)
def test_a_brokers_repost_is_never_a_party_of_its_own(
    relays: list[tuple[str, str, str, float]], posters: int, sellers: int
) -> None:
    # Same GPU, side, deal, 64 GPUs and place, within 1%, within 24 hours of an advertisement
    # of the lot (the owner's, or a broker's): a repost. The raw figures still see its post.
    owner = posted(who="owner", price="100", gpus=64, location="Beijing", days_ago=4)
    others = [
        posted(who=w, price=p, gpus=64, location=place, days_ago=4 - h / 24)
        for w, place, p, h in relays
    ]
    p = pulse([owner, *others])
    assert (p.sellers, p.sell_posters, p.sell_offers) == (sellers, posters, 1 + len(relays))


def test_usd_offers_are_compared_in_the_desks_currency() -> None:
    usd_cny = Decimal("7.3")
    dollars = Offer(
        Side.SELL, Deal.RENT, "H100", price=Decimal(2), currency=Currency.USD,
        price_per=PricePer.GPU_HOUR, quantity=64, quantity_unit=QuantityUnit.GPU,
    )  # fmt: skip
    yuan = Offer(
        Side.SELL, Deal.RENT, "H100", price=Decimal(87600), currency=Currency.CNY,
        price_per=PricePer.SERVER_MONTH, quantity=2, quantity_unit=QuantityUnit.SERVER,
    )  # fmt: skip
    offers = [
        PostedOffer(
            id=n,
            offer=offer,
            poster_id=who,
            poster_name=who,
            platform="telegram",
            chat_id="chat",
            chat_title=None,
            posted_at=NOW - timedelta(days=1),
            unit_price=unit_price(offer, Currency.CNY, usd_cny),
            gpus=gpu_count(offer),
            message_id=str(n),
        )
        for n, (who, offer) in enumerate([("us", dollars), ("cn", yuan)])
    ]
    p = compute_pulse(offers, "H100", Deal.RENT, now=NOW, currency=Currency.CNY)
    # $2/GPU-hour at 7.3 is ¥14.6; ¥87,600 a month for 8 GPUs is 87600 / 730 / 8 = ¥15.
    assert [p.best_ask, p.median_ask, p.p75_ask] == dec("14.6", "14.8", "14.9")
    assert p.qty_offered == 64 + 16


def test_an_empty_market_reads_nothing() -> None:
    p = compute_pulse([], "H100", Deal.SALE, now=NOW)
    assert (
        p.sellers,
        p.buyers,
        p.median_ask,
        p.spread,
        p.wow_ask,
        p.reading,
    ) == (0, 0, None, None, None, None)
    assert p.unit == Unit.GPU


# --- compute_market -----------------------------------------------------------------------------


def test_market_lists_active_pairs_busiest_first() -> None:
    offers = [
        posted(who="a", gpu="A100", deal="sale", price="60000"),
        posted("buy", who="b", gpu="H200"),
        posted(who="c", gpu="H200"),
        posted(who="d", gpu="H200"),
        posted(who="e", gpu="H100"),
        posted(who="e", gpu="H100", days_ago=2),
        posted(who="f", gpu="B200", days_ago=9),  # posted last week, standing still
        posted(who="g", gpu="A800", days_ago=22),  # lapsed a day before the window
    ]
    market = compute_market(offers, now=NOW)
    # H200 has three parties; A100 sale, H100 rent and B200 rent one each: H100 with two posts
    # in the window first, then A100 with one, then B200 with none.
    assert [(p.gpu, p.deal) for p in market] == [
        ("H200", Deal.RENT),
        ("H100", Deal.RENT),
        ("A100", Deal.SALE),
        ("B200", Deal.RENT),
    ]
    assert market[0].reading == Reading.SELLERS_OUTNUMBER  # 2 to 1: 2 < 3·1, 2·2 >= 3·1
    assert [(p.sellers, p.sell_offers) for p in market[1:]] == [(1, 2), (1, 1), (1, 0)]


# --- architecture -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [gpudesk.market.match, gpudesk.market.pulse, gpudesk.market.listings, gpudesk.market.digest],
)
def test_the_core_imports_only_the_standard_library_and_the_market(module: ModuleType) -> None:
    assert module.__file__ is not None
    source = Path(module.__file__).read_text()
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    for name in imported:
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or name.startswith("gpudesk.market."), name
    assert ".now(" not in source and "time.time(" not in source
