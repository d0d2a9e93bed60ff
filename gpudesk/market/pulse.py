"""Market readings: the balance word, percentiles, and the `Pulse` record every reading fills.

`Pulse` sums up one (gpu, deal) over a window: parties on each side, price quartiles, best ask
and bid, the move of the median ask from the window before, GPUs offered and wanted, the raw
posts and posters, and a one-word `Reading` of the balance. The counting itself is
`market/listings.py` (issue 11): parties are counted by their listings, not their messages,
with reposts, cross-posts and brokers' reposts folded in and withdrawals applied. This module
keeps the pieces it uses: `read_market`, `percentile`, and `compute_pulse`/`compute_market`,
which read a plain list of posted offers the same way.

Percentiles are linear interpolation between closest ranks, as
`statistics.quantiles(data, method="inclusive")`: for sorted x₀…xₙ₋₁ and a fraction q, at
position h = (n - 1)·q the value is x⌊h⌋ + (h - ⌊h⌋)·(x⌊h⌋₊₁ - x⌊h⌋). In exact Decimal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple

from gpudesk.market.book import PostedOffer
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


class Quotes(NamedTuple):
    """One side's prices in a pulse: the median, the quartiles and the best."""

    median: Decimal
    p25: Decimal | None
    p75: Decimal | None
    best: Decimal | None


@dataclass(frozen=True, slots=True)
class Pulse:
    """One (gpu, deal) over a window; prices per `unit` in `currency`.

    A week is `[window_start, window_end)`; `compute_pulse`'s window is `(now - window, now]`.

    Parties are counted by their listings (`market/listings.py`); the raw figures beside them
    (`sell_offers`, `sell_posters`, ...) count posts and posters in the window, brokers too.
    """

    gpu: str
    deal: Deal
    unit: Unit
    currency: Currency
    window_start: datetime
    window_end: datetime
    sellers: int  # distinct parties with a listing standing in the window
    buyers: int
    sell_offers: int  # posts (messages) advertising the side in the window, reposts included
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
    wow_ask: Decimal | None  # median ask against the window before, as a fraction: -0.1 is -10%
    qty_offered: int  # GPUs: each seller's latest listing
    qty_wanted: int
    reading: Reading | None
    sell_posters: int = 0  # distinct posters of those posts, brokers included
    buy_posters: int = 0
    week: str | None = None  # the ISO week label, when the window is one

    def quotes(self, side: Side) -> Quotes | None:
        """The asks (`Side.SELL`) or bids (`Side.BUY`); None when that side has no price."""
        if side is Side.SELL:
            if self.median_ask is None:
                return None
            return Quotes(self.median_ask, self.p25_ask, self.p75_ask, self.best_ask)
        if self.median_bid is None:
            return None
        return Quotes(self.median_bid, self.p25_bid, self.p75_bid, self.best_bid)

    @property
    def sell_messages(self) -> int:
        return self.sell_offers

    @property
    def buy_messages(self) -> int:
        return self.buy_offers


# A listing stands this long after its last advertisement unless the caller says otherwise
# (`[desk] offer_days`).
DEFAULT_LIFETIME = timedelta(days=14)
_TICK = timedelta(microseconds=1)


def compute_pulse(
    offers: Sequence[PostedOffer],
    gpu: str,
    deal: Deal,
    *,
    now: datetime,
    window: timedelta = WEEK,
    currency: Currency = Currency.CNY,
    thresholds: ReadingThresholds = ReadingThresholds(),
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> Pulse:
    """The pulse of `gpu` for `deal` over the window ending at `now`, `(now - window, now]`.

    Each posted offer is read as one advertisement (no withdrawals) and counted the listing
    way (`market/listings.py`); offers after `now` are not seen. Unit prices must already be
    in `currency`.
    """
    found = _windows(offers, now, window, currency, thresholds, lifetime, gpu, deal)
    if (gpu, deal) in found:
        return found[(gpu, deal)]
    return _empty(gpu, deal, now, window, currency)


def compute_market(
    offers: Sequence[PostedOffer],
    *,
    now: datetime,
    window: timedelta = WEEK,
    currency: Currency = Currency.CNY,
    thresholds: ReadingThresholds = ReadingThresholds(),
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> list[Pulse]:
    """A pulse for every (gpu, deal) with anyone active or posting in the window, the busiest
    (most parties, then most posts) first."""
    pulses = list(_windows(offers, now, window, currency, thresholds, lifetime).values())
    # Ties fall back to posts, then name, so the order never depends on dict order.
    pulses.sort(
        key=lambda p: (-(p.sellers + p.buyers), -(p.sell_offers + p.buy_offers), p.gpu, p.deal)
    )
    return pulses


def _windows(
    offers: Sequence[PostedOffer],
    now: datetime,
    window: timedelta,
    currency: Currency,
    thresholds: ReadingThresholds,
    lifetime: timedelta,
    gpu: str | None = None,
    deal: Deal | None = None,
) -> dict[tuple[str, Deal], Pulse]:
    # Imported here: listings builds on this module's Pulse, percentile and read_market.
    from gpudesk.market.listings import adverts_from_posts, build_listings, window_pulses

    seen = [o for o in offers if o.posted_at <= now]
    book = build_listings(adverts_from_posts(seen), lifetime=lifetime)
    # The engine's windows are [start, end): a tick on turns (now - window, now] into one.
    end = now + _TICK
    bounds = [end - 2 * window, end - window, end]
    rows = window_pulses(book, bounds, currency=currency, thresholds=thresholds, gpu=gpu, deal=deal)
    return {
        (g, d): replace(pulse, window_start=now - window, window_end=now)
        for (index, g, d), pulse in rows.items()
        if index == 1
    }


def _empty(gpu: str, deal: Deal, now: datetime, window: timedelta, currency: Currency) -> Pulse:
    return Pulse(
        gpu=gpu,
        deal=deal,
        unit=unit_for(deal),
        currency=currency,
        window_start=now - window,
        window_end=now,
        sellers=0,
        buyers=0,
        sell_offers=0,
        buy_offers=0,
        median_ask=None,
        p25_ask=None,
        p75_ask=None,
        median_bid=None,
        p25_bid=None,
        p75_bid=None,
        best_ask=None,
        best_bid=None,
        spread=None,
        wow_ask=None,
        qty_offered=0,
        qty_wanted=0,
        reading=None,
    )


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
