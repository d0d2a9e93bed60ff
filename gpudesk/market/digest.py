"""The weekly digest: what a group should know about its market's week, as data.

`build_digest` takes the listings (`market/listings.py`), the offers and the matches of some
weeks and the window to sum up, and returns a `Digest`: the overall balance of sellers and
buyers, one `Pulse` per active model (the table), the notable offers (lowest asks, highest bids,
largest lots), the matches the desk made, and each model's median ask over the last weeks (the
chart). Words, layout and pictures are the handlers' job (`handlers/digest_text.py`,
`handlers/chart.py`); this module only counts.

It also holds the digest calendar, as pure functions of a moment, a weekly time and a zone:
the scheduled time at or before a moment (`occurrence_at_or_before`), the window a scheduled
digest covers (`window_ending`) and its ISO week label (`week_label`), and back from a label to
its scheduled time (`occurrence_for_week`). A digest is labelled with the ISO week that holds the
middle of its window, so the Monday 09:00 digest is that of the week just ended, a Sunday 20:00
digest that of the week ending, and two weekly digests never share a label.

Every figure is the pulse of the ISO week the digest is labelled with, counted by listings (issue
11, README (pulse)): a party is in the week when one of its listings stands at any moment of it,
it counts once per side of a model, at its latest own price in force. The notable offers are
listings standing in that week too, so each line traces to a listing `explain` shows: a lowest
ask (highest bid) is its party's counted price, the pulse's best ask (bid); a largest lot is the
listing whose quantity the pulse counted for its party. A seller posting last week and standing
still is there; one whose listing lapsed or was withdrawn is not.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal

from gpudesk.market.book import PostedOffer
from gpudesk.market.listings import (
    Listing,
    Listings,
    Lot,
    Standing,
    Week,
    adverts_from_posts,
    build_listings,
    market_parties,
    micros,
    standing_in,
)
from gpudesk.market.listings import pulses as listing_pulses
from gpudesk.market.match import same_price
from gpudesk.market.normalise import Unit, unit_for
from gpudesk.market.offer import Currency, Deal, Offer, QuantityUnit, Side
from gpudesk.market.pulse import (
    DEFAULT_LIFETIME,
    WEEK,
    Party,
    Pulse,
    Reading,
    ReadingThresholds,
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
class Notable:
    """One listing standing in the digest's week, as a notable list quotes it.

    `price` is its own price in force that week: the last its party stated for it before the
    week's end (or before it ended). Among the lowest asks and highest bids it is also its
    party's price in the week, the one the pulse counted. `post` is the offer its party posted
    with that price (for a listing with no price, its latest): its words, the model and quantity
    as stated, and the poster's name. None when that post is not among the offers read (older
    than the chart's span); the listing then speaks for itself.
    """

    listing: Listing  # what `explain` lists: its party, lot and posts
    price: Decimal | None  # per GPU-hour (rent) or per GPU (sale), in the digest's currency
    post: PostedOffer | None

    @property
    def offer(self) -> Offer:
        """The offer as its party stated it, else as its listing knows it (in GPUs)."""
        if self.post is not None:
            return self.post.offer
        lot = self.listing.lot
        return Offer(
            side=lot.side,
            deal=lot.deal,
            gpu=lot.gpu,
            variant=self.listing.variant,
            quantity=lot.gpus,
            quantity_unit=None if lot.gpus is None else QuantityUnit.GPU,
            location=lot.place,
        )

    @property
    def name(self) -> str:
        """Its party's name as it posted, else its poster id."""
        if self.post is not None and self.post.poster_name:
            return self.post.poster_name
        return self.listing.party[1]

    @property
    def gpus(self) -> int | None:
        return self.listing.lot.gpus


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
    """One model over one past week: its median ask and the parties on each side."""

    end: datetime
    median_ask: Decimal | None
    sellers: int
    buyers: int


@dataclass(frozen=True, slots=True)
class History:
    """One (gpu, deal) over the last `HISTORY_WEEKS` weeks, oldest first (the chart's line)."""

    gpu: str
    deal: Deal
    unit: Unit
    points: tuple[WeekPoint, ...]


@dataclass(frozen=True, slots=True)
class Digest:
    """One week of one market (every group, or one group's own when its scope says so)."""

    week: str  # ISO week label, "2026-W47": the week the figures are the pulse of
    start: datetime  # the window the digest was sent for is (start, end], UTC: its matches
    end: datetime
    currency: Currency
    overall: Overall
    models: tuple[Pulse, ...]  # the table: every active (gpu, deal), busiest first
    lowest_asks: tuple[Notable, ...]  # the cheapest ask of each of the busiest models
    highest_bids: tuple[Notable, ...]  # the highest bid of each of the busiest models
    largest_lots: tuple[Notable, ...]  # the most GPUs, either side, any model
    matches: tuple[MadeMatch, ...]  # the best few made in the window (see `relative_gap`)
    match_count: int  # all the matches made in the window
    history: tuple[History, ...]  # one per row of `models`, same order

    @property
    def quiet(self) -> bool:
        """Nobody stood or posted in the week: there is nothing to send."""
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
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> Digest:
    """The digest of the ISO week `week` in `zone`, sent for the window `(start, end]`.

    The table, the headline, the chart and the notable offers are read from the listings in
    `book` (the ledger's, up to `end`): the pulse `/price`, `explain` and `gpudesk export --what
    pulse` give for that week, and the listings behind it. Without `book`, the listings are read
    from `offers` posted up to `end`, one advertisement each, standing `lifetime` after their
    last. `offers` give the notable listings their words; they should reach back
    `history_weeks` weeks. Unit prices must already be in `currency`. `matches` made outside
    the window are left out.
    """
    if book is None:
        seen = (o for o in offers if o.posted_at <= end)
        book = build_listings(adverts_from_posts(seen), lifetime=lifetime)
    iso = Week.parse(week, zone)
    pulses = listing_pulses(book, [iso], currency=currency, thresholds=thresholds)
    # The listings behind each row of the table: what the notable lists quote.
    standing = {(p.gpu, p.deal): standing_in(book, p.gpu, p.deal, iso) for p in pulses}
    posts = _Posts(offers)
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
        overall=_overall(book, iso, pulses, thresholds),
        models=tuple(pulses),
        lowest_asks=_best_per_model(pulses[:notable], standing, Side.SELL, posts, iso),
        highest_bids=_best_per_model(pulses[:notable], standing, Side.BUY, posts, iso),
        largest_lots=_largest_lots(standing, posts, iso, notable),
        matches=tuple(best_matches[:notable]),
        match_count=len(week_matches),
        history=_history(book, iso, pulses, history_weeks, currency, thresholds),
    )


def _overall(
    book: Listings, week: Week, pulses: Sequence[Pulse], thresholds: ReadingThresholds
) -> Overall:
    # A party selling H100 and A100 is one seller in the market: count parties, not rows.
    parties = market_parties(book, week.start, week.end)
    return Overall(
        sellers=parties.sellers,
        buyers=parties.buyers,
        posts=parties.posts,
        reading=read_market(parties.sellers, parties.buyers, thresholds),
        lead=next((p for p in pulses if p.wow_ask is not None), None),
    )


def _best_per_model(
    models: Sequence[Pulse],
    standing: Mapping[tuple[str, Deal], Sequence[Standing]],
    side: Side,
    posts: _Posts,
    week: Week,
) -> tuple[Notable, ...]:
    """The lowest ask (or highest bid) of each of `models`, in the table's order.

    Only among the listings whose price is their party's price in the week (one per party), so
    the price shown is the pulse's best ask (or bid), quoted from the listing it was stated on.
    Between equal prices, the one listed first.
    """
    sign = 1 if side is Side.SELL else -1
    found = []
    for pulse in models:
        priced = [
            s
            for s in standing[(pulse.gpu, pulse.deal)]
            if s.listing.lot.side is side and s.counted_price and s.price is not None
        ]
        if priced:
            best = min(
                priced, key=lambda s: (sign * (s.price or 0), s.listing.first_at, s.listing.id)
            )
            found.append(posts.notable(best, week))
    return tuple(found)


def _largest_lots(
    standing: Mapping[tuple[str, Deal], Sequence[Standing]],
    posts: _Posts,
    week: Week,
    count: int,
) -> tuple[Notable, ...]:
    """The most GPUs, either side, any model: of each party on each side of a model, the
    listing the pulse took its quantity from (the one it advertised last), at its own price.
    Between equal sizes, the one listed first."""
    lots = [
        s for found in standing.values() for s in found if s.counted_quantity and s.listing.lot.gpus
    ]
    lots.sort(key=lambda s: (-(s.listing.lot.gpus or 0), s.listing.first_at, s.listing.id))
    return tuple(posts.notable(s, week) for s in lots[:count])


class _Posts:
    """The offers read, by party and lot: the post behind a notable listing's price."""

    def __init__(self, offers: Iterable[PostedOffer]):
        self.by_lot: dict[tuple[Party, Lot], list[PostedOffer]] = {}
        for o in sorted(offers, key=lambda o: (o.posted_at, o.id)):
            lot = Lot(o.offer.side, o.offer.deal, o.offer.gpu, o.gpus, o.offer.location)
            self.by_lot.setdefault((o.party, lot), []).append(o)

    def notable(self, standing: Standing, week: Week) -> Notable:
        """A standing listing with the post that stated its price in the week: its party's
        latest offer of the lot at that price (a repost at the price refreshes the offer that
        first stated it), posted at or before that time."""
        listing = standing.listing
        until = min(micros(week.end), listing.ends_at)
        stated = listing.price_before(until)
        if stated is None:  # no price: its latest own post
            times = listing.own_times
            at = times[max(0, bisect_left(times, until) - 1)]
        else:
            at = stated[0]
        post = None
        for candidate in reversed(self.by_lot.get((listing.party, listing.lot), ())):
            if micros(candidate.posted_at) <= at and same_price(
                candidate.unit_price, standing.price
            ):
                post = candidate
                break
        return Notable(listing, standing.price, post)


def _history(
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


# -- the calendar ------------------------------------------------------------------------------


def week_label(start: datetime, end: datetime, zone: tzinfo) -> str:
    """The ISO week (in `zone`) holding the middle of `(start, end]`: "2026-W47".

    The middle is taken on the local clock: a window across a daylight-saving change is an
    hour shorter or longer in UTC, and its UTC middle could fall on the next window's week."""
    first = start.astimezone(zone).replace(tzinfo=None)
    last = end.astimezone(zone).replace(tzinfo=None)
    year, week, _ = (first + (last - first) / 2).isocalendar()
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
