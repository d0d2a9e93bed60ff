"""Market truth: listings, the parties behind the posts, and the weekly pulse they make.

A busy group repeats itself: sellers repost, post again in a second group, brokers relay other
people's stock in their own words, prices are cut, deals end with "已出". This module turns the
advertisements (every offer read from every post) and the withdrawals into **listings**, one
party's standing offer each, and counts those. It is the desk's one pulse computation: `/price`,
`/market`, the weekly digest and `gpudesk export --what pulse` all read `pulses()`.

The method (docs/pulse.md states it for readers; this is the implementation):

- A **listing** is one party's standing offer: side, deal, GPU, quantity in GPUs, place. A
  party is (platform, poster id). Variant and memory are not part of it: a reworded repost
  often drops "SXM".
- Advertisements are read in time order. One from party P for a listing P has open is P's
  own: a **repost** (same price, a group it was posted in before), a **cross-post** (same
  price, a new group) or a **price change** (another price; it holds from that post on).
  "Same price" is `match.same_price`: within 1%.
- Otherwise, an advertisement from another poster with the same GPU, side, deal, quantity in
  GPUs and place (both stated), a variant that does not conflict, and a unit price within 1%,
  within 24 hours of an advertisement of a listing, is a **broker repost** of it: it refreshes
  the listing and is never a party. Whoever posted the lot first is its party.
- Otherwise it is the **original** advertisement of a new listing.
- A **withdrawal** closes, at its time: the listings of the post it replies to, when said by
  their party or by the poster of that post; else the poster's open listings of the model it
  names (and of the deal, side, place and size when it names them); else, for a broker, the
  open listings it relayed whose model, deal, place and size the note names, all four.
  `/cancel` and `/filled` close the listing their book offer advertised.
- A listing **stands** from its first advertisement until `lifetime` (`offer_days`) after its
  last, or until its withdrawal if earlier: [first, end). Times only, never "now", so a week
  reads the same the day after and a year later.
- In a window [start, end) a party is **active** on a side of (GPU, deal) when one of its
  listings stands at any moment of it; it counts once. Its **price** is its latest own stated
  price in force (the last before the window's end, over its standing listings), its
  **quantity** that of the listing it advertised last. Medians, quartiles (`pulse.percentile`),
  best ask and bid run over the active parties that state a price; the reading is
  `pulse.read_market` over the party counts.
- The raw figures beside them count what a message-counting desk sees in the window: posts
  (messages) and distinct posters per side, brokers included.

Pure: no I/O, no clock. Prices must already be in the desk's currency (`normalise`).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from operator import itemgetter
from typing import NamedTuple

from gpudesk.market.book import PostedOffer
from gpudesk.market.match import LOOKALIKE_WINDOW, same_price
from gpudesk.market.normalise import unit_for
from gpudesk.market.offer import Currency, Deal, Side
from gpudesk.market.pulse import Pulse, ReadingThresholds, percentile, read_market

Party = tuple[str, str]  # (platform, poster id)
Chat = tuple[str, str]  # (platform, chat id)

DEFAULT_THRESHOLDS = ReadingThresholds()  # the 3 and 3/2 (frozen: safe to share)

# A broker relays a post within the day (the same window `match.looks_alike` uses).
BROKER_WINDOW = LOOKALIKE_WINDOW


class Role(StrEnum):
    """What one advertisement was to its listing."""

    ORIGINAL = "original"
    REPOST = "repost"
    CROSS_POST = "cross_post"
    PRICE_CHANGE = "price_change"
    BROKER_REPOST = "broker_repost"


class Closing(StrEnum):
    """How a withdrawal came: said in a message, or a command on a book offer."""

    SAID = "said"
    CANCEL = "cancel"
    FILLED = "filled"


class Advert(NamedTuple):
    """One offer read from one post: the engine's input (a tuple, since there are millions)."""

    id: int  # the ledger's advert row: orders posts made at the same instant
    message: int  # the ledger's message row; one message may advertise several listings
    at: datetime  # aware UTC
    party: Party
    chat: Chat
    side: Side
    deal: Deal
    gpu: str
    variant: str | None
    gpus: int | None  # quantity in GPUs
    place: str | None
    price: Decimal | None  # per GPU-hour (rent) or per GPU (sale), in the desk's currency
    offer: int | None = None  # the book offer it was stored as or refreshed (for /cancel)


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A message that ends a deal, or `/cancel` and `/filled`; what it names may be None."""

    id: int
    message: int | None
    at: datetime
    party: Party
    chat: Chat
    kind: Closing = Closing.SAID
    reply_to: int | None = None  # the message (the ledger's row) it answers
    gpu: str | None = None
    deal: Deal | None = None
    side: Side | None = None
    place: str | None = None
    gpus: int | None = None
    offer: int | None = None  # the book offer `/cancel` or `/filled` named

    @property
    def names_the_lot(self) -> bool:
        """Model, deal, place and size all named: enough for a broker's note to close."""
        return None not in (self.gpu, self.deal, self.place, self.gpus)


@dataclass(slots=True)
class Listing:
    """One party's standing offer and the advertisements that made it known."""

    id: int  # its original advertisement's id
    party: Party
    side: Side
    deal: Deal
    gpu: str
    gpus: int | None
    place: str | None
    first_at: datetime
    last_at: datetime  # its latest advertisement, own or a broker's
    ends_at: datetime  # first moment it no longer stands
    adverts: list[tuple[Advert, Role]] = field(default_factory=list)
    closed_by: Withdrawal | None = None
    # Its own advertisements in time order, for "the price in force" at any moment.
    own_times: list[datetime] = field(default_factory=list)
    own_prices: list[Decimal | None] = field(default_factory=list)

    @property
    def key(self) -> tuple[Side, Deal, str, int | None, str | None]:
        return (self.side, self.deal, self.gpu, self.gpus, self.place)

    def stands_at(self, moment: datetime) -> bool:
        return self.first_at <= moment < self.ends_at

    def stands_in(self, start: datetime, end: datetime) -> bool:
        """Standing at any moment of [start, end)."""
        return self.first_at < end and self.ends_at > start

    def own_before(self, moment: datetime) -> int:
        """Index of its last own advertisement before `moment` (-1: none)."""
        return bisect.bisect_left(self.own_times, moment) - 1

    def price_before(self, moment: datetime) -> tuple[datetime, Decimal] | None:
        """Its latest own stated price before `moment`, and when it was stated."""
        index = self.own_before(moment)
        while index >= 0:
            price = self.own_prices[index]
            if price is not None:
                return self.own_times[index], price
            index -= 1
        return None


@dataclass(slots=True)
class Listings:
    """Every listing read from a history, in order of first advertisement."""

    listings: list[Listing]
    lifetime: timedelta
    withdrawals: list[Withdrawal]

    def of(self, gpu: str | None = None, deal: Deal | None = None) -> Iterator[Listing]:
        for listing in self.listings:
            if (gpu is None or listing.gpu == gpu) and (deal is None or listing.deal is deal):
                yield listing

    def closed_by(self, withdrawal_id: int) -> list[Listing]:
        """The listings a withdrawal closed (none when it came late or named nothing open)."""
        return [
            listing
            for listing in self.listings
            if listing.closed_by is not None and listing.closed_by.id == withdrawal_id
        ]


# -- building listings -------------------------------------------------------------------------


def build_listings(
    adverts: Iterable[Advert],
    withdrawals: Iterable[Withdrawal] = (),
    *,
    lifetime: timedelta = timedelta(days=14),
) -> Listings:
    """Read adverts and withdrawals in time order into listings (see the module docstring)."""
    withdrawals = sorted(withdrawals, key=lambda w: (w.at, w.message or 0, w.id))
    # (at, message, id): posts in time order, a message's offers in the order they were read.
    adverts = sorted(adverts, key=itemgetter(2, 1, 0))
    return _Builder(lifetime, withdrawals).run(adverts)


class _Builder:
    """One pass over the history; the state is what is open now and what was said lately."""

    def __init__(self, lifetime: timedelta, withdrawals: list[Withdrawal]):
        self.lifetime = lifetime
        self.withdrawals = withdrawals
        self.listings: list[Listing] = []
        # party's latest listing per key: (party, side, deal, gpu, gpus, place)
        self.own: dict[tuple[object, ...], Listing] = {}
        # advertisements of the last 24 hours per lot key, for broker reposts
        self.recent: dict[tuple[object, ...], deque[tuple[Advert, Listing]]] = {}
        self.by_party: dict[Party, list[Listing]] = {}
        self.relayed: dict[Party, list[Listing]] = {}
        # Only the posts and book offers some withdrawal points at are indexed.
        self.wanted_posts = {w.reply_to for w in withdrawals if w.reply_to is not None}
        self.wanted_offers = {w.offer for w in withdrawals if w.offer is not None}
        self.by_post: dict[int, list[tuple[Advert, Listing]]] = {}
        self.by_offer: dict[int, list[Listing]] = {}

    def run(self, adverts: list[Advert]) -> Listings:
        pending = self.withdrawals
        next_withdrawal = 0
        for advert in adverts:
            while next_withdrawal < len(pending) and _before(pending[next_withdrawal], advert):
                self.withdraw(pending[next_withdrawal])
                next_withdrawal += 1
            self.advertise(advert)
        for withdrawal in pending[next_withdrawal:]:
            self.withdraw(withdrawal)
        return Listings(self.listings, self.lifetime, pending)

    # -- advertisements --------------------------------------------------------------------

    def advertise(self, advert: Advert) -> None:
        at = advert.at
        lot = (advert.side, advert.deal, advert.gpu, advert.gpus, advert.place)
        mine = self.own.get((advert.party, *lot))
        if mine is not None and mine.stands_at(at):
            self.attach_own(mine, advert)
        else:
            relayed = self.broker_match(advert, lot) if _relayable(advert) else None
            if relayed is not None:
                self.attach_broker(relayed, advert)
                mine = relayed
            else:
                mine = self.open_listing(advert)
                self.own[(advert.party, *lot)] = mine
        if _relayable(advert):
            self.recent.setdefault(lot, deque()).append((advert, mine))
        if advert.message in self.wanted_posts:
            self.by_post.setdefault(advert.message, []).append((advert, mine))

    def open_listing(self, advert: Advert) -> Listing:
        listing = Listing(
            id=advert.id,
            party=advert.party,
            side=advert.side,
            deal=advert.deal,
            gpu=advert.gpu,
            gpus=advert.gpus,
            place=advert.place,
            first_at=advert.at,
            last_at=advert.at,
            ends_at=advert.at + self.lifetime,
        )
        self.listings.append(listing)
        self.by_party.setdefault(advert.party, []).append(listing)
        self.note_own(listing, advert, Role.ORIGINAL)
        return listing

    def attach_own(self, listing: Listing, advert: Advert) -> None:
        price = listing.price_before(advert.at + _TICK)
        if advert.price is not None and (price is None or not same_price(advert.price, price[1])):
            role = Role.PRICE_CHANGE
        elif any(a.chat == advert.chat for a, r in listing.adverts if r is not Role.BROKER_REPOST):
            role = Role.REPOST
        else:
            role = Role.CROSS_POST
        self.refresh(listing, advert.at)
        self.note_own(listing, advert, role)

    def note_own(self, listing: Listing, advert: Advert, role: Role) -> None:
        listing.adverts.append((advert, role))
        listing.own_times.append(advert.at)
        listing.own_prices.append(advert.price)
        if advert.offer is not None and advert.offer in self.wanted_offers:
            self.by_offer.setdefault(advert.offer, []).append(listing)

    def broker_match(self, advert: Advert, lot: tuple[object, ...]) -> Listing | None:
        """The listing this advert relays: the latest look-alike from another party within
        24 hours, preferring one still standing (a relay of a closed lot refreshes nothing)."""
        queue = self.recent.get(lot)
        if not queue:
            return None
        horizon = advert.at - BROKER_WINDOW
        while queue and queue[0][0].at < horizon:
            queue.popleft()
        closed: Listing | None = None
        for seen, listing in reversed(queue):
            if (
                listing.party != advert.party
                and seen.party != advert.party
                and same_price(advert.price, seen.price)
                and _agree(advert.variant, seen.variant)
            ):
                if listing.stands_at(advert.at):
                    return listing
                closed = closed or listing
        return closed

    def attach_broker(self, listing: Listing, advert: Advert) -> None:
        if listing.stands_at(advert.at):
            self.refresh(listing, advert.at)
        listing.adverts.append((advert, Role.BROKER_REPOST))
        relayed = self.relayed.setdefault(advert.party, [])
        if not relayed or relayed[-1] is not listing:
            relayed.append(listing)

    def refresh(self, listing: Listing, at: datetime) -> None:
        listing.last_at = max(listing.last_at, at)
        listing.ends_at = max(listing.ends_at, at + self.lifetime)

    # -- withdrawals ---------------------------------------------------------------------

    def withdraw(self, withdrawal: Withdrawal) -> None:
        at = withdrawal.at
        if withdrawal.offer is not None:
            for listing in self.by_offer.get(withdrawal.offer, ()):
                self.close(listing, withdrawal)
            return
        closed = False
        if withdrawal.reply_to is not None:
            for seen, listing in self.by_post.get(withdrawal.reply_to, ()):
                if withdrawal.party in (listing.party, seen.party) and _named(withdrawal, listing):
                    closed |= self.close(listing, withdrawal)
        if closed or withdrawal.gpu is None:
            return
        for listing in self.by_party.get(withdrawal.party, ()):
            if listing.stands_at(at) and _named(withdrawal, listing):
                closed |= self.close(listing, withdrawal)
        if closed or not withdrawal.names_the_lot:
            return
        for listing in self.relayed.get(withdrawal.party, ()):
            if _named(withdrawal, listing):
                self.close(listing, withdrawal)

    def close(self, listing: Listing, withdrawal: Withdrawal) -> bool:
        """End a listing that stands at the withdrawal's time; a late note changes nothing."""
        if not listing.stands_at(withdrawal.at) or listing.closed_by is not None:
            return False
        listing.ends_at = withdrawal.at
        listing.closed_by = withdrawal
        return True


_TICK = timedelta(microseconds=1)


def _before(withdrawal: Withdrawal, advert: Advert) -> bool:
    return (withdrawal.at, withdrawal.message or 0) < (advert.at, advert.message)


def _relayable(advert: Advert) -> bool:
    """Only a stated quantity and place can make a broker repost: two bare "selling H100"
    posts stay two sellers (as in `match.looks_alike`)."""
    return advert.gpus is not None and advert.place is not None


def _agree(a: object, b: object) -> bool:
    return a is None or b is None or a == b


def _named(withdrawal: Withdrawal, listing: Listing) -> bool:
    """Whatever the withdrawal names agrees with the listing (it need not name everything)."""
    return (
        _agree(withdrawal.gpu, listing.gpu)
        and _agree(withdrawal.deal, listing.deal)
        and _agree(withdrawal.side, listing.side)
        and _agree(withdrawal.place, listing.place)
        and _agree(withdrawal.gpus, listing.gpus)
    )


def adverts_from_posts(offers: Iterable[PostedOffer]) -> list[Advert]:
    """Posted offers read as advertisements, one message each (for callers holding posts)."""
    return [
        Advert(
            id=o.id,
            message=o.id,
            at=o.posted_at,
            party=o.party,
            chat=(o.platform, o.chat_id),
            side=o.offer.side,
            deal=o.offer.deal,
            gpu=o.offer.gpu,
            variant=o.offer.variant,
            gpus=o.gpus,
            place=o.offer.location,
            price=o.unit_price,
            offer=o.id,
        )
        for o in offers
    ]


# -- weeks ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Week:
    """An ISO week in a time zone: Monday 00:00 to Monday 00:00 there, held as UTC instants."""

    year: int
    number: int
    zone: tzinfo

    @classmethod
    def of(cls, moment: datetime, zone: tzinfo) -> Week:
        year, number, _ = moment.astimezone(zone).isocalendar()
        return cls(year, number, zone)

    @classmethod
    def parse(cls, label: str, zone: tzinfo) -> Week:
        """ "2026-W43" (or "2026w43"); ValueError saying the form otherwise."""
        text = label.strip().upper()
        year, sep, number = text.partition("-W")
        if not sep:
            year, sep, number = text.partition("W")
        try:
            date.fromisocalendar(int(year), int(number), 1)
        except ValueError:
            raise ValueError(f"week {label!r} must be an ISO week such as 2026-W43") from None
        return cls(int(year), int(number), zone)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def start(self) -> datetime:
        return _local_midnight(self.monday, self.zone)

    @property
    def end(self) -> datetime:
        return _local_midnight(self.monday + timedelta(days=7), self.zone)

    def shifted(self, weeks: int) -> Week:
        year, number, _ = (self.monday + timedelta(weeks=weeks)).isocalendar()
        return Week(year, number, self.zone)

    def __str__(self) -> str:
        return self.label


def _local_midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


# -- the pulse -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Standing:
    """One listing as it stood in a window: what `explain` shows and the pulse counted."""

    listing: Listing
    price: Decimal | None  # its own price in force at the window's end (or when it ended)
    counted_price: bool  # this price is its party's price in the window
    counted_quantity: bool  # this quantity is its party's quantity in the window


def pulses(
    book: Listings,
    weeks: Sequence[Week],
    *,
    currency: Currency = Currency.CNY,
    thresholds: ReadingThresholds = DEFAULT_THRESHOLDS,
    gpu: str | None = None,
    deal: Deal | None = None,
) -> list[Pulse]:
    """One pulse per (week, gpu, deal) with anyone active or posting, week then busiest first.

    `wow_ask` compares with the week before each week, computed the same way.
    """
    if not weeks:
        return []
    ordered = sorted(set(weeks), key=lambda w: w.start)
    first, last = ordered[0].shifted(-1), ordered[-1]
    span = [first.shifted(i) for i in range(_weeks_between(first, last) + 1)]
    bounds = [w.start for w in span] + [span[-1].end]
    rows = window_pulses(book, bounds, currency=currency, thresholds=thresholds, gpu=gpu, deal=deal)
    wanted = {_weeks_between(first, w) for w in ordered}
    out = [
        _labelled(pulse, span[index].label)
        for (index, _, _), pulse in rows.items()
        if index in wanted
    ]
    out.sort(key=lambda p: (p.window_start, *_busiest(p)))
    return out


def pulse_of(
    book: Listings,
    gpu: str,
    deal: Deal,
    week: Week,
    *,
    currency: Currency = Currency.CNY,
    thresholds: ReadingThresholds = DEFAULT_THRESHOLDS,
) -> Pulse:
    """The pulse of one (gpu, deal) in one week; an empty one when nobody was there."""
    found = pulses(book, [week], currency=currency, thresholds=thresholds, gpu=gpu, deal=deal)
    if found:
        return found[0]
    empty = _pulse(gpu, deal, week.start, week.end, currency, thresholds, _Side(), _Side(), None)
    return _labelled(empty, week.label)


def window_pulses(
    book: Listings,
    bounds: Sequence[datetime],
    *,
    currency: Currency = Currency.CNY,
    thresholds: ReadingThresholds = DEFAULT_THRESHOLDS,
    gpu: str | None = None,
    deal: Deal | None = None,
) -> dict[tuple[int, str, Deal], Pulse]:
    """Pulses over consecutive windows [bounds[i], bounds[i+1]), keyed (i, gpu, deal).

    One pass over the listings: each is added to the windows it stands in, each of its
    advertisements to the window it was posted in. Window i's `wow_ask` is against window
    i - 1 (None for the first).
    """
    count = len(bounds) - 1
    if count < 1:
        return {}
    low, high = bounds[0], bounds[-1]
    sides: dict[tuple[int, str, Deal, Side], _Side] = {}
    for listing in book.of(gpu, deal):
        if listing.first_at >= high or listing.ends_at <= low:
            continue
        # Windows it stands in: from the one holding its first moment to the last one that
        # starts before it ends.
        begin = max(0, bisect.bisect_right(bounds, listing.first_at) - 1)
        stop = min(count - 1, bisect.bisect_left(bounds, listing.ends_at) - 1)
        for index in range(begin, stop + 1):
            key = (index, listing.gpu, listing.deal, listing.side)
            side = sides.get(key)
            if side is None:
                side = sides[key] = _Side()
            side.add(listing, min(bounds[index + 1], listing.ends_at))
        for advert, _ in listing.adverts:
            if low <= advert.at < high:
                index = bisect.bisect_right(bounds, advert.at) - 1
                key = (index, listing.gpu, listing.deal, listing.side)
                side = sides.get(key)
                if side is None:
                    side = sides[key] = _Side()
                side.post(advert)
    pairs = sorted({(i, g, d) for i, g, d, _ in sides})
    out: dict[tuple[int, str, Deal], Pulse] = {}
    for index, g, d in pairs:
        sell = sides.get((index, g, d, Side.SELL), _EMPTY)
        buy = sides.get((index, g, d, Side.BUY), _EMPTY)
        before = sides.get((index - 1, g, d, Side.SELL))
        previous_median = None if before is None else percentile(before.asks(), _HALF)
        out[(index, g, d)] = _pulse(
            g, d, bounds[index], bounds[index + 1], currency, thresholds, sell, buy, previous_median
        )
    return out


@dataclass(frozen=True, slots=True)
class MarketParties:
    """The whole market in a window: a party selling H100 and A100 is one seller."""

    sellers: int
    buyers: int
    posts: int  # messages advertising anything in the window, reposts and brokers' included


def market_parties(book: Listings, start: datetime, end: datetime) -> MarketParties:
    """Distinct parties with a listing standing in [start, end), per side, across all models."""
    parties: dict[Side, set[Party]] = {Side.SELL: set(), Side.BUY: set()}
    posts: set[int] = set()
    for listing in book.listings:
        if listing.stands_in(start, end):
            parties[listing.side].add(listing.party)
        posts.update(a.message for a, _ in listing.adverts if start <= a.at < end)
    return MarketParties(len(parties[Side.SELL]), len(parties[Side.BUY]), len(posts))


def standing_in(book: Listings, gpu: str, deal: Deal, week: Week) -> list[Standing]:
    """The listings behind one week's pulse of (gpu, deal), sellers first, each side by price."""
    start, end = week.start, week.end
    by_side: dict[Side, _Side] = {Side.SELL: _Side(), Side.BUY: _Side()}
    standing = [listing for listing in book.of(gpu, deal) if listing.stands_in(start, end)]
    for listing in standing:
        by_side[listing.side].add(listing, min(end, listing.ends_at))
    out = []
    for listing in standing:
        side = by_side[listing.side]
        party = side.parties[listing.party]
        price = listing.price_before(min(end, listing.ends_at))
        out.append(
            Standing(
                listing=listing,
                price=None if price is None else price[1],
                counted_price=party.price_listing is listing,
                counted_quantity=party.quantity_listing is listing,
            )
        )
    out.sort(key=lambda s: (s.listing.side is not Side.SELL, *_price_order(s), s.listing.id))
    return out


def _price_order(standing: Standing) -> tuple[bool, Decimal]:
    price = standing.price
    if price is None:
        return True, Decimal(0)
    return False, price if standing.listing.side is Side.SELL else -price


@dataclass(slots=True)
class _Party:
    """One party on one side in one window: its latest listing and its latest price."""

    quantity_at: datetime | None = None
    quantity: int | None = None
    quantity_listing: Listing | None = None
    price_at: datetime | None = None
    price: Decimal | None = None
    price_listing: Listing | None = None


class _Side:
    """The parties on one side of a (gpu, deal) in one window, and the posts made in it."""

    __slots__ = ("messages", "parties", "posters")

    def __init__(self) -> None:
        self.parties: dict[Party, _Party] = {}
        self.messages: set[int] = set()
        self.posters: set[Party] = set()

    def add(self, listing: Listing, until: datetime) -> None:
        """A listing standing in the window; `until` is where the window (or it) ends."""
        party = self.parties.get(listing.party)
        if party is None:
            party = self.parties[listing.party] = _Party()
        index = listing.own_before(until)
        if index < 0:  # cannot happen: a listing's first advertisement is its own
            return
        at = listing.own_times[index]
        if party.quantity_at is None or at > party.quantity_at:
            party.quantity_at, party.quantity = at, listing.gpus
            party.quantity_listing = listing
        priced = listing.price_before(until)
        if priced is not None and (party.price_at is None or priced[0] > party.price_at):
            party.price_at, party.price = priced
            party.price_listing = listing

    def post(self, advert: Advert) -> None:
        self.messages.add(advert.message)
        self.posters.add(advert.party)

    def asks(self) -> list[Decimal]:
        return [p.price for p in self.parties.values() if p.price is not None]

    def quantity(self) -> int:
        return sum(p.quantity or 0 for p in self.parties.values())


_EMPTY = _Side()
_HALF, _QUARTER, _THREE_QUARTERS = Fraction(1, 2), Fraction(1, 4), Fraction(3, 4)


def _pulse(
    gpu: str,
    deal: Deal,
    start: datetime,
    end: datetime,
    currency: Currency,
    thresholds: ReadingThresholds,
    sell: _Side,
    buy: _Side,
    previous_median: Decimal | None,
) -> Pulse:
    asks, bids = sell.asks(), buy.asks()
    best_ask, best_bid = min(asks, default=None), max(bids, default=None)
    median_ask = percentile(asks, _HALF)
    sellers, buyers = len(sell.parties), len(buy.parties)
    return Pulse(
        gpu=gpu,
        deal=deal,
        unit=unit_for(deal),
        currency=currency,
        window_start=start,
        window_end=end,
        sellers=sellers,
        buyers=buyers,
        sell_offers=len(sell.messages),
        buy_offers=len(buy.messages),
        median_ask=median_ask,
        p25_ask=percentile(asks, _QUARTER),
        p75_ask=percentile(asks, _THREE_QUARTERS),
        median_bid=percentile(bids, _HALF),
        p25_bid=percentile(bids, _QUARTER),
        p75_bid=percentile(bids, _THREE_QUARTERS),
        best_ask=best_ask,
        best_bid=best_bid,
        spread=None if best_ask is None or best_bid is None else best_ask - best_bid,
        wow_ask=_change(previous_median, median_ask),
        qty_offered=sell.quantity(),
        qty_wanted=buy.quantity(),
        reading=read_market(sellers, buyers, thresholds),
        sell_posters=len(sell.posters),
        buy_posters=len(buy.posters),
    )


def _labelled(pulse: Pulse, label: str) -> Pulse:
    return replace(pulse, week=label)


def _busiest(pulse: Pulse) -> tuple[object, ...]:
    return (
        -(pulse.sellers + pulse.buyers),
        -(pulse.sell_offers + pulse.buy_offers),
        pulse.gpu,
        pulse.deal,
    )


def _change(before: Decimal | None, after: Decimal | None) -> Decimal | None:
    if before is None or after is None or before == 0:
        return None
    return (after - before) / before


def _weeks_between(first: Week, last: Week) -> int:
    return (last.monday - first.monday).days // 7
