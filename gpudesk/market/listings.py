"""Market truth: listings, the parties behind the posts, and the weekly pulse they make.

A busy group repeats itself: sellers repost, post again in a second group, brokers relay other
people's stock in their own words, prices are cut, deals end with "已出". This module turns the
advertisements (every offer read from every post) and the withdrawals into **listings**, one
party's standing offer each, and counts those. It is the desk's one pulse computation: `/price`,
`/market`, the weekly digest and `gpudesk export --what pulse` all read `pulses()`.

The method (README (pulse) states it for readers; this is the implementation):

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

Pure: no I/O, no clock. Prices must already be in the desk's currency (`normalise`). Times
inside are integer microseconds since the epoch (`micros`, `moment`): a year of a busy market is
a million advertisements, and integers compare and add several times faster than datetimes.
"""

from __future__ import annotations

import bisect
import gc
import io
import pickle
import sys
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable, Container, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from itertools import islice
from operator import attrgetter, itemgetter
from typing import IO, Any, NamedTuple
from zoneinfo import ZoneInfo

from gpudesk.market.book import PostedOffer
from gpudesk.market.match import LOOKALIKE_WINDOW, same_price
from gpudesk.market.normalise import unit_for
from gpudesk.market.offer import Currency, Deal, Side
from gpudesk.market.pulse import Pulse, ReadingThresholds, percentile, read_market

Party = tuple[str, str]  # (platform, poster id)
Chat = tuple[str, str]  # (platform, chat id)

DEFAULT_THRESHOLDS = ReadingThresholds()  # the 3 and 3/2 (frozen: safe to share)
DEFAULT_LIFETIME = timedelta(days=14)  # `[desk] offer_days`

# A broker relays a post within the day (the same window `match.looks_alike` uses).
BROKER_WINDOW = LOOKALIKE_WINDOW

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_NEVER = 2**63  # µs: later than any post


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small acyclic tuples are made.

    Each collection walks every tracked object, so a year's advertisements would be walked
    again and again for nothing (none of them is part of a cycle). The collector runs again,
    as it was, on the way out.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# Past this many listings kept in memory, a market is taken out of the collector's sight.
SETTLE_LISTINGS = 20_000


def settle(market: LiveMarket) -> None:
    """Take a big market just built or copied (a million posts make millions of objects, and
    they live long) out of the cyclic collector's sight: each full collection would walk them
    all, for seconds, in the middle of answering someone. The young garbage is collected
    first; what is frozen is still freed as usual when nothing refers to it. A small market
    costs the collector nothing worth it."""
    if len(market.builder.listings) >= SETTLE_LISTINGS:
        gc.collect(1)
        gc.freeze()


def micros(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact)."""
    return (moment - _EPOCH) // _MICRO


def moment(us: int) -> datetime:
    """Integer microseconds since the epoch as an aware UTC datetime (exact)."""
    return _EPOCH + timedelta(microseconds=us)


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


class Lot(NamedTuple):
    """What a listing offers, besides who: side, deal, model, quantity in GPUs, place."""

    side: Side
    deal: Deal
    gpu: str
    gpus: int | None
    place: str | None

    @property
    def relayable(self) -> bool:
        """Only a stated quantity and place can make a broker repost: two bare "selling
        H100" posts stay two sellers (as in `match.looks_alike`)."""
        return self.gpus is not None and self.place is not None


class Advert(NamedTuple):
    """One offer read from one post: the engine's input.

    `party`, `chat`, `lot` and `price` are the values themselves (a `Party`, a `Lot`, a
    `Decimal`), or keys that a `Codes` maps to them: the ledger hands over its compact rows
    as they come (codes and a price's text), since a year is a million of them.
    """

    id: int  # the ledger's advert row: orders posts made at the same instant
    message: int  # the ledger's message row; one message may advertise several listings
    at: int  # microseconds since the epoch (`micros`)
    party: Hashable  # (platform, poster id)
    chat: Hashable  # (platform, chat id)
    lot: Hashable  # a `Lot`
    variant: str | None
    price: Hashable | None  # per GPU-hour (rent) or per GPU (sale), in the desk's currency
    offer: int | None = None  # the book offer it was stored as or refreshed (for /cancel)


def advert(
    id: int,
    *,
    at: datetime,
    party: Party,
    lot: Lot,
    price: Decimal | None,
    chat: Chat = ("console", "room"),
    message: int | None = None,
    variant: str | None = None,
    offer: int | None = None,
) -> Advert:
    """An advertisement from plain values (tests, callers holding posts)."""
    message = id if message is None else message
    return Advert(id, message, micros(at), party, chat, lot, variant, price, offer)


class _Itself(dict):  # type: ignore[type-arg]
    """A mapping from anything to itself: the codes of values given as themselves."""

    def __missing__(self, key: object) -> object:
        return key


@dataclass(frozen=True, slots=True)
class Codes:
    """What the keys of compact advertisements stand for (see `Advert`)."""

    parties: Mapping[Hashable, Party] = field(default_factory=_Itself)
    lots: Mapping[Hashable, Lot] = field(default_factory=_Itself)
    prices: Mapping[Hashable, Decimal | None] = field(default_factory=_Itself)


ITSELF = Codes()


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A message that ends a deal, or `/cancel` and `/filled`; what it names may be None."""

    id: int
    message: int | None
    at: int  # microseconds since the epoch
    party: Hashable  # as its advertisements name parties
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

    @property
    def when(self) -> datetime:
        return moment(self.at)


# What a lean listing holds in place of its posts, groups and relays (shared, never added to).
_NO_POSTS: tuple[()] = ()
_NO_CHATS: frozenset[Hashable] = frozenset()
_NO_RELAYS: tuple[()] = ()


class Listing:
    """One party's standing offer and the advertisements that made it known."""

    __slots__ = (
        "adverts",
        "chats",
        "closed_by",
        "ends_at",
        "first_at",
        "id",
        "key",
        "last_at",
        "lot",
        "lot_key",
        "own_prices",
        "own_times",
        "party",
        "price",
        "price_key",
        "relays",
        "seq",
        "variant",
    )

    def __init__(self, advert: Advert, lifetime: int, codes: Codes, keep_posts: bool = True):
        # Fields by position: the ledger's rows are plain tuples in `Advert`'s order.
        id_, _, at, party, chat, lot, variant, price, _ = advert
        self.id = id_  # its original advertisement's
        self.key = party  # its party as the advertisements name it
        self.party: Party = codes.parties[party]
        self.lot_key = lot
        self.lot: Lot = codes.lots[lot]
        self.first_at = self.last_at = at  # µs; last: its latest, own or a broker's
        self.ends_at = at + lifetime  # the first moment it no longer stands
        # Its posts and groups (`keep_posts` only: a lean reading keeps neither, nor the row,
        # since a market kept in memory holds a hundred thousand listings).
        self.adverts: list[tuple[Advert, Role]] = (
            [(advert, Role.ORIGINAL)] if keep_posts else _NO_POSTS  # type: ignore[assignment]
        )
        self.closed_by: Withdrawal | None = None
        self.chats: set[Hashable] = {chat} if keep_posts else _NO_CHATS  # where its party posted
        self.price_key = price if keep_posts else None  # a lean reading never asks
        self.price = None if price is None else codes.prices[price]  # latest (keep_posts)
        # one string per variant however many rows name it
        self.variant = variant if variant is None else sys.intern(variant)
        # Its own advertisements in time order, for "the price in force" at any moment.
        self.own_times = [at]
        self.own_prices = [self.price]
        # brokers' relays: (at, price, variant, poster); a list from the first one on
        self.relays: list[tuple[int, Decimal | None, str | None, Hashable]] = _NO_RELAYS  # type: ignore[assignment]
        self.seq = 0  # its place in the order listings were made (the builder numbers them)

    side = property(lambda self: self.lot.side)
    deal = property(lambda self: self.lot.deal)
    gpu = property(lambda self: self.lot.gpu)
    gpus = property(lambda self: self.lot.gpus)
    place = property(lambda self: self.lot.place)

    def stands_at(self, at: int) -> bool:
        return self.first_at <= at < self.ends_at

    def stands_in(self, start: int, end: int) -> bool:
        """Standing at any moment of [start, end) (one withdrawn the instant it was posted
        never stood)."""
        return self.first_at < end and self.ends_at > start and self.ends_at > self.first_at

    def price_before(self, at: int) -> tuple[int, Decimal] | None:
        """Its latest own stated price before `at`, and when it was stated."""
        index = bisect.bisect_left(self.own_times, at) - 1
        prices = self.own_prices
        while index >= 0:
            price = prices[index]
            if price is not None:
                return self.own_times[index], price
            index -= 1
        return None

    def __repr__(self) -> str:
        return f"Listing({self.id}, {self.party}, {tuple(self.lot)}, {len(self.adverts)} posts)"


@dataclass(slots=True)
class Listings:
    """Every listing read from a history, in order of first advertisement, and the posts."""

    listings: list[Listing]
    lifetime: timedelta
    withdrawals: list[Withdrawal]
    adverts: list[Advert]  # every advertisement, in time order
    codes: Codes = ITSELF

    def of(self, gpu: str | None = None, deal: Deal | None = None) -> Iterator[Listing]:
        for listing in self.listings:
            lot = listing.lot
            if (gpu is None or lot.gpu == gpu) and (deal is None or lot.deal is deal):
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
    lifetime: timedelta = DEFAULT_LIFETIME,
    codes: Codes = ITSELF,
    keep_posts: bool = True,
    in_order: bool = False,
) -> Listings:
    """Read adverts and withdrawals in time order into listings (see the module docstring).

    With `keep_posts` false each listing keeps only its first post, and no roles: the same
    listings and the same pulse, for a year's export, where a list per post costs seconds.
    `in_order` says the adverts already come in (at, message, id) order (the ledger's query
    gives them so from its index), which spares sorting a million of them.
    """
    with gc_paused():
        pending = sorted(withdrawals, key=attrgetter("at", "id"))
        # (at, message, id): posts in time order, a message's offers in the order they were
        # read. Nearly sorted already (the ledger's order), this is close to a linear pass.
        ordered = adverts if in_order and isinstance(adverts, list) else None
        if ordered is None:
            ordered = sorted(adverts, key=itemgetter(2, 1, 0))
        return _Builder(lifetime, pending, codes, keep_posts).run(ordered)


class _Everything:
    """Every post and book offer: what a market kept up to date indexes, since it cannot know
    which one a withdrawal still to come will name."""

    def __contains__(self, item: object) -> bool:
        return item is not None


_ALL = _Everything()
# What an advertisement was to the builder: its party's own post, a new listing, a relay.
_OWN, _NEW, _RELAY = range(3)


class _Builder:
    """One pass over the history; the state is what is open now and what was said lately."""

    def __init__(
        self,
        lifetime: timedelta,
        withdrawals: list[Withdrawal],
        codes: Codes,
        keep_posts: bool,
        *,
        index_all: bool = False,
    ):
        self.lifetime, self.life, self.codes = lifetime, lifetime // _MICRO, codes
        self.window = BROKER_WINDOW // _MICRO
        self.keep_posts = keep_posts
        self.withdrawals = withdrawals
        self.done = 0  # withdrawals applied so far (they are read merged with the posts)
        self.listings: list[Listing] = []
        self.own: dict[tuple[Hashable, Hashable], Listing] = {}  # each party's latest per lot
        # per relayable lot, the listings a post could still relay: standing, or advertised
        # within the day (dropped, as time passes, once neither)
        self.relayable: dict[Hashable, list[Listing]] = {}
        # ... and once a lot has many (thousands of parties holding the same lot), its listings
        # in the order they were last advertised instead (each moves to the end when advertised
        # again): those advertised within the day are found at the end without walking the
        # quiet ones, which are dropped from the front
        self.lately: dict[Hashable, OrderedDict[Listing, None]] = {}
        self.by_party: dict[Hashable, list[Listing]] = {}
        self.relayed: dict[Hashable, list[Listing]] = {}
        # Only the posts and book offers some withdrawal points at are indexed.
        self.wanted_posts: Container[int | None] = {
            w.reply_to for w in withdrawals if w.reply_to is not None
        }
        self.wanted_offers: Container[int | None] = {
            w.offer for w in withdrawals if w.offer is not None
        }
        if index_all:
            self.wanted_posts = self.wanted_offers = _ALL
        # A post's listings: each as itself when its party made the post, else as (poster,
        # listing); a list when there are several (see `_put`, `_posted`): an index of every
        # post of a market kept in memory is a hundred thousand entries.
        self.by_post: dict[int, object] = {}
        self.by_offer: dict[int, object] = {}  # a book offer's listings (`_put`, `_each`)
        self.relays_possible: dict[Hashable, bool] = {}  # per lot: quantity and place stated
        self.made = 0  # listings made so far (`Listing.seq`)
        self.same: dict[Hashable, Hashable] = {}  # each party's and lot's code, as one object
        self.closed: list[Listing] | None = None  # when a caller follows closings: those made

    def run(self, adverts: list[Advert]) -> Listings:
        self.read(adverts)
        self.finish()
        return Listings(self.listings, self.lifetime, self.withdrawals, adverts, self.codes)

    def read(self, adverts: Iterable[Advert]) -> None:
        """Read advertisements in order, with the withdrawals made before each (those after
        the last wait for more posts, or for `finish`)."""
        # The hot loop: a million advertisements make a year, most of them a party's own
        # repost. In lean mode that is a few appends; everything else is a method call.
        own, life, prices, lately = self.own, self.life, self.codes.prices, self.lately
        wanted_posts, wanted_offers, keep_posts = (
            self.wanted_posts,
            self.wanted_offers,
            self.keep_posts,
        )
        by_post, by_offer = self.by_post, self.by_offer
        pending, done = self.withdrawals, self.done
        upcoming = pending[done].at if done < len(pending) else _NEVER
        for advert in adverts:
            _, message, at, party, _, lot, variant, price, offer = advert
            if upcoming <= at:
                done, upcoming = self.withdraw_before(advert, done)
            mine = own.get((party, lot))
            if mine is None or not mine.first_at <= at < mine.ends_at:
                mine = self.arrive(advert)
            elif keep_posts:
                self.own_post(mine, advert)
            else:  # lean: the price in force over time, and the standing
                mine.own_times.append(at)
                mine.own_prices.append(None if price is None else prices[price])
                mine.last_at, mine.ends_at = at, at + life
                if lately:  # a lot read in the order last advertised (busy lots only)
                    heard = lately.get(lot)
                    if heard is not None:
                        heard[mine] = None
                        heard.move_to_end(mine)
                if variant is not None and mine.variant is None:
                    mine.variant = variant
                if offer in wanted_offers:
                    _put(by_offer, offer, mine)
            if message in wanted_posts:
                _put(by_post, message, mine if mine.key == party else (party, mine))
        self.done = done

    def finish(self) -> None:
        """Apply the withdrawals made after the last advertisement read."""
        pending = self.withdrawals
        while self.done < len(pending):
            self.done += 1
            self.withdraw(pending[self.done - 1])

    def withdraw_before(self, advert: Advert, done: int) -> tuple[int, int]:
        """Apply the withdrawals made before `advert`; the next one's index and time."""
        pending, at, message = self.withdrawals, advert[2], advert[1]
        while done < len(pending):
            withdrawal = pending[done]
            if (withdrawal.at, withdrawal.message or 0) >= (at, message):
                return done, withdrawal.at
            self.withdraw(withdrawal)
            done += 1
        return done, _NEVER

    def own_post(self, mine: Listing, advert: Advert) -> None:
        """A party's post for its standing listing: a repost, a cross-post or a new price."""
        _, _, at, _, chat, _, variant, price, offer = advert
        if price is None:
            value = None
            role = Role.REPOST if chat in mine.chats else Role.CROSS_POST
        else:
            value = self.codes.prices[price]
            if price != mine.price_key and (
                mine.price is None or not same_price(value, mine.price)
            ):
                role = Role.PRICE_CHANGE
            else:
                role = Role.REPOST if chat in mine.chats else Role.CROSS_POST
            mine.price, mine.price_key = value, price
        mine.chats.add(chat)
        if variant is not None and mine.variant is None:
            mine.variant = variant
        mine.adverts.append((advert, role))
        mine.own_times.append(at)
        mine.own_prices.append(value)
        mine.last_at, mine.ends_at = at, at + self.life
        self.heard(advert[5], mine)
        if offer in self.wanted_offers:
            _put(self.by_offer, offer, mine)

    def heard(self, lot: Hashable, listing: Listing) -> None:
        """`listing` was just advertised: last in its lot's order (if it can be relayed)."""
        heard = self.lately.get(lot)
        if heard is not None:
            heard[listing] = None
            heard.move_to_end(listing)

    def arrive(self, advert: Advert) -> Listing:
        """A post for no listing its party has standing: a broker's repost, or a new listing."""
        _, _, _, party, _, lot, _, _, offer = advert
        can_relay = self.relays_possible.get(lot)
        if can_relay is None:
            spec = self.codes.lots[lot]
            can_relay = self.relays_possible[lot] = spec.relayable
        relayed = self.relay_of(advert) if can_relay else None
        if relayed is not None:
            self.attach_broker(relayed, advert)
            return relayed
        mine = Listing(advert, self.life, self.codes, self.keep_posts)
        # the same code, one object: rows bring a new one each time (a market keeps 100,000s)
        party = mine.key = self.same.setdefault(party, party)
        lot = mine.lot_key = self.same.setdefault(lot, lot)
        mine.seq = self.made
        self.made += 1
        self.listings.append(mine)
        self.own[(party, lot)] = mine
        self.by_party.setdefault(party, []).append(mine)
        if offer in self.wanted_offers:
            _put(self.by_offer, offer, mine)
        if can_relay:
            heard = self.lately.get(lot)
            if heard is not None:
                heard[mine] = None
            else:
                self.relayable.setdefault(lot, []).append(mine)
        return mine

    def relay_of(self, advert: Advert) -> Listing | None:
        """The listing an advertisement relays: one of another party, of the same lot, with
        an advertisement (its own or a broker's other than this poster's) in the last 24
        hours at a price within 1% and a variant that does not conflict. The latest such
        wins, a standing one before a closed one (a relay of a closed lot refreshes nothing).
        """
        _, _, at, party, _, lot, variant, price_key, _ = advert
        horizon = at - self.window
        # Those advertised in the last day (nothing said of the others), in any order: ties
        # go to the one made first whatever the order (a busy lot's are not sorted for it).
        heard = self.lately.get(lot)
        candidates: Iterable[Listing]
        if heard is not None:
            candidates = _heard_since(heard, horizon)
        else:
            listed = self.relayable.get(lot)
            if not listed:
                return None
            candidates, dead = [], False
            for listing in listed:
                if listing.last_at < horizon:
                    dead = dead or listing.ends_at <= at  # and it will never stand again
                else:
                    candidates.append(listing)
            if dead:
                self.relayable[lot] = [c for c in listed if c.last_at >= horizon or c.ends_at > at]
            if len(self.relayable[lot]) > BUSY_LOT:  # from now on, in the order last advertised
                ordered = sorted(self.relayable.pop(lot), key=attrgetter("last_at", "seq"))
                self.lately[lot] = OrderedDict.fromkeys(ordered)
        if not candidates:
            return None
        price = None if price_key is None else self.codes.prices[price_key]
        # Prices outside (low, high) are not within 1% of this one, so most of the others'
        # prices are told apart with two comparisons (the rest by `same_price` itself).
        low = high = None
        if price is not None and price > 0:
            low, high = price * _SURELY_LOWER, price * _SURELY_HIGHER
        best, best_at, closed = None, -1, None
        for listing in candidates:
            if listing.key == party or listing.last_at < horizon:
                continue
            if variant is not None and listing.variant is not None and variant != listing.variant:
                continue
            # When it was last advertised in the last day at this price: its own posts,
            # newest first (the same quote is the same object), then brokers'.
            seen = -1
            times, prices = listing.own_times, listing.own_prices
            index = len(times) - 1
            while index >= 0 and times[index] >= horizon:
                other = prices[index]
                if other is price or (
                    (low is None or (other is not None and low < other < high))  # type: ignore[operator]
                    and same_price(price, other)
                ):
                    seen = times[index]
                    break
                index -= 1
            if seen < 0:
                relays = listing.relays
                for relay_at, relay_price, _, poster in reversed(relays) if relays else relays:
                    if relay_at < horizon:
                        break
                    if poster != party and (
                        relay_price is price
                        or (
                            (low is None or (relay_price is not None and low < relay_price < high))  # type: ignore[operator]
                            and same_price(price, relay_price)
                        )
                    ):
                        seen = relay_at
                        break
                if seen < 0:
                    continue
            if listing.first_at <= at < listing.ends_at:
                if seen > best_at or (
                    seen == best_at and best is not None and listing.seq < best.seq
                ):
                    best, best_at = listing, seen
            elif closed is None or listing.seq < closed.seq:
                closed = listing
        return best or closed

    def attach_broker(self, listing: Listing, advert: Advert) -> None:
        """A broker's repost refreshes a standing listing; of a closed one it is only noted."""
        _, _, at, party, _, _, variant, price_key, _ = advert
        if listing.first_at <= at < listing.ends_at:
            listing.last_at = max(listing.last_at, at)
            listing.ends_at = max(listing.ends_at, at + self.life)
            self.heard(advert[5], listing)
        if self.keep_posts:
            listing.adverts.append((advert, Role.BROKER_REPOST))
        price = None if price_key is None else self.codes.prices[price_key]
        if listing.relays is _NO_RELAYS:
            listing.relays = []
        listing.relays.append((at, price, variant, party))
        relayed = self.relayed.setdefault(party, [])
        if not relayed or relayed[-1] is not listing:
            relayed.append(listing)

    # -- withdrawals ---------------------------------------------------------------------

    def withdraw(self, withdrawal: Withdrawal) -> None:
        at = withdrawal.at
        if withdrawal.offer is not None:
            for listing in _each(self.by_offer.get(withdrawal.offer)):
                self.close(listing, withdrawal)  # type: ignore[arg-type]
            return
        closed = False
        if withdrawal.reply_to is not None:
            for poster, listing in _posted(self.by_post.get(withdrawal.reply_to)):
                if withdrawal.party in (listing.key, poster) and _named(withdrawal, listing):
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
        if self.closed is not None:
            self.closed.append(listing)
        return True

    # -- one post at a time, and forgetting (`LiveMarket`) -------------------------------

    def step(self, advert: Advert) -> tuple[Listing, int]:
        """Read one more advertisement (lean, as `run` does): its listing, and whether it was
        its party's own post (`_OWN`), a new listing (`_NEW`) or a broker's relay (`_RELAY`)."""
        _, message, at, party, _, lot, variant, price, offer = advert
        mine = self.own.get((party, lot))
        if mine is None or not mine.first_at <= at < mine.ends_at:
            mine = self.arrive(advert)
            kind = _NEW if mine.id == advert[0] else _RELAY
        else:
            mine.own_times.append(at)
            mine.own_prices.append(None if price is None else self.codes.prices[price])
            mine.last_at, mine.ends_at = at, at + self.life
            self.heard(lot, mine)
            if variant is not None and mine.variant is None:
                mine.variant = variant
            if offer in self.wanted_offers:
                _put(self.by_offer, offer, mine)
            kind = _OWN
        if message in self.wanted_posts:
            _put(self.by_post, message, mine if mine.key == party else (party, mine))
        return mine, kind

    def withdraw_now(self, withdrawal: Withdrawal) -> list[Listing]:
        """Apply one more withdrawal; the listings it closed."""
        self.closed = []
        try:
            self.withdraw(withdrawal)
            return self.closed
        finally:
            self.closed = None

    def forget(self, keep: Callable[[Listing], bool]) -> list[Listing]:
        """Drop the listings `keep` refuses from the state (they can stand, be closed or be
        relayed no more): a market kept up to date holds only what can still change. Returns
        those dropped, in the order made."""
        kept_listings, dropped = [], []
        for listing in self.listings:
            (kept_listings if keep(listing) else dropped).append(listing)
        if not dropped:
            return dropped
        self.listings = kept_listings
        kept = {id(listing) for listing in kept_listings}
        # The withdrawals applied are done with (those to come are kept).
        del self.withdrawals[: self.done]
        self.done = 0
        # Every index made again, without the dropped (a dict does not shrink as keys go).
        self.own = {key: found for key, found in self.own.items() if id(found) in kept}
        for name in ("by_party", "relayed", "relayable"):
            lists = {}
            for key, found in getattr(self, name).items():
                alive = [listing for listing in found if id(listing) in kept]
                if alive:
                    lists[key] = alive
            setattr(self, name, lists)
        for lot, heard in self.lately.items():
            self.lately[lot] = OrderedDict(
                (listing, None) for listing in heard if id(listing) in kept
            )
        for name in ("by_post", "by_offer"):
            entries: dict[int, object] = {}
            for key, entry in getattr(self, name).items():
                kind = type(entry)
                if kind is Listing:
                    if id(entry) in kept:
                        entries[key] = entry
                elif kind is tuple:
                    if id(entry[1]) in kept:  # type: ignore[index]
                        entries[key] = entry
                else:
                    alive = [
                        e
                        for e in entry
                        if id(e if type(e) is Listing else e[1]) in kept  # type: ignore[attr-defined]
                    ]
                    if alive:
                        entries[key] = alive if len(alive) > 1 else alive[0]
            setattr(self, name, entries)
        return dropped


def _put(index: dict[int, object], key: int, value: object) -> None:
    """Index `value` under `key`: as itself while it is the only one there, else in a list
    (a listing already there last is not added again)."""
    found = index.get(key)
    if found is None:
        index[key] = value
    elif type(found) is list:
        if found[-1] is not value:
            found.append(value)
    elif found is not value:
        index[key] = [found, value]


def _each(found: object) -> list[object]:
    """What `_put` indexed under one key, as a list."""
    if found is None:
        return []
    return found if type(found) is list else [found]  # type: ignore[return-value]


def _posted(found: object) -> Iterator[tuple[Hashable, Listing]]:
    """A post's listings as `by_post` holds them, each with the post's poster."""
    for entry in _each(found):
        if type(entry) is Listing:
            yield entry.key, entry
        else:
            yield entry  # type: ignore[misc]


# A price below this share of another, or above this one, is surely not within 1% of it
# (`match.same_price`): a margin that no rounding comes near.
_SURELY_LOWER, _SURELY_HIGHER = Decimal("0.98"), Decimal("1.02")
# A lot with more listings to look through than this is read in the order last advertised
# (measured on a million posts: reading all but the smallest lots so is quicker).
BUSY_LOT = 4


def _heard_since(heard: OrderedDict[Listing, None], horizon: int) -> OrderedDict[Listing, None]:
    """A busy lot's listings, without the quiet ones in front (advertised before `horizon`:
    they can be relayed no more). One read out of order may leave a quiet one behind a later
    one: the caller passes over those too."""
    while heard:
        quietest = next(iter(heard))
        if quietest.last_at >= horizon:
            break
        heard.popitem(last=False)
    return heard


def _agree(a: object, b: object) -> bool:
    return a is None or b is None or a == b


def _named(withdrawal: Withdrawal, listing: Listing) -> bool:
    """Whatever the withdrawal names agrees with the listing (it need not name everything)."""
    lot = listing.lot
    return (
        _agree(withdrawal.gpu, lot.gpu)
        and _agree(withdrawal.deal, lot.deal)
        and _agree(withdrawal.side, lot.side)
        and _agree(withdrawal.place, lot.place)
        and _agree(withdrawal.gpus, lot.gpus)
    )


def adverts_from_posts(offers: Iterable[PostedOffer]) -> list[Advert]:
    """Posted offers read as advertisements, one message each (for callers holding posts)."""
    return [
        Advert(
            o.id,
            o.id,
            micros(o.posted_at),
            o.party,
            (o.platform, o.chat_id),
            Lot(o.offer.side, o.offer.deal, o.offer.gpu, o.gpus, o.offer.location),
            o.offer.variant,
            o.unit_price,
            o.id,
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
    def of(cls, at: datetime, zone: tzinfo) -> Week:
        year, number, _ = at.astimezone(zone).isocalendar()
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


def _weeks_between(first: Week, last: Week) -> int:
    return (last.monday - first.monday).days // 7


# -- the pulse -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Standing:
    """One listing as it stood in a week: what `explain` shows and the pulse counted."""

    listing: Listing
    price: Decimal | None  # its own price in force at the week's end (or when it ended)
    counted_price: bool  # this price is its party's price in the week
    counted_quantity: bool  # this quantity is its party's quantity in the week


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
    ordered = sorted(set(weeks), key=lambda w: w.monday)
    first, last = ordered[0].shifted(-1), ordered[-1]
    span = [first.shifted(i) for i in range(_weeks_between(first, last) + 1)]
    bounds = [w.start for w in span] + [span[-1].end]
    with gc_paused():
        rows = window_pulses(
            book, bounds, currency=currency, thresholds=thresholds, gpu=gpu, deal=deal
        )
    wanted = {_weeks_between(first, w) for w in ordered}
    out = [
        replace(pulse, week=span[index].label)
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
    return replace(empty, week=week.label)


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
    groups = window_sides(book, [micros(b) for b in bounds], gpu=gpu, deal=deal)
    sides = {
        (index, g, d, side): found
        for (g, d, side), windows in groups.items()
        for index, found in enumerate(windows)
        if found is not None
    }
    out: dict[tuple[int, str, Deal], Pulse] = {}
    for index, g, d in sorted({(i, g, d) for i, g, d, _ in sides}):
        sell = sides.get((index, g, d, Side.SELL), _EMPTY)
        buy = sides.get((index, g, d, Side.BUY), _EMPTY)
        before = sides.get((index - 1, g, d, Side.SELL))
        previous_median = None if before is None else percentile(before.prices(), _HALF)
        out[(index, g, d)] = _pulse(
            g, d, bounds[index], bounds[index + 1], currency, thresholds, sell, buy, previous_median
        )
    return out


def window_sides(
    book: Listings,
    edges: Sequence[int],
    *,
    gpu: str | None = None,
    deal: Deal | None = None,
) -> dict[tuple[str, Deal, Side], list[_Side | None]]:
    """Per (gpu, deal, side), its parties and posts in each window [edges[i], edges[i+1])
    (times in µs): what `window_pulses` sums up."""
    tally = _Tally(edges, book.codes.lots, gpu=gpu, deal=deal)
    tally.add_listings(book.listings)
    adverts = book.adverts
    tally.add_posts(islice(adverts, bisect.bisect_left(adverts, edges[0], key=itemgetter(2)), None))
    return tally.groups


class _Tally:
    """Per (gpu, deal, side), its parties and posts in each window [edges[i], edges[i+1])
    (µs), added up from listings in any order and posts in time order: `window_sides` adds a
    whole history at once; `LiveMarket.build` adds listings as it forgets them, and posts as
    they are read."""

    def __init__(
        self,
        edges: Sequence[int],
        lots: Mapping[Hashable, Lot],
        *,
        gpu: str | None = None,
        deal: Deal | None = None,
        posts_from: int = 0,
    ):
        self.edges = list(edges)
        self.count = len(edges) - 1
        self.lots, self.gpu, self.deal = lots, gpu, deal
        # Per (gpu, deal, side), its windows' sides; per lot, which of those lists it goes to.
        self.groups: dict[tuple[str, Deal, Side], list[_Side | None]] = {}
        self.of_lot: dict[Hashable, list[_Side | None]] = {}
        # The posts: the window of the last one, where it ends, and that window's side of each
        # lot (None: not wanted). They count from window `posts_from` on (`LiveMarket.build`
        # wants only the median ask of the first of its windows).
        self.index, self.limit = posts_from, self.edges[posts_from + 1]
        self.slots: dict[Hashable, _Side | None] = {}

    def add_listings(self, listings: Iterable[Listing]) -> None:
        """Add listings to the windows they stand in (each once, in any order)."""
        edges, count, groups, of_lot = self.edges, self.count, self.groups, self.of_lot
        gpu, deal = self.gpu, self.deal
        low, high = edges[0], edges[-1]
        for listing in listings:
            first, ends = listing.first_at, listing.ends_at
            if first >= high or ends <= low or ends <= first:  # not standing in the windows
                continue
            windows = of_lot.get(listing.lot_key)
            if windows is None:
                lot = listing.lot
                wanted = (gpu is None or lot.gpu == gpu) and (deal is None or lot.deal is deal)
                windows = of_lot[listing.lot_key] = (
                    _windows_of(groups, lot, count) if wanted else []
                )
            if not windows:
                continue
            # Windows it stands in: from the one holding its first moment to the last one that
            # starts before it ends.
            begin = max(0, bisect.bisect_right(edges, first) - 1)
            stop = min(count - 1, bisect.bisect_left(edges, ends) - 1)
            _add_standing(windows, listing, edges, begin, stop)

    def add_posts(self, adverts: Iterable[Advert]) -> None:
        """The raw figures: each window's posts and posters per side, from posts in time order
        (after any added before), the window moving along with them."""
        edges, count, groups, lots = self.edges, self.count, self.groups, self.lots
        gpu, deal = self.gpu, self.deal
        low, high = edges[self.index], edges[-1]  # (the window moves on only)
        index, limit, slots = self.index, self.limit, self.slots
        get = slots.get
        for advert in adverts:
            if advert[2] < low:
                continue
            if advert[2] >= limit:  # into a later window (the last ends at `high`)
                if advert[2] >= high:
                    break
                index = bisect.bisect_right(edges, advert[2]) - 1
                limit = edges[index + 1]
                slots = {}
                get = slots.get
            side = get(advert[5], _UNSEEN)
            if side is _UNSEEN:
                lot = lots[advert[5]]
                side = None
                if (gpu is None or lot.gpu == gpu) and (deal is None or lot.deal is deal):
                    windows = _windows_of(groups, lot, count)
                    side = windows[index]
                    if side is None:
                        side = windows[index] = _Side()
                slots[advert[5]] = side
            if side is not None:
                side.messages.add(advert[1])
                side.posters.add(advert[3])
        self.index, self.limit, self.slots = index, limit, slots


def _windows_of(
    groups: dict[tuple[str, Deal, Side], list[_Side | None]], lot: Lot, count: int
) -> list[_Side | None]:
    key = (lot.gpu, lot.deal, lot.side)
    windows = groups.get(key)
    if windows is None:
        windows = groups[key] = [None] * count
    return windows


@dataclass(frozen=True, slots=True)
class MarketParties:
    """The whole market in a window: a party selling H100 and A100 is one seller."""

    sellers: int
    buyers: int
    posts: int  # messages advertising anything in the window, reposts and brokers' included


def market_parties(book: Listings, start: datetime, end: datetime) -> MarketParties:
    """Distinct parties with a listing standing in [start, end), per side, across all models."""
    low, high = micros(start), micros(end)
    parties: dict[Side, set[Party]] = {Side.SELL: set(), Side.BUY: set()}
    posts: set[int] = set()
    for listing in book.listings:
        if listing.stands_in(low, high):
            parties[listing.lot.side].add(listing.party)
    start = bisect.bisect_left(book.adverts, low, key=itemgetter(2))
    for advert in book.adverts[start:]:
        if advert[2] >= high:
            break
        posts.add(advert[1])
    return MarketParties(len(parties[Side.SELL]), len(parties[Side.BUY]), len(posts))


def standing_in(book: Listings, gpu: str, deal: Deal, week: Week) -> list[Standing]:
    """The listings behind one week's pulse of (gpu, deal), sellers first, each side by price."""
    edges = [micros(week.start), micros(week.end)]
    sides: dict[Side, list[_Side | None]] = {Side.SELL: [None], Side.BUY: [None]}
    standing = [listing for listing in book.of(gpu, deal) if listing.stands_in(*edges)]
    for listing in standing:
        _add_standing(sides[listing.lot.side], listing, edges, 0, 0)
    out = []
    for listing in standing:
        side = sides[listing.lot.side][0]
        assert side is not None
        entry = side.parties[listing.party]
        price = listing.price_before(min(edges[1], listing.ends_at))
        out.append(
            Standing(
                listing=listing,
                price=None if price is None else price[1],
                counted_price=entry[_P_LISTING] is listing,
                counted_quantity=entry[_Q_LISTING] is listing,
            )
        )
    out.sort(key=lambda s: (s.listing.lot.side is not Side.SELL, *_price_order(s), s.listing.id))
    return out


def _price_order(standing: Standing) -> tuple[bool, Decimal]:
    price = standing.price
    if price is None:
        return True, Decimal(0)
    return False, price if standing.listing.lot.side is Side.SELL else -price


# A party in a window, as a list (there are hundreds of thousands): when and what its
# quantity and its price are, and the listings they come from.
_Q_AT, _Q, _Q_LISTING, _P_AT, _P, _P_LISTING = range(6)


class _Side:
    """The parties on one side of a (gpu, deal) in one window, and the posts made in it."""

    __slots__ = ("messages", "parties", "posters")

    def __init__(self) -> None:
        self.parties: dict[Party, list[object]] = {}
        self.messages: set[int] = set()
        self.posters: set[Hashable] = set()

    def prices(self) -> list[Decimal]:
        """Its parties' prices, sorted (so that each quartile's own sort is one quick pass)."""
        prices = [p[_P] for p in self.parties.values() if p[_P] is not None]
        prices.sort()  # type: ignore[call-overload]
        return prices  # type: ignore[return-value]

    def quantity(self) -> int:
        return sum(p[_Q] or 0 for p in self.parties.values())  # type: ignore[misc]

    def counts(self) -> tuple[int, int, int]:
        """Its parties, posts and posters."""
        return len(self.parties), len(self.messages), len(self.posters)

    def summary(self) -> _Summary:
        return _Summary(self.prices(), self.quantity(), self.counts())


class _Summary:
    """A side of a week gone by, as its pulse reads it (`_Side`'s figures, without the
    parties, posts and posters behind them: a week of a busy market has a hundred thousand)."""

    __slots__ = ("_counts", "_prices", "_quantity")

    def __init__(self, prices: list[Decimal], quantity: int, counts: tuple[int, int, int]):
        self._prices, self._quantity, self._counts = prices, quantity, counts

    def prices(self) -> list[Decimal]:
        return self._prices

    def quantity(self) -> int:
        return self._quantity

    def counts(self) -> tuple[int, int, int]:
        return self._counts


class _LiveSide(_Side):
    """A side of the week under way (`LiveMarket`): its parties' prices kept sorted and their
    quantities summed as entries change, since a busy side has thousands of parties and a
    question a second."""

    __slots__ = ("sorted_prices", "total")

    def __init__(self) -> None:
        super().__init__()
        self.sorted_prices: list[Decimal] = []
        self.total = 0

    @classmethod
    def taking_over(cls, side: _Side) -> _LiveSide:
        live = cls()
        live.parties, live.messages, live.posters = side.parties, side.messages, side.posters
        live.recount()
        return live

    def recount(self) -> None:
        self.sorted_prices, self.total = _Side.prices(self), _Side.quantity(self)

    def prices(self) -> list[Decimal]:
        return self.sorted_prices

    def quantity(self) -> int:
        return self.total

    def take_out(self, party: Party) -> None:
        """Before `party`'s entry changes: its price and quantity out of the tallies."""
        entry = self.parties.get(party)
        if entry is None:
            return
        price = entry[_P]
        if price is not None:
            del self.sorted_prices[bisect.bisect_left(self.sorted_prices, price)]  # type: ignore[call-overload]
        self.total -= entry[_Q] or 0  # type: ignore[operator]

    def put_in(self, party: Party) -> None:
        """After `party`'s entry changed: its price and quantity into the tallies."""
        entry = self.parties.get(party)
        if entry is None:
            return
        price = entry[_P]
        if price is not None:
            bisect.insort(self.sorted_prices, price)  # type: ignore[type-var]
        self.total += entry[_Q] or 0  # type: ignore[operator]


def _add_standing(
    windows: list[_Side | None], listing: Listing, edges: Sequence[int], begin: int, stop: int
) -> None:
    """Add a listing to the windows begin..stop it stands in (its lot's side of each).

    In each window its party's quantity is that of the listing it advertised last, and its
    price the latest it stated on any of its listings, both before the window's end (or the
    listing's, if earlier)."""
    lot, party, ends = listing.lot, listing.party, listing.ends_at
    times, prices = listing.own_times, listing.own_prices
    for window in range(begin, stop + 1):
        until = edges[window + 1]
        if ends < until:
            until = ends
        # its last own post before `until` (the first always is: it stands), and the last
        # one with a price
        post = priced = bisect.bisect_left(times, until) - 1
        while priced >= 0 and prices[priced] is None:
            priced -= 1
        side = windows[window]
        if side is None:
            side = windows[window] = _Side()
        entry = side.parties.get(party)
        at = times[post]
        if entry is None:
            side.parties[party] = [
                at,
                lot.gpus,
                listing,
                times[priced] if priced >= 0 else -1,
                prices[priced] if priced >= 0 else None,
                listing if priced >= 0 else None,
            ]
            continue
        # The later post wins; at the same instant, the listing made first (whatever the
        # order listings come in: `_Tally` adds them as they are forgotten).
        then = entry[_Q_AT]
        if at > then or (at == then and listing.seq < entry[_Q_LISTING].seq):  # type: ignore[operator, union-attr]
            entry[_Q_AT], entry[_Q], entry[_Q_LISTING] = at, lot.gpus, listing
        if priced >= 0:
            at, then, before = times[priced], entry[_P_AT], entry[_P_LISTING]
            if at > then or (at == then and (before is None or listing.seq < before.seq)):  # type: ignore[operator, union-attr]
                entry[_P_AT], entry[_P], entry[_P_LISTING] = at, prices[priced], listing


_EMPTY = _Side()
_UNSEEN = _Side()  # a marker: a lot not looked up yet in this window
_HALF, _QUARTER, _THREE_QUARTERS = Fraction(1, 2), Fraction(1, 4), Fraction(3, 4)


def _pulse(
    gpu: str,
    deal: Deal,
    start: datetime,
    end: datetime,
    currency: Currency,
    thresholds: ReadingThresholds,
    sell: _Side | _Summary,
    buy: _Side | _Summary,
    previous_median: Decimal | None,
) -> Pulse:
    asks, bids = sell.prices(), buy.prices()
    best_ask, best_bid = min(asks, default=None), max(bids, default=None)
    median_ask = percentile(asks, _HALF)
    (sellers, sell_posts, sell_posters), (buyers, buy_posts, buy_posters) = (
        sell.counts(),
        buy.counts(),
    )
    return Pulse(
        gpu=gpu,
        deal=deal,
        unit=unit_for(deal),
        currency=currency,
        window_start=start,
        window_end=end,
        sellers=sellers,
        buyers=buyers,
        sell_offers=sell_posts,
        buy_offers=buy_posts,
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
        sell_posters=sell_posters,
        buy_posters=buy_posters,
    )


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


# -- the market as it goes -----------------------------------------------------------------------

# An advertisement or a withdrawal arriving behind others is read in place when nothing read
# after it in this last stretch of time could depend on it; else the market is built again.
RECENT = timedelta(hours=1)
# `LiveMarket.build` reads the posts this many at a time, and forgets what can change no more
# once it holds at least this many listings (and then twice as many as it kept).
BUILD_CHUNK = 20_000
FORGET_EVERY = 50_000
# Items in the order `_Builder.run` reads them: (at, message, 0, id) for an advertisement,
# (at, message, 1, id) for a withdrawal (it goes after the advertisements of its own message).
Key = tuple[int, int, int, int]


class LiveMarket:
    """The listings of a history kept up to date post by post, and the pulse of the ISO week
    under way (and of the week before), exactly as `pulses` computes them from the whole
    history: what `/price` and `/market` read, in milliseconds however long the history.

    `build` reads the whole history once. `feed` then takes new advertisements and
    withdrawals as they come: the builder reads them one at a time, and each updates the
    week's parties where `_add_standing` would have put them (a party's quantity and price
    are those of its latest own post, ties going to the listing made first). One that comes
    behind others (a late message, an import) is read in place only when nothing read after
    it could have gone otherwise; else `feed` says False and the caller builds it again.
    Listings that can no longer stand, be closed or relayed are forgotten as weeks go by.
    """

    def __init__(self, builder: _Builder, zone: tzinfo, week: Week, now: int):
        self.builder = builder
        self.zone = zone
        self.now = now  # the latest moment asked about: nothing after it is read yet
        self.cursor: Key = (-1, 0, 0, 0)  # the last item read, in reading order
        self.floor: Key = self.cursor  # what came before this was read in one pass (`build`)
        self.last_withdrawal = (-1, 0)  # (at, id) of the last withdrawal read
        self.recent: deque[tuple[Key, Hashable, Hashable, str | None, bool]] = deque()
        self._set_week(week)
        self.earlier: dict[tuple[str, Deal, Side], _Summary] = {}  # the week before's sides
        self.earlier_medians: dict[tuple[str, Deal], Decimal | None] = {}  # two weeks back
        self.medians: dict[tuple[str, Deal], Decimal | None] = {}  # the week before's asks
        self._cache: dict[tuple[object, ...], tuple[int, Pulse]] = {}

    def copy(self) -> LiveMarket:
        """A copy to go back to (`feed` on it leaves this one as it is)."""
        return self.freeze().thaw()

    def freeze(self, into: IO[bytes] | None = None) -> FrozenMarket:
        """This market packed into bytes (`FrozenMarket.thaw` makes it a market again): a
        copy kept to go back to, written into `into` (in memory when not given; the ledger
        gives a temporary file, so that a big one takes no memory while it waits)."""
        packed = io.BytesIO() if into is None else into
        with gc_paused():
            pickle.dump(_pack(self), packed, protocol=pickle.HIGHEST_PROTOCOL)
        return FrozenMarket(packed, self.builder.codes, self.cursor, self.now)

    def _set_week(self, week: Week) -> None:
        self.week = week
        self.start, self.end = micros(week.start), micros(week.end)
        self.sides: dict[tuple[str, Deal, Side], _LiveSide] = {}
        # per (gpu, deal), a count of its changes this week: a pulse worked out is kept until
        self.versions: dict[tuple[str, Deal], int] = {}

    @classmethod
    def build(
        cls,
        adverts: Iterable[Advert],
        withdrawals: Iterable[Withdrawal],
        *,
        codes: Codes,
        lifetime: timedelta,
        zone: tzinfo,
        now: datetime,
    ) -> LiveMarket:
        """The market of a history up to `now` (`adverts` in the ledger's (at, message, id)
        order, everything at or before `now`).

        The posts are read as they come (a cursor's rows will do: they need not all be in
        memory at once), and what can change no more is forgotten along the way, once added
        to the weeks the market reads (this one, the week before, and the median ask of the
        week before that): a year of posts is never all in memory, nor its listings."""
        with gc_paused():
            pending = sorted(withdrawals, key=attrgetter("at", "id"))
            last_withdrawal = pending[-1] if pending else None
            builder = _Builder(lifetime, pending, codes, keep_posts=False, index_all=True)
            week = Week.of(now, zone)
            market = cls(builder, zone, week, micros(now))
            weeks = [week.shifted(-2), week.shifted(-1), week]
            edges = [micros(w.start) for w in weeks] + [micros(week.end)]
            tally = _Tally(edges, codes.lots, posts_from=1)
            last, forget_at, rows = None, FORGET_EVERY, iter(adverts)
            while chunk := list(islice(rows, BUILD_CHUNK)):
                builder.read(chunk)
                tally.add_posts(chunk)
                last = chunk[-1]
                if len(builder.listings) >= forget_at:
                    # Ended, and out of a relay's reach: nothing to come can change it (a
                    # withdrawal closes only what stands, a relay only what was heard within
                    # the day). The week's ones stay: a withdrawal counts their party again.
                    settled, horizon = min(last[2], edges[2]), last[2] - builder.window
                    dropped = builder.forget(_may_change(settled, horizon))
                    tally.add_listings(dropped)
                    for listing in dropped:  # what stays of it in the weeks before: its `seq`
                        if listing.ends_at > edges[0]:
                            _hollow(listing)
                    del dropped
                    # Twice what is left, so that forgetting costs little per post.
                    forget_at = max(FORGET_EVERY, 2 * len(builder.listings))
            builder.finish()
            builder.withdrawals, builder.done = [], 0
            tally.add_listings(builder.listings)
            for group, (two_back, before, this) in tally.groups.items():
                if group[2] is Side.SELL and two_back is not None:
                    market.earlier_medians[group[:2]] = percentile(two_back.prices(), _HALF)
                if before is not None:
                    market.earlier[group] = before.summary()
                    if group[2] is Side.SELL:
                        market.medians[group[:2]] = percentile(before.prices(), _HALF)
                if this is not None:
                    market.sides[group] = _LiveSide.taking_over(this)
            if last is not None:
                market.cursor = (last[2], last[1], 0, last[0])
            if last_withdrawal is not None:
                market.last_withdrawal = (last_withdrawal.at, last_withdrawal.id)
                market.cursor = max(
                    market.cursor,
                    (last_withdrawal.at, last_withdrawal.message or 0, 1, last_withdrawal.id),
                )
            market.floor = market.cursor
            market._forget()
        return market

    # -- taking new items in ------------------------------------------------------------------

    def feed(
        self, adverts: Iterable[Advert], withdrawals: Iterable[Withdrawal], now: datetime
    ) -> bool:
        """Read new advertisements and withdrawals (all at or before `now`, which must not be
        earlier than any moment asked before); False when the market must be built again."""
        until = micros(now)
        if until < self.now:
            return False
        ordered = sorted(adverts, key=itemgetter(2, 1, 0))
        pending = sorted(withdrawals, key=attrgetter("at", "id"))
        done = 0
        with gc_paused():
            for advert in ordered:  # merged as `_Builder.run` merges them
                while done < len(pending) and (
                    pending[done].at,
                    pending[done].message or 0,
                ) < (advert[2], advert[1]):
                    if not self._withdrawal(pending[done]):
                        return False
                    done += 1
                if not self._advert(advert):
                    return False
            for withdrawal in pending[done:]:
                if not self._withdrawal(withdrawal):
                    return False
            while until >= self.end:
                self._roll()
        self.now = until
        return True

    def _advert(self, advert: Advert) -> bool:
        at = advert[2]
        while at >= self.end:
            self._roll()
        key: Key = (at, advert[1], 0, advert[0])
        lot = self.builder.codes.lots[advert[5]]
        if key <= self.cursor and not self._harmless(key, advert[5], advert[3], lot.gpu, False):
            return False
        listing, kind = self.builder.step(advert)
        side = self._side(lot)
        side.messages.add(advert[1])
        side.posters.add(advert[3])
        if kind != _RELAY:
            self._own_post(side, listing, at, listing.own_prices[-1])
        self._changed(lot)
        self._note(key, advert[5], advert[3], lot.gpu, False)
        return True

    def _withdrawal(self, withdrawal: Withdrawal) -> bool:
        at = withdrawal.at
        while at >= self.end:
            self._roll()
        key: Key = (at, withdrawal.message or 0, 1, withdrawal.id)
        late = key <= self.cursor or (at, withdrawal.id) <= self.last_withdrawal
        if late and not self._harmless(key, None, withdrawal.party, withdrawal.gpu, True):
            return False
        for listing in self.builder.withdraw_now(withdrawal):
            # It stood in the week until now, and still does, with the same posts, unless it
            # ends as the week begins or as one of its posts is made.
            if at > self.start and at > listing.own_times[-1]:
                continue
            side = self._side(listing.lot)
            self._recount(side, listing.party, listing.key, listing.lot)
            self._changed(listing.lot)
        self.last_withdrawal = max(self.last_withdrawal, (at, withdrawal.id))
        self._note(key, None, withdrawal.party, withdrawal.gpu, True)
        return True

    def _note(
        self, key: Key, lot: Hashable, party: Hashable, gpu: str | None, withdrawal: bool
    ) -> None:
        self.cursor = max(self.cursor, key)
        recent = self.recent
        recent.append((key, lot, party, gpu, withdrawal))
        horizon = self.cursor[0] - RECENT // _MICRO
        while recent and recent[0][0][0] < horizon:
            recent.popleft()

    def _harmless(
        self, key: Key, lot: Hashable, party: Hashable, gpu: str | None, withdrawal: bool
    ) -> bool:
        """Whether an item coming behind others can be read now with the same outcome as in
        its place: nothing read after it shares its lot or party, and no withdrawal or
        advertisement after it could have met it (same model, or a withdrawal naming none)."""
        if key <= self.floor or key[0] < self.start or key[0] < self.cursor[0] - RECENT // _MICRO:
            return False
        for later, other_lot, other_party, other_gpu, other_withdrawal in reversed(self.recent):
            if later <= key:
                break
            if withdrawal:
                if other_withdrawal or gpu is None or other_gpu == gpu:
                    return False
            elif other_withdrawal:
                if other_gpu is None or other_gpu == gpu or other_party == party:
                    return False
            elif other_lot == lot or other_party == party:
                return False
        return True

    # -- the week's parties ----------------------------------------------------------------

    def _changed(self, lot: Lot) -> None:
        group = (lot.gpu, lot.deal)
        self.versions[group] = self.versions.get(group, 0) + 1

    def _side(self, lot: Lot) -> _LiveSide:
        group = (lot.gpu, lot.deal, lot.side)
        side = self.sides.get(group)
        if side is None:
            side = self.sides[group] = _LiveSide()
        return side

    def _own_post(self, side: _LiveSide, listing: Listing, at: int, price: Decimal | None) -> None:
        """Its party's own post of `listing` at `at` (the latest of the listing): what
        `_add_standing` makes of it, in the week under way. Between two listings the later
        post wins, at the same instant the listing made first; a listing's own later post
        always does (its last post before the week's end)."""
        party = listing.party
        entry = side.parties.get(party)
        if entry is None:
            _add_standing([side], listing, (self.start, self.end), 0, 0)
            side.put_in(party)
            return
        quantity = _later(at, listing, entry[_Q_AT], entry[_Q_LISTING])  # type: ignore[arg-type]
        priced = price is not None and _later(at, listing, entry[_P_AT], entry[_P_LISTING])  # type: ignore[arg-type]
        if not (quantity or priced):
            return
        side.take_out(party)
        if quantity:
            entry[_Q_AT], entry[_Q], entry[_Q_LISTING] = at, listing.lot.gpus, listing
        if priced:
            entry[_P_AT], entry[_P], entry[_P_LISTING] = at, price, listing
        side.put_in(party)

    def _recount(self, side: _LiveSide, party: Party, key: Hashable, lot: Lot) -> None:
        """A party's entry in the week made again from its listings of the side."""
        side.take_out(party)
        side.parties.pop(party, None)
        edges = (self.start, self.end)
        for listing in self.builder.by_party.get(key, ()):
            other = listing.lot
            if (other.gpu, other.deal, other.side) == (lot.gpu, lot.deal, lot.side) and (
                listing.stands_in(self.start, self.end)
            ):
                _add_standing([side], listing, edges, 0, 0)
        side.put_in(party)

    def _roll(self) -> None:
        """Into the next week: this one's sides become the week before's."""
        medians = {
            group[:2]: percentile(side.prices(), _HALF)
            for group, side in self.sides.items()
            if group[2] is Side.SELL
        }
        self.earlier = {group: side.summary() for group, side in self.sides.items()}
        self.earlier_medians, self.medians = self.medians, medians
        self._set_week(self.week.shifted(1))
        self._cache.clear()
        self._forget()
        edges = (self.start, self.end)
        for listing in self.builder.listings:  # in the order they were made
            if listing.stands_in(self.start, self.end):
                _add_standing([self._side(listing.lot)], listing, edges, 0, 0)
        for side in self.sides.values():
            side.recount()

    def _forget(self) -> None:
        """Forget listings that ended before this week and can be relayed no more."""
        self.builder.forget(_may_change(self.start, self.cursor[0] - self.builder.window))

    # -- reading it --------------------------------------------------------------------------

    def pulses(
        self,
        week: Week,
        *,
        currency: Currency,
        thresholds: ReadingThresholds = DEFAULT_THRESHOLDS,
        gpu: str | None = None,
    ) -> list[Pulse] | None:
        """`pulses(book, [week], gpu=gpu)` for this week or the week before; None for any
        other week."""
        if week == self.week:
            sides, medians, start, end = self.sides, self.medians, week.start, week.end
            current = True
        elif week == self.week.shifted(-1):
            sides, medians, start, end = self.earlier, self.earlier_medians, week.start, week.end
            current = False
        else:
            return None
        out = []
        for g, d in sorted({(g, d) for g, d, _ in sides if gpu is None or g == gpu}):
            key = (current, g, d, currency, thresholds)
            version = self.versions.get((g, d), 0) if current else 0
            cached = self._cache.get(key)
            if cached is None or cached[0] != version:
                pulse = _pulse(
                    g,
                    d,
                    start,
                    end,
                    currency,
                    thresholds,
                    sides.get((g, d, Side.SELL), _EMPTY),
                    sides.get((g, d, Side.BUY), _EMPTY),
                    medians.get((g, d)),
                )
                cached = self._cache[key] = (version, replace(pulse, week=week.label))
            out.append(cached[1])
        out.sort(key=_busiest)
        return out


def _hollow(listing: Listing) -> None:
    """Empty a listing forgotten once added up (`LiveMarket.build`): the weeks before this
    one still hold it, but they only ever compare its `seq` again (a tie of two posts)."""
    for name in _HOLLOWED:
        delattr(listing, name)


_HOLLOWED = ("own_times", "own_prices", "relays", "closed_by", "ends_at", "first_at", "last_at")


def _may_change(ended: int, heard: int) -> Callable[[Listing], bool]:
    """Whether a listing may still change, or stand in a week the market reads: it ends after
    `ended`, or it was advertised at `heard` or later (a relay may still find it)."""
    return lambda listing: listing.ends_at > ended or listing.last_at >= heard


class FrozenMarket:
    """A `LiveMarket` packed into bytes (`LiveMarket.freeze`): what the ledger keeps to go
    back to when a row comes in that the market cannot read in place (an edit, a late post).
    `thaw` makes a market of it again."""

    __slots__ = ("codes", "cursor", "now", "packed", "tag")

    def __init__(self, packed: IO[bytes], codes: Codes, cursor: Key, now: int):
        self.packed, self.codes = packed, codes  # the file goes when this copy goes
        self.cursor = cursor  # the market's, when it was packed
        self.now = now
        self.tag: object = None  # what its keeper notes with it (the ledger: the rows read)

    def thaw(self) -> LiveMarket:
        """A market as this one was when packed (each call a new one)."""
        self.packed.seek(0)
        with gc_paused():
            return _unpack(_Reader(self.packed).load(), self.codes)

    def write_to(self, target: IO[bytes]) -> None:
        """Copy the packed market into `target` (a file, or an SQLite blob of `size` bytes)."""
        self.packed.seek(0)
        while chunk := self.packed.read(_COPY_CHUNK):
            target.write(chunk)

    @property
    def size(self) -> int:
        """Its length in bytes, packed."""
        return self.packed.seek(0, 2)

    @classmethod
    def read_from(
        cls,
        source: IO[bytes],
        codes: Codes,
        cursor: Key,
        now: int,
        into: IO[bytes] | None = None,
    ) -> FrozenMarket:
        """A packed market as `write_to` wrote it (its cursor and `now` kept beside it),
        copied into `into` (as `LiveMarket.freeze`). It is checked only as it is thawed,
        which raises `pickle.UnpicklingError` (or another error) for anything but a market."""
        packed = io.BytesIO() if into is None else into
        while chunk := source.read(_COPY_CHUNK):
            packed.write(chunk)
        return cls(packed, codes, cursor, now)


_COPY_CHUNK = 1 << 20


class _Reader(pickle.Unpickler):
    """Unpacks a packed market and nothing else: of what can be named, only the classes a
    market holds (a market saved in a ledger file is read back only as data)."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("builtins", "getattr"):
            return _zone_getattr  # how a `ZoneInfo` unpacks itself
        if (module, name) not in _PACKED_CLASSES:
            raise pickle.UnpicklingError(f"not part of a market: {module}.{name}")
        return super().find_class(module, name)


_PACKED_CLASSES = {
    ("gpudesk.market.listings", name)
    for name in ("Closing", "Lot", "Week", "Withdrawal", "_Everything", "_Summary")
}
_PACKED_CLASSES |= {("gpudesk.market.offer", "Deal"), ("gpudesk.market.offer", "Side")}
_PACKED_CLASSES |= {("array", "_array_reconstructor"), ("array", "array")}
_PACKED_CLASSES |= {("collections", "deque"), ("decimal", "Decimal")}
_PACKED_CLASSES |= {("datetime", "timedelta"), ("datetime", "timezone")}
_PACKED_CLASSES |= {("zoneinfo", "ZoneInfo")}


def _zone_getattr(owner: object, name: str) -> object:
    if owner is ZoneInfo and name == "_unpickle":
        return ZoneInfo._unpickle  # type: ignore[attr-defined]
    raise pickle.UnpicklingError(f"not part of a market: {owner!r}.{name}")


# -- packing a market ----------------------------------------------------------------------------
# A market packed as objects (pickle's way) takes, while it is written, several times its own
# size again: pickle remembers every object it wrote. So its listings go in columns (arrays of
# times and ids, prices as one text) and every reference to one as its number; what can be
# worked out again from them is not packed at all: each party's latest listing per lot, and
# the week's parties (`_add_standing`, as `LiveMarket._roll` does).

# What the market and its builder hold besides what is packed in columns or worked out again.
_MARKET_OWN = ("builder", "sides", "_cache")
_BUILDER_OWN = ("codes", "listings", "own", "relayable", "lately", "by_party", "relayed")
_BUILDER_OWN += ("by_post", "by_offer")


def _pack(market: LiveMarket) -> tuple[object, ...]:
    builder = market.builder
    assert not builder.keep_posts and builder.closed is None, "a live market reads lean"
    listings = builder.listings
    number = {id(listing): n for n, listing in enumerate(listings)}
    ints = {name: array("q") for name in ("first", "last", "ends", "id", "seq", "posts", "at")}
    ints.update((name, array("q")) for name in ("relays", "relay_at"))
    keys, lots, variants, closings, prices = [], [], [], [], []
    relay_prices, relay_variants, relay_posters = [], [], []
    for listing in listings:
        ints["first"].append(listing.first_at)
        ints["last"].append(listing.last_at)
        ints["ends"].append(listing.ends_at)
        ints["id"].append(listing.id)
        ints["seq"].append(listing.seq)
        ints["posts"].append(len(listing.own_times))
        ints["at"].extend(listing.own_times)
        prices.extend(listing.own_prices)
        keys.append(listing.key)
        lots.append(listing.lot_key)
        variants.append(listing.variant)
        closings.append(listing.closed_by)
        ints["relays"].append(len(listing.relays))
        for at, price, variant, poster in listing.relays:
            ints["relay_at"].append(at)
            relay_prices.append(price)
            relay_variants.append(variant)
            relay_posters.append(poster)

    def numbered(found: Iterable[Listing]) -> list[int]:
        return [number[id(listing)] for listing in found]

    def entry(found: Any) -> object:
        kind = type(found)
        if kind is Listing:
            return number[id(found)]
        if kind is tuple:
            return (found[0], number[id(found[1])])
        return [entry(one) for one in found]

    state = {k: v for k, v in market.__dict__.items() if k not in _MARKET_OWN}
    sides = {group: (side.messages, side.posters) for group, side in market.sides.items()}
    fields = {k: v for k, v in builder.__dict__.items() if k not in _BUILDER_OWN}
    indexes = {
        name: {key: numbered(found) for key, found in getattr(builder, name).items()}
        for name in ("relayable", "lately", "by_party", "relayed")
    }
    posts = {
        name: {key: entry(found) for key, found in getattr(builder, name).items()}
        for name in ("by_post", "by_offer")
    }
    columns = (ints, keys, lots, variants, closings, _text(prices))
    relays = (_text(relay_prices), relay_variants, relay_posters)
    return state, sides, fields, indexes, posts, columns, relays


def _unpack(packed: Any, codes: Codes) -> LiveMarket:
    state, sides, fields, indexes, posts, columns, relays = packed
    ints, keys, lots, variants, closings, prices_text = columns
    relay_prices, relay_variants, relay_posters = relays
    prices = _untext(prices_text, len(ints["at"]))
    relay_prices = _untext(relay_prices, len(ints["relay_at"]))
    parties, lot_of = codes.parties, codes.lots
    listings: list[Listing] = []
    post = relay = 0
    first, last, ends, ids, seqs = (ints[name] for name in ("first", "last", "ends", "id", "seq"))
    counts, times, relay_counts, relay_at = (ints[n] for n in ("posts", "at", "relays", "relay_at"))
    same = fields["same"]
    for n, key in enumerate(keys):
        listing = object.__new__(Listing)
        key = same.setdefault(key, key)
        listing.id, listing.key, listing.party = ids[n], key, parties[key]
        listing.lot_key = same.setdefault(lots[n], lots[n])
        listing.lot = lot_of[listing.lot_key]
        at = listing.first_at = first[n]
        listing.last_at = at if last[n] == at else last[n]  # one object where they agree
        listing.ends_at = ends[n]
        listing.adverts, listing.chats = _NO_POSTS, _NO_CHATS  # type: ignore[assignment]
        listing.closed_by, listing.variant = closings[n], variants[n]
        count = counts[n]
        listing.own_times = times[post : post + count].tolist()
        listing.own_times[0] = at
        listing.own_prices = prices[post : post + count]
        listing.price, listing.price_key = listing.own_prices[0], None
        post += count
        count = relay_counts[n]
        listing.relays = _NO_RELAYS  # type: ignore[assignment]
        if count:
            listing.relays = [
                (relay_at[r], relay_prices[r], relay_variants[r], relay_posters[r])
                for r in range(relay, relay + count)
            ]
            relay += count
        listing.seq = seqs[n]
        listings.append(listing)

    def entry(found: Any) -> object:
        kind = type(found)
        if kind is int:
            return listings[found]
        if kind is tuple:
            return (found[0], listings[found[1]])
        return [entry(one) for one in found]

    builder = object.__new__(_Builder)
    builder.__dict__.update(fields)
    builder.codes, builder.listings = codes, listings
    # each party's latest listing of each lot (later ones of the same lot were made later)
    builder.own = {(listing.key, listing.lot_key): listing for listing in listings}
    for name, found in indexes.items():
        setattr(builder, name, {key: [listings[n] for n in at] for key, at in found.items()})
    builder.lately = {lot: OrderedDict.fromkeys(found) for lot, found in builder.lately.items()}
    for name, found in posts.items():
        setattr(builder, name, {key: entry(at) for key, at in found.items()})
    market = object.__new__(LiveMarket)
    market.__dict__.update(state)
    market.builder, market._cache, market.sides = builder, {}, {}
    for group, (messages, posters) in sides.items():
        side = market.sides[group] = _LiveSide()
        side.messages, side.posters = messages, posters
    edges = (market.start, market.end)
    for listing in listings:  # the week's parties, as `_roll` counts them
        if listing.stands_in(*edges):
            _add_standing([market._side(listing.lot)], listing, edges, 0, 0)
    for side in market.sides.values():
        side.recount()
    return market


def _text(prices: list[Decimal | None]) -> str:
    """Prices as one text, a line each (an empty line for none): exact, and one object."""
    return "\n".join("" if price is None else str(price) for price in prices)


def _untext(text: str, count: int) -> list[Decimal | None]:
    """The `count` prices `_text` made `text` of."""
    if not count:
        return []
    same: dict[str, Decimal | None] = {"": None}  # one object per price, as when read
    return [
        same[line] if line in same else same.setdefault(line, Decimal(line))
        for line in text.split("\n")
    ]


def _later(at: int, listing: Listing, then: int, before: Listing | None) -> bool:
    """Whether a post of `listing` at `at` takes over from one of `before` at `then`."""
    if at != then:
        return at > then
    return before is None or listing is before or listing.seq < before.seq
