"""Market readings: who is selling and buying one GPU, at what prices, over a window of time.

`compute_pulse` sums up one (gpu, deal) over the window ending at `now`: parties on each side,
price quartiles, best ask and bid, the week-on-week move of the median ask, GPUs offered and
wanted, and a one-word `Reading` of the balance. `compute_market` does it for every (gpu, deal)
with activity. Pure functions: offers and `now` are passed in.

Counting rules. A party is counted once per side however often it posts; prices and quantities
use each party's latest offer in the window (its latest priced offer for prices), so one noisy
poster moves a median no more than anyone else. The window is `(now - window, now]`; the previous
window, for `wow_ask`, is the same length just before it.

Percentiles are linear interpolation between closest ranks, as
`statistics.quantiles(data, method="inclusive")`: for sorted x₀…xₙ₋₁ and a fraction q, at
position h = (n - 1)·q the value is x⌊h⌋ + (h - ⌊h⌋)·(x⌊h⌋₊₁ - x⌊h⌋). In exact Decimal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from gpudesk.market.book import PostedOffer
from gpudesk.market.match import looks_alike
from gpudesk.market.normalise import Unit, unit_for
from gpudesk.market.offer import Currency, Deal, Side

WEEK = timedelta(days=7)

Party = tuple[str, str]


class Reading(StrEnum):
    EVERYONE_SELLING = "everyone_selling"
    SELLERS_OUTNUMBER = "sellers_outnumber"
    BALANCED = "balanced"
    BUYERS_OUTNUMBER = "buyers_outnumber"
    EVERYONE_BUYING = "everyone_buying"


@dataclass(frozen=True, slots=True)
class ReadingThresholds:
    """How many times one side must outnumber the other: `strong` for everyone, `lean` for more."""

    strong: Fraction = Fraction(3)
    lean: Fraction = Fraction(3, 2)

    def __post_init__(self) -> None:
        # Below 1 both sides could "outnumber" each other at once and the reading would
        # depend on which side is checked first.
        if not 1 < self.lean <= self.strong:
            raise ValueError(f"need 1 < lean <= strong, got lean={self.lean} strong={self.strong}")


def read_market(
    sellers: int, buyers: int, thresholds: ReadingThresholds = ReadingThresholds()
) -> Reading | None:
    """The balance of parties in one word; None when nobody is in the market."""
    if sellers == 0 and buyers == 0:
        return None
    # Fractions keep the boundaries exact: with lean 3/2, 3 sellers to 2 buyers is "outnumber".
    if sellers >= thresholds.strong * buyers:
        return Reading.EVERYONE_SELLING
    if sellers >= thresholds.lean * buyers:
        return Reading.SELLERS_OUTNUMBER
    if buyers >= thresholds.strong * sellers:
        return Reading.EVERYONE_BUYING
    if buyers >= thresholds.lean * sellers:
        return Reading.BUYERS_OUTNUMBER
    return Reading.BALANCED


@dataclass(frozen=True, slots=True)
class Pulse:
    """One (gpu, deal) over `(window_start, window_end]`; prices per `unit` in `currency`."""

    gpu: str
    deal: Deal
    unit: Unit
    currency: Currency
    window_start: datetime
    window_end: datetime
    sellers: int  # distinct parties
    buyers: int
    sell_offers: int  # posts
    buy_offers: int
    median_ask: Decimal | None
    p25_ask: Decimal | None
    p75_ask: Decimal | None
    median_bid: Decimal | None
    p25_bid: Decimal | None
    p75_bid: Decimal | None
    best_ask: Decimal | None  # lowest
    best_bid: Decimal | None  # highest
    spread: Decimal | None  # best_ask - best_bid
    wow_ask: Decimal | None  # median ask against the previous window, as a fraction: -0.1 is -10%
    qty_offered: int  # GPUs
    qty_wanted: int
    reading: Reading | None
    sellers_excluding_lookalikes: int  # a broker relaying another seller's lot is not counted


def compute_pulse(
    offers: Sequence[PostedOffer],
    gpu: str,
    deal: Deal,
    *,
    now: datetime,
    window: timedelta = WEEK,
    currency: Currency = Currency.CNY,
    thresholds: ReadingThresholds = ReadingThresholds(),
) -> Pulse:
    """The pulse of `gpu` for `deal` over the window ending at `now`.

    `offers` may hold anything (other gpus, older posts): those outside the window only serve
    the previous window's median ask. Unit prices must already be in `currency`.
    """
    start = now - window
    ours = [o for o in offers if o.offer.gpu == gpu and o.offer.deal is deal]
    current = _between(ours, start, now)
    sells = [o for o in current if o.offer.side is Side.SELL]
    buys = [o for o in current if o.offer.side is Side.BUY]
    asks = _latest_prices(sells)
    bids = _latest_prices(buys)
    best_ask = min(asks, default=None)
    best_bid = max(bids, default=None)
    sellers = len(_by_party(sells))
    buyers = len(_by_party(buys))
    median_ask = percentile(asks, Fraction(1, 2))
    previous = _latest_prices(
        [o for o in _between(ours, start - window, start) if o.offer.side is Side.SELL]
    )
    return Pulse(
        gpu=gpu,
        deal=deal,
        unit=unit_for(deal),
        currency=currency,
        window_start=start,
        window_end=now,
        sellers=sellers,
        buyers=buyers,
        sell_offers=len(sells),
        buy_offers=len(buys),
        median_ask=median_ask,
        p25_ask=percentile(asks, Fraction(1, 4)),
        p75_ask=percentile(asks, Fraction(3, 4)),
        median_bid=percentile(bids, Fraction(1, 2)),
        p25_bid=percentile(bids, Fraction(1, 4)),
        p75_bid=percentile(bids, Fraction(3, 4)),
        best_ask=best_ask,
        best_bid=best_bid,
        spread=None if best_ask is None or best_bid is None else best_ask - best_bid,
        wow_ask=_change(percentile(previous, Fraction(1, 2)), median_ask),
        qty_offered=_latest_quantity(sells),
        qty_wanted=_latest_quantity(buys),
        reading=read_market(sellers, buyers, thresholds),
        sellers_excluding_lookalikes=_distinct_lots(sells),
    )


def compute_market(
    offers: Sequence[PostedOffer],
    *,
    now: datetime,
    window: timedelta = WEEK,
    currency: Currency = Currency.CNY,
    thresholds: ReadingThresholds = ReadingThresholds(),
) -> list[Pulse]:
    """A pulse for every (gpu, deal) posted in the window, the busiest (most parties) first."""
    active = {(o.offer.gpu, o.offer.deal) for o in _between(offers, now - window, now)}
    pulses = [
        compute_pulse(
            offers, gpu, deal, now=now, window=window, currency=currency, thresholds=thresholds
        )
        for gpu, deal in active
    ]
    # Ties fall back to posts, then name, so the order never depends on set iteration.
    pulses.sort(
        key=lambda p: (-(p.sellers + p.buyers), -(p.sell_offers + p.buy_offers), p.gpu, p.deal)
    )
    return pulses


def percentile(values: Iterable[Decimal], q: Fraction) -> Decimal | None:
    """The q-th fraction of `values` by linear interpolation (see the module docstring)."""
    xs = sorted(values)
    if not xs:
        return None
    position = (len(xs) - 1) * q
    low = position.numerator // position.denominator
    part = position - low
    if part == 0:
        return xs[low]
    return xs[low] + (xs[low + 1] - xs[low]) * part.numerator / part.denominator


def _between(offers: Iterable[PostedOffer], start: datetime, end: datetime) -> list[PostedOffer]:
    return [o for o in offers if start < o.posted_at <= end]


def _by_party(offers: Iterable[PostedOffer]) -> dict[Party, PostedOffer]:
    """Each party's latest offer (ties on time go to the higher id, the later stored)."""
    latest: dict[Party, PostedOffer] = {}
    for o in sorted(offers, key=lambda o: (o.posted_at, o.id)):
        latest[o.party] = o
    return latest


def _latest_prices(offers: Iterable[PostedOffer]) -> list[Decimal]:
    priced = _by_party(o for o in offers if o.unit_price is not None)
    return [o.unit_price for o in priced.values() if o.unit_price is not None]


def _latest_quantity(offers: Iterable[PostedOffer]) -> int:
    return sum(o.gpus for o in _by_party(offers).values() if o.gpus is not None)


def _change(before: Decimal | None, after: Decimal | None) -> Decimal | None:
    if before is None or after is None or before == 0:
        return None
    return (after - before) / before


def _distinct_lots(sells: Sequence[PostedOffer]) -> int:
    """Sellers, with parties whose posts look alike merged into one (transitively)."""
    group = {o.party: o.party for o in sells}

    def root(party: Party) -> Party:
        while group[party] != party:
            party = group[party]
        return party

    for i, a in enumerate(sells):
        for b in sells[i + 1 :]:
            if looks_alike(a, b):
                group[root(a.party)] = root(b.party)
    return len({root(party) for party in group})
