"""The weekly digest: what a group should know about its market's week, as data.

`build_digest` takes the offers and the matches of some weeks and the window to sum up, and
returns a `Digest`: the overall balance of sellers and buyers, one `Pulse` per active model (the
table), the notable offers (lowest asks, highest bids, largest lots), the matches the desk made,
and each model's median ask over the last weeks (the chart). Words, layout and pictures are the
handlers' job (`handlers/digest_text.py`, `handlers/chart.py`); this module only counts.

It also holds the digest calendar, as pure functions of a moment, a weekly time and a zone:
the scheduled time at or before a moment (`occurrence_at_or_before`), the window a scheduled
digest covers (`window_ending`) and its ISO week label (`week_label`), and back from a label to
its scheduled time (`occurrence_for_week`). A digest is labelled with the ISO week that holds the
middle of its window, so the Monday 09:00 digest is that of the week just ended, a Sunday 20:00
digest that of the week ending, and two weekly digests never share a label.

Counting rules are `market/pulse.py`'s: an offer belongs to the window it was posted in, a party
counts once per side, and prices use each party's latest priced offer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal

from gpudesk.market.book import PostedOffer
from gpudesk.market.listings import Listings, Week, market_parties
from gpudesk.market.listings import pulses as listing_pulses
from gpudesk.market.normalise import Unit, unit_for
from gpudesk.market.offer import Currency, Deal, Side
from gpudesk.market.pulse import (
    WEEK,
    Party,
    Pulse,
    Reading,
    ReadingThresholds,
    compute_market,
    compute_pulse,
    read_market,
)

HISTORY_WEEKS = 8  # the chart's span: two months shows a trend without crowding a phone screen
NOTABLE = 3  # entries per notable list: enough to be worth reading, short enough to read

_THRESHOLDS = ReadingThresholds()  # the desk's defaults (frozen, so sharing it is safe)

Weekly = tuple[int, int, int]  # weekday (0 = Monday), hour, minute: `config.parse_schedule`


@dataclass(frozen=True, slots=True)
class MadeMatch:
    """A match the desk announced: `offer` was posted and `counterparty` was named in reply."""

    offer: PostedOffer
    counterparty: PostedOffer
    matched_at: datetime  # UTC
    gap: Decimal | None  # ask minus bid per unit; None when either side states no price

    @property
    def seller(self) -> PostedOffer:
        return self.offer if self.offer.offer.side is Side.SELL else self.counterparty

    @property
    def buyer(self) -> PostedOffer:
        return self.counterparty if self.offer.offer.side is Side.SELL else self.offer

    @property
    def relative_gap(self) -> Decimal | None:
        """Ask minus bid as a fraction of the ask (-0.1: the bid is 10% above the ask), so
        that a ¥/GPU-hour rental and a ¥/GPU sale compare."""
        ask = self.seller.unit_price
        if self.gap is None or not ask:
            return None
        return self.gap / ask


@dataclass(frozen=True, slots=True)
class Overall:
    """The whole market in one line: distinct parties on each side across every model."""

    sellers: int
    buyers: int
    posts: int
    reading: Reading | None
    lead: Pulse | None  # the busiest model with a week-on-week move of its median ask

    @property
    def ratio(self) -> Decimal | None:
        """The larger side per party of the smaller (5.2 sellers per buyer); None with a side
        empty, where a ratio says nothing."""
        if not self.sellers or not self.buyers:
            return None
        high, low = max(self.sellers, self.buyers), min(self.sellers, self.buyers)
        return (Decimal(high) / Decimal(low)).quantize(Decimal("0.1"))


@dataclass(frozen=True, slots=True)
class WeekPoint:
    """One model over one past window: its median ask and the parties on each side."""

    end: datetime
    median_ask: Decimal | None
    sellers: int
    buyers: int


@dataclass(frozen=True, slots=True)
class History:
    """One (gpu, deal) over the last `HISTORY_WEEKS` windows, oldest first (the chart's line)."""

    gpu: str
    deal: Deal
    unit: Unit
    points: tuple[WeekPoint, ...]


@dataclass(frozen=True, slots=True)
class Digest:
    """One week of one market (every group, or one group's own when its scope says so)."""

    week: str  # ISO week label, "2026-W47"
    start: datetime  # the window is (start, end], UTC
    end: datetime
    currency: Currency
    overall: Overall
    models: tuple[Pulse, ...]  # the table: every active (gpu, deal), busiest first
    lowest_asks: tuple[PostedOffer, ...]  # the cheapest ask of each of the busiest models
    highest_bids: tuple[PostedOffer, ...]  # the highest bid of each of the busiest models
    largest_lots: tuple[PostedOffer, ...]  # the most GPUs, either side, any model
    matches: tuple[MadeMatch, ...]  # the best few made in the window (see `relative_gap`)
    match_count: int  # all the matches made in the window
    history: tuple[History, ...]  # one per row of `models`, same order

    @property
    def quiet(self) -> bool:
        """Nobody posted an offer in the window: there is nothing to send."""
        return not self.models


def build_digest(
    offers: Sequence[PostedOffer],
    *,
    start: datetime,
    end: datetime,
    week: str,
    currency: Currency = Currency.CNY,
    thresholds: ReadingThresholds = _THRESHOLDS,
    matches: Sequence[MadeMatch] = (),
    history_weeks: int = HISTORY_WEEKS,
    notable: int = NOTABLE,
    book: Listings | None = None,
    zone: tzinfo = UTC,
) -> Digest:
    """The digest of `(start, end]`.

    `offers` should reach back `history_weeks` windows before `end` for the chart (and one
    window for the week-on-week move); unit prices must already be in `currency`. `matches`
    outside the window are ignored.

    With `book` (the ledger's listings), the table, the headline and the chart are the pulse of
    the ISO week `week` in `zone` by listings (issue 11): the figures `/price` and `gpudesk
    export --what pulse` give for that week. Without it, `offers` are read the same way.
    """
    window = end - start
    if book is None:
        pulses = compute_market(
            offers, now=end, window=window, currency=currency, thresholds=thresholds
        )
    else:
        iso = Week.parse(week, zone)
        pulses = listing_pulses(book, [iso], currency=currency, thresholds=thresholds)
    current = [o for o in offers if start < o.posted_at <= end]
    latest = _latest_by_lot(current)
    busiest = {(p.gpu, p.deal) for p in pulses[:notable]}
    week_matches = [m for m in matches if start < m.matched_at <= end]
    # The best deals first: priced, the bid furthest above the ask, then the newest.
    best_matches = sorted(
        week_matches,
        key=lambda m: (
            m.relative_gap is None,
            m.relative_gap or 0,
            -m.matched_at.timestamp(),
            m.offer.id,
        ),
    )
    return Digest(
        week=week,
        start=start,
        end=end,
        currency=currency,
        overall=_overall(current, pulses, thresholds)
        if book is None
        else _overall_by_listings(book, iso, pulses, thresholds),
        models=tuple(pulses),
        lowest_asks=_best_per_model(latest, Side.SELL, busiest, pulses),
        highest_bids=_best_per_model(latest, Side.BUY, busiest, pulses),
        largest_lots=tuple(
            sorted(
                (o for o in latest if o.gpus),
                key=lambda o: (-(o.gpus or 0), o.posted_at, o.id),
            )[:notable]
        ),
        matches=tuple(best_matches[:notable]),
        match_count=len(week_matches),
        history=tuple(
            _history(offers, p.gpu, p.deal, end, window, history_weeks, currency, thresholds)
            for p in pulses
        )
        if book is None
        else _history_by_listings(book, iso, pulses, history_weeks, currency, thresholds),
    )


def _overall_by_listings(
    book: Listings, week: Week, pulses: Sequence[Pulse], thresholds: ReadingThresholds
) -> Overall:
    parties = market_parties(book, week.start, week.end)
    return Overall(
        sellers=parties.sellers,
        buyers=parties.buyers,
        posts=parties.posts,
        reading=read_market(parties.sellers, parties.buyers, thresholds),
        lead=next((p for p in pulses if p.wow_ask is not None), None),
    )


def _history_by_listings(
    book: Listings,
    week: Week,
    pulses: Sequence[Pulse],
    weeks: int,
    currency: Currency,
    thresholds: ReadingThresholds,
) -> tuple[History, ...]:
    span = [week.shifted(-back) for back in range(weeks - 1, -1, -1)]
    found = {
        (p.week, p.gpu, p.deal): p
        for p in listing_pulses(book, span, currency=currency, thresholds=thresholds)
    }
    histories = []
    for pulse in pulses:
        points = []
        for past in span:
            seen = found.get((past.label, pulse.gpu, pulse.deal))
            points.append(
                WeekPoint(past.end, None, 0, 0)
                if seen is None
                else WeekPoint(past.end, seen.median_ask, seen.sellers, seen.buyers)
            )
        histories.append(History(pulse.gpu, pulse.deal, unit_for(pulse.deal), tuple(points)))
    return tuple(histories)


def _overall(
    current: Sequence[PostedOffer], pulses: Sequence[Pulse], thresholds: ReadingThresholds
) -> Overall:
    # A party selling H100 and A100 is one seller in the market: count parties, not rows.
    sellers = {o.party for o in current if o.offer.side is Side.SELL}
    buyers = {o.party for o in current if o.offer.side is Side.BUY}
    lead = next((p for p in pulses if p.wow_ask is not None), None)
    return Overall(
        sellers=len(sellers),
        buyers=len(buyers),
        posts=len(current),
        reading=read_market(len(sellers), len(buyers), thresholds),
        lead=lead,
    )


def _latest_by_lot(offers: Iterable[PostedOffer]) -> list[PostedOffer]:
    """Each party's latest offer per (gpu, deal, side): pulse.py's one-voice-per-party rule.

    A seller who cut their price mid-week is quoted at the new price, and one noisy poster
    fills at most one line of a notable list per model and side.
    """
    latest: dict[tuple[Party, str, Deal, Side], PostedOffer] = {}
    for o in sorted(offers, key=lambda o: (o.posted_at, o.id)):
        latest[(o.party, o.offer.gpu, o.offer.deal, o.offer.side)] = o
    return list(latest.values())


def _best_per_model(
    latest: Sequence[PostedOffer],
    side: Side,
    models: set[tuple[str, Deal]],
    order: Sequence[Pulse],
) -> tuple[PostedOffer, ...]:
    """The lowest ask (or highest bid) of each model in `models`, in the table's order.

    Only among each party's latest priced offer, so the price shown is the pulse's best ask
    (or bid) and the poster is who stands behind it now.
    """
    best: dict[tuple[str, Deal], PostedOffer] = {}
    for o in latest:
        key = (o.offer.gpu, o.offer.deal)
        if o.offer.side is not side or key not in models or o.unit_price is None:
            continue
        current = best.get(key)
        if current is None or _better(o, current, side):
            best[key] = o
    ranked = [best[(p.gpu, p.deal)] for p in order if (p.gpu, p.deal) in best]
    return tuple(ranked)


def _better(a: PostedOffer, b: PostedOffer, side: Side) -> bool:
    assert a.unit_price is not None and b.unit_price is not None
    if a.unit_price != b.unit_price:
        return a.unit_price < b.unit_price if side is Side.SELL else a.unit_price > b.unit_price
    return (a.posted_at, a.id) < (b.posted_at, b.id)  # the first to quote it


def _history(
    offers: Sequence[PostedOffer],
    gpu: str,
    deal: Deal,
    end: datetime,
    window: timedelta,
    weeks: int,
    currency: Currency,
    thresholds: ReadingThresholds,
) -> History:
    points = []
    for back in range(weeks - 1, -1, -1):
        week_end = end - back * window
        pulse = compute_pulse(
            offers,
            gpu,
            deal,
            now=week_end,
            window=window,
            currency=currency,
            thresholds=thresholds,
        )
        points.append(WeekPoint(week_end, pulse.median_ask, pulse.sellers, pulse.buyers))
    return History(gpu, deal, unit_for(deal), tuple(points))


# -- the calendar ------------------------------------------------------------------------------


def week_label(start: datetime, end: datetime, zone: tzinfo) -> str:
    """The ISO week (in `zone`) holding the middle of `(start, end]`: "2026-W47"."""
    middle = (start + (end - start) / 2).astimezone(zone)
    year, week, _ = middle.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(label: str) -> tuple[int, int]:
    """ "2026-W47" (or "2026w47") as (2026, 47); ValueError saying the form otherwise."""
    year, sep, week = label.strip().upper().partition("-W")
    if not sep:
        year, sep, week = label.strip().upper().partition("W")
    try:
        date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        raise ValueError(f"week {label!r} must be an ISO week such as 2026-W47") from None
    return int(year), int(week)


def _at(day: date, when: Weekly, zone: tzinfo) -> datetime:
    """The weekly time on `day` in `zone`, as UTC. (A time a DST jump skips reads as fold 0.)"""
    _, hour, minute = when
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


def occurrence_at_or_before(moment: datetime, when: Weekly, zone: tzinfo) -> datetime:
    """The latest scheduled time at or before `moment`, in UTC."""
    local = moment.astimezone(zone)
    day = local.date() - timedelta(days=(local.weekday() - when[0]) % 7)
    at = _at(day, when, zone)
    return at if at <= moment else _at(day - timedelta(days=7), when, zone)


def next_occurrence(moment: datetime, when: Weekly, zone: tzinfo) -> datetime:
    """The first scheduled time strictly after `moment`, in UTC."""
    last = occurrence_at_or_before(moment, when, zone)
    return _at(last.astimezone(zone).date() + timedelta(days=7), when, zone)


def window_ending(at: datetime, when: Weekly, zone: tzinfo) -> tuple[datetime, datetime]:
    """The window of the digest scheduled at `at`: since the scheduled time a week before.

    In a zone with daylight saving the window is then 167 or 169 hours at the change, so that
    consecutive digests tile time with neither gap nor overlap.
    """
    return _at(at.astimezone(zone).date() - WEEK, when, zone), at


def occurrence_for_week(label: str, when: Weekly, zone: tzinfo) -> datetime:
    """The scheduled time whose digest carries `label` (see the module docstring)."""
    year, week = parse_week(label)
    monday = date.fromisocalendar(year, week, 1)
    # The window's middle lies 3.5 days before its end, so the end falls in this ISO week or
    # in the first half of the next one.
    for offset in range(0, 14):
        day = monday + timedelta(days=offset)
        if day.weekday() != when[0]:
            continue
        at = _at(day, when, zone)
        if week_label(*window_ending(at, when, zone), zone) == f"{year}-W{week:02d}":
            return at
    raise AssertionError(f"no scheduled time is labelled {label}")  # pragma: no cover
