"""Watches: a member's standing order, "tell me when the deal I want shows up" (issue 10).

A watch is read from the member's own words, in either language and any price unit:

    /watch H100 rent <= 1.6 USD/GPU-hr in Beijing >= 32 GPUs
    盯 H100 月租 6w/台以下 北京
    /watch sell H100 >= 2.2 USD/GPU-hr digest hourly

`parse_watch` reads it as the offer the member would post (a watch for sellers at 6w a server
a month is the bid "收 H100 月租 6w/台"): the comparison words and the delivery options are
taken out, and what remains goes through `parse_offers` itself, so model, place, counts, price,
unit and currency are read exactly as they are in a post, and the limit is normalised by the
same `unit_price` as every offer the watch is compared with. Side is implied: a limit from
below (`<=`, `以下`) means the member buys or rents and watches sellers; from above (`>=`,
`以上`) or an explicit `sell`/`出租`, that they sell and watch buyers.

`watch_matches` decides whether a posted offer meets a watch, exactly. `WatchBook` holds the
running watches in memory, indexed so that a new offer is checked against 100,000 of them in
about a millisecond: by GPU, side, deal and place, then sorted by limit, so only the watches
whose limit the price meets are looked at. Pure: no storage, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from operator import itemgetter
from typing import Generic, TypeVar

from gpudesk.market.book import PostedOffer
from gpudesk.market.catalog import resolve_model
from gpudesk.market.match import compatible
from gpudesk.market.normalise import DEFAULT_GPUS_PER_SERVER, Valuation, gpu_count, unit_price
from gpudesk.market.offer import Currency, Deal, Offer, Side
from gpudesk.market.parse import parse_offers
from gpudesk.market.places import enclosing

__all__ = [
    "Delivery",
    "Watch",
    "WatchBook",
    "WatchError",
    "WatchPolicy",
    "digest_due",
    "next_hour",
    "parse_watch",
    "watch_matches",
]


class Delivery(StrEnum):
    """How a member hears of hits: one message each, or a digest every hour or every day."""

    EACH = "each"
    HOURLY = "hourly"
    DAILY = "daily"


@dataclass(frozen=True, slots=True)
class WatchPolicy:
    """The desk's rules for watches (`[watch]` in config.toml)."""

    days: int = 30  # a watch lapses this long after it is set (or renewed)
    remind_days: int = 2  # ...with one reminder this long before
    max_per_member: int = 10
    alerts_per_hour: int = 10  # direct messages per member per hour; the rest wait for a summary
    digest_hour: int = 9  # local hour of the daily digest, in the desk's time zone
    digest_lines: int = 20  # offers listed in one digest; the rest are counted

    @property
    def lifetime(self) -> timedelta:
        return timedelta(days=self.days)

    @property
    def remind_before(self) -> timedelta:
        return timedelta(days=self.remind_days)


@dataclass(frozen=True, slots=True)
class Watch:
    """A standing order, with its price limit already normalised to the desk's yardstick.

    `side` is the side of the offers it looks for: SELL when the member wants to buy or rent
    (the limit is a ceiling), BUY when they sell (the limit is a floor). `limit` is per
    GPU-hour for rent and per GPU for sale, in `currency` (the desk's); None for any price,
    and then `deal` may be None too (rent or sale). `scope` is the (platform, chat id) it is
    limited to, None for every group. `id` and `owner` (platform, user id) are set once stored;
    the owner's own offers never match.
    """

    gpu: str
    side: Side
    deal: Deal | None = None
    variant: str | None = None
    memory_gb: int | None = None
    limit: Decimal | None = None
    currency: Currency = Currency.CNY
    place: str | None = None
    min_gpus: int | None = None
    scope: tuple[str, str] | None = None
    delivery: Delivery = Delivery.EACH
    id: int = 0
    owner: tuple[str, str] | None = None


class WatchError(ValueError):
    """A watch that cannot be read. `reason` names what is wrong (the handlers word it in the
    member's language); `values` fill in the wording."""

    def __init__(self, reason: str, **values: str) -> None:
        super().__init__(f"{reason}: {values}" if values else reason)
        self.reason = reason
        self.values = values


def watch_matches(watch: Watch, posted: PostedOffer) -> bool:
    """Whether `posted` is what `watch` waits for: the wanted side of the same GPU (and deal,
    variant and memory, when the watch states them), not the member's own, in scope, at the
    place, with at least the GPUs asked for (a post that does not say how many does not
    qualify), and priced within the limit (an unpriced post does not qualify for a limit)."""
    offer = posted.offer
    if offer.gpu != watch.gpu or offer.side is not watch.side:
        return False
    if watch.deal is not None and offer.deal is not watch.deal:
        return False
    if watch.variant is not None or watch.memory_gb is not None:
        # The member's side as the offer they would post: the spec rule of matching.
        wanted = Offer(
            side=watch.side.opposite,
            deal=offer.deal,
            gpu=watch.gpu,
            variant=watch.variant,
            memory_gb=watch.memory_gb,
        )
        if not compatible(wanted, offer):
            return False
    if watch.owner is not None and posted.party == watch.owner:
        return False
    if watch.scope is not None and (posted.platform, posted.chat_id) != watch.scope:
        return False
    if watch.place is not None and (
        offer.location is None or watch.place not in enclosing(offer.location)
    ):
        return False  # a watch on a region covers its cities
    if watch.min_gpus is not None and (posted.gpus is None or posted.gpus < watch.min_gpus):
        return False
    if watch.limit is None:
        return True
    if posted.unit_price is None:
        return False
    if watch.side is Side.SELL:
        return posted.unit_price <= watch.limit
    return posted.unit_price >= watch.limit


# -- the book of running watches ---------------------------------------------------------------

T = TypeVar("T")
_INFINITY = float("inf")
_SLACK = 1e-9  # floats only narrow the search; the exact Decimal test decides


@dataclass(slots=True)
class _Shelf(Generic[T]):
    """The watches of one (gpu, side, deal, place), sorted by (limit, id); no limit is +inf
    for a ceiling (every ask is under it) and -inf for a floor."""

    keys: list[tuple[float, int]] = field(default_factory=list)
    watches: list[Watch] = field(default_factory=list)
    expires: list[datetime] = field(default_factory=list)
    items: list[T] = field(default_factory=list)


class WatchBook(Generic[T]):
    """Running watches in memory, each with its expiry and an item of the caller's (the ledger
    keeps its `WatchRecord` there), answering one question: which does a new offer meet?"""

    __slots__ = ("_shelves", "_where")

    def __init__(self) -> None:
        self._shelves: dict[tuple[str, Side, Deal | None, str | None], _Shelf[T]] = {}
        self._where: dict[int, tuple[tuple[str, Side, Deal | None, str | None], float]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, watch_id: object) -> bool:
        return watch_id in self._where

    def add(self, watch: Watch, expires_at: datetime, item: T) -> None:
        """Put `watch` (by its id) on the book, in place of what it was before."""
        self.discard(watch.id)
        key = (watch.gpu, watch.side, watch.deal, watch.place)
        shelf = self._shelves.setdefault(key, _Shelf())
        bound = _bound(watch)
        at = bisect_left(shelf.keys, (bound, watch.id))
        shelf.keys.insert(at, (bound, watch.id))
        shelf.watches.insert(at, watch)
        shelf.expires.insert(at, expires_at)
        shelf.items.insert(at, item)
        self._where[watch.id] = (key, bound)

    def discard(self, watch_id: int) -> None:
        found = self._where.pop(watch_id, None)
        if found is None:
            return
        key, bound = found
        shelf = self._shelves[key]
        at = bisect_left(shelf.keys, (bound, watch_id))
        for column in (shelf.keys, shelf.watches, shelf.expires, shelf.items):
            del column[at]
        if not shelf.keys:
            del self._shelves[key]

    def meeting(self, posted: PostedOffer, now: datetime) -> list[T]:
        """The items of the watches running at `now` that `posted` meets, by watch id."""
        offer = posted.offer
        price = posted.unit_price
        ceilings = offer.side is Side.SELL  # sellers meet buyers' ceilings; buyers, floors
        places = (None,) if offer.location is None else (*enclosing(offer.location), None)
        found: list[tuple[int, T]] = []
        for deal in (offer.deal, None):
            for place in places:
                shelf = self._shelves.get((offer.gpu, offer.side, deal, place))
                if shelf is None:
                    continue
                lo, hi = _span(shelf.keys, price, ceilings)
                watches, expires, items = shelf.watches, shelf.expires, shelf.items
                for at in range(lo, hi):
                    watch = watches[at]
                    if expires[at] > now and watch_matches(watch, posted):
                        found.append((watch.id, items[at]))
        found.sort(key=itemgetter(0))
        return [item for _, item in found]


def _bound(watch: Watch) -> float:
    if watch.limit is not None:
        return float(watch.limit)
    return _INFINITY if watch.side is Side.SELL else -_INFINITY


def _span(keys: list[tuple[float, int]], price: Decimal | None, ceilings: bool) -> tuple[int, int]:
    """The stretch of a shelf whose limits `price` may meet (None: only watches with none)."""
    if ceilings:  # limit >= price
        at = _INFINITY if price is None else float(price) * (1 - _SLACK)
        return bisect_left(keys, (at, -1)), len(keys)
    at = -_INFINITY if price is None else float(price) * (1 + _SLACK)
    return 0, bisect_right(keys, (at, _LAST_ID))


_LAST_ID = 1 << 62


# -- reading a watch -------------------------------------------------------------------------------

_BELOW, _ABOVE = "below", "above"
# A watch is a line; past this it is not a watch, and reading it would only cost time.
MAX_WATCH_CHARS = 300


def _words(spellings: str) -> str:
    """English words as whole words; symbols and Chinese as they are."""
    return "|".join(
        rf"(?<![a-z]){re.escape(w)}(?![a-z])" if w[0].isascii() and w[0].isalpha() else re.escape(w)
        for w in sorted(spellings.split("|"), key=len, reverse=True)
    )


# Limits said before the number ("<= 1.6", "at most $2") and after it ("6w/台以下", "2 max").
_BEFORE = {
    _BELOW: "<=|≤|⩽|<|below|under|at most|no more than|max|maximum|up to|低于|不超过|不高于"
    "|小于|最多|最高",
    _ABOVE: ">=|≥|⩾|>|above|over|at least|no less than|min|minimum|高于|不低于|大于|至少|最少"
    "|最低|起码",
}
_AFTER = {
    _BELOW: "以下|以内|之内|及以下|或以下|或更低|or less|or lower|or below|or under|or cheaper|max",
    _ABOVE: "以上|及以上|或以上|或更高|or more|or higher|or above|+|min",
}
_COMPARATOR = re.compile(
    "|".join(
        f"(?P<{where}_{way}>{_words(table[way])})"
        for where, table in (("before", _BEFORE), ("after", _AFTER))
        for way in (_BELOW, _ABOVE)
    )
)
# A number with the currency that may lead it; not the digits of a name such as "h100".
_NUMBER = r"(?:(?:us\$|\$|¥|(?<![a-z])(?:usd|rmb|cny))\s?|(?<![a-z0-9.,]))[0-9]+(?:[.,][0-9]+)*"
_NUMBER_AHEAD = re.compile(r"\s*(" + _NUMBER + ")")
_NUMBER_BEHIND = re.compile("(" + _NUMBER + r")[^0-9]{0,16}$")
# A count right after its digits: "32 GPUs", "4台", "8卡" (not "卡时", a GPU-hour).
_COUNT = re.compile(
    r"\s*\+?\s*(?:(?P<gpu>gpus?|cards?|卡(?!时|小时)|张|片)|(?P<server>servers?|nodes?|box(?:es)?"
    r"|machines?|台|节点))(?![a-z])"
)
_MODE = re.compile(
    r"(?<![a-z])(?:digest|summary)\s*:?\s*(?P<en>hourly|daily|each|instant|off)?(?![a-z])"
    r"|(?<![a-z])(?P<en2>hourly|daily)\s+(?:digest|summary)(?![a-z])"
    r"|(?P<zh>每小时|每天|每日|按小时|按天|按日|逐条)?\s*(?:汇总|摘要)"
)
_MODE_WORDS = {
    "hourly": Delivery.HOURLY,
    "每小时": Delivery.HOURLY,
    "按小时": Delivery.HOURLY,
    "daily": Delivery.DAILY,
    "每天": Delivery.DAILY,
    "每日": Delivery.DAILY,
    "按天": Delivery.DAILY,
    "按日": Delivery.DAILY,
    "each": Delivery.EACH,
    "instant": Delivery.EACH,
    "off": Delivery.EACH,
    "逐条": Delivery.EACH,
}
_HERE = re.compile(
    r"(?<![a-z])(?:only\s+)?(?:here|in\s+this\s+group|this\s+group)(?:\s+only)?(?![a-z])"
    r"|仅限本群|仅本群|只看本群|本群"
)
# "sale" is how a watch says it, though no post does: the parser knows "purchase".
_SALE = re.compile(r"(?<![a-z])(?<!for )sale(?![a-z])")
# Appended to the words to learn what they leave open: `parse_offers` takes the first strong
# intent and deal word it finds, so one of these only counts when the member said none.
_PROBE_SIDE = {Side.BUY: "wtb", Side.SELL: "wts"}
_PROBE_DEAL = {Deal.RENT: "rental", Deal.SALE: "purchase"}


@dataclass(slots=True)
class _Limits:
    """What the comparison words said: the price direction and an explicit GPU minimum."""

    direction: str | None = None
    min_count: tuple[int, bool] | None = None  # (n, counted in servers)


def parse_watch(text: str, valuation: Valuation, *, here: tuple[str, str] | None = None) -> Watch:
    """The watch that `text` (the words after `/watch` or `盯`) describes.

    `here` is the (platform, chat id) the member writes in, for `here`/`本群`; None in a
    private chat. Raises `WatchError` saying what is missing or contradictory.
    """
    if len(text) > MAX_WATCH_CHARS:
        raise WatchError("too_long", limit=str(MAX_WATCH_CHARS))
    words = unicodedata.normalize("NFKC", text).lower().strip()
    delivery, words = _take_delivery(words)
    scoped, words = _take_here(words)
    if scoped and here is None:
        raise WatchError("here_private")
    limits, words = _take_limits(words)
    words = " ".join(_SALE.sub("purchase", words).split())
    if not words or resolve_model(words) is None:
        raise WatchError("no_model", query=" ".join(text.split()))

    as_buyer = _read(words, Side.BUY, Deal.RENT)
    as_seller = _read(words, Side.SELL, Deal.RENT)
    stated_side = as_buyer.side if as_buyer.side is as_seller.side else None
    implied_side = Side.SELL if limits.direction == _ABOVE else Side.BUY
    member = stated_side or implied_side
    if limits.direction is not None and member is not implied_side:
        raise WatchError("side_conflict")

    for_rent, for_sale = _read(words, member, Deal.RENT), _read(words, member, Deal.SALE)
    deal = for_rent.deal if for_rent.deal is for_sale.deal else None
    offer = for_sale if deal is Deal.SALE else for_rent
    limit: Decimal | None = None
    if offer.price is not None:
        if deal is None:
            raise WatchError("no_deal")
        limit = unit_price(offer, valuation.currency, valuation.usd_cny)
        if limit is None:
            raise WatchError("bad_unit")
    elif limits.direction is not None:
        raise WatchError("no_price")

    min_gpus = gpu_count(offer)
    if limits.min_count is not None:
        count, servers = limits.min_count
        per_server = offer.gpus_per_server or DEFAULT_GPUS_PER_SERVER
        min_gpus = count * per_server if servers else count
    return Watch(
        gpu=offer.gpu,
        side=member.opposite,
        deal=deal,
        variant=offer.variant,
        memory_gb=offer.memory_gb,
        limit=limit,
        currency=valuation.currency,
        place=offer.location,
        min_gpus=min_gpus,
        scope=here if scoped else None,
        delivery=delivery,
    )


def _read(words: str, side: Side, deal: Deal) -> Offer:
    """The words as an offer, with `side` and `deal` filling in only what they leave open."""
    offers = parse_offers(f"{words} {_PROBE_SIDE[side]} {_PROBE_DEAL[deal]}")
    if not offers:
        raise WatchError("unreadable")
    gpus = list(dict.fromkeys(offer.gpu for offer in offers))
    if len(gpus) > 1:
        raise WatchError("two_models", gpus=", ".join(gpus))
    return offers[0]


def _take_delivery(words: str) -> tuple[Delivery, str]:
    found = _MODE.search(words)
    if found is None:
        return Delivery.EACH, words
    word = found.group("en") or found.group("en2") or found.group("zh")
    delivery = _MODE_WORDS[word] if word else Delivery.DAILY  # a bare "digest" is daily
    return delivery, _cut(words, found.start(), found.end())


def _take_here(words: str) -> tuple[bool, str]:
    found = _HERE.search(words)
    if found is None:
        return False, words
    return True, _cut(words, found.start(), found.end())


def _take_limits(words: str) -> tuple[_Limits, str]:
    """Take out the comparison words. A compared count becomes the minimum of GPUs; a compared
    price gets the word "price" before it, so a bare number after `<=` still reads as a price."""
    limits = _Limits()
    while (found := _COMPARATOR.search(words)) is not None:
        where, _, way = (found.lastgroup or "").partition("_")
        said_before = where == "before"
        number = _NUMBER_AHEAD.match(words, found.end()) if said_before else None
        if number is None:
            said_before = False
            number = _NUMBER_BEHIND.search(words, 0, found.start())
        if number is None:
            raise WatchError("no_price", word=found.group(0))
        start, end = number.start(1), number.end(1)
        count = _COUNT.match(words, end)
        if count is not None and words[start:end].isdigit():
            if way == _BELOW:
                raise WatchError("max_count")
            limits.min_count = (int(words[start:end]), count.group("server") is not None)
            # The count is ours now: drop it with its comparison, so the parser does not read
            # a small "8卡" as GPUs per server instead.
            words = _cut(words, min(start, found.start()), max(count.end(), found.end()))
            continue
        if limits.direction is not None:
            raise WatchError("two_limits")
        limits.direction = way
        if said_before:  # "<= 1.6": the comparison becomes the price word
            words = f"{words[: found.start()]} price {words[found.end() :]}"
        else:  # "1.6以下": the price word goes before the number
            words = f"{words[:start]} price {words[start : found.start()]} {words[found.end() :]}"
    return limits, words


def _cut(words: str, start: int, end: int) -> str:
    return f"{words[:start]} {words[end:]}"


# -- when digests are due --------------------------------------------------------------------------


def next_hour(now: datetime, zone: tzinfo) -> datetime:
    """The next full hour after `now` on the clocks of `zone`, in UTC."""
    local = now.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    return (local + timedelta(hours=1)).astimezone(UTC)


def digest_due(delivery: Delivery, now: datetime, zone: tzinfo, digest_hour: int) -> datetime:
    """When a hit found at `now` goes out: the next full hour for an hourly digest, the next
    `digest_hour` o'clock for a daily one (and at once for `EACH`), in UTC."""
    if delivery is Delivery.EACH:
        return now
    if delivery is Delivery.HOURLY:
        return next_hour(now, zone)
    local = now.astimezone(zone)
    due = local.replace(hour=digest_hour, minute=0, second=0, microsecond=0)
    if due <= local:
        due += timedelta(days=1)
    return due.astimezone(UTC)
