"""Matching: which posted offers answer a new one, and which posts are the same offer again.

`find_matches` ranks counterparties for a new offer: compatible spec, another party, and a price
that meets (an ask at most `tolerance` above the bid). `is_repost` spots a poster repeating
their own offer; `looks_alike` spots a broker reposting someone else's inventory, so supply can
be counted with and without them. Pure functions over `PostedOffer`: no storage, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gpudesk.market.book import PostedOffer
from gpudesk.market.offer import Offer, Side

# Two prices this close are the same price: posters round, and USD offers pass through a rate.
SAME_PRICE = Decimal("0.01")
# A broker relays a post within the day; after that it is more likely fresh stock.
LOOKALIKE_WINDOW = timedelta(hours=24)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    tolerance: Decimal = Decimal("0.05")  # an ask up to this fraction above the bid still matches
    limit: int = 3


@dataclass(frozen=True, slots=True)
class Match:
    """A counterparty for the new offer."""

    offer: PostedOffer
    priced: bool  # both sides state a unit price, so `gap` is known
    gap: Decimal | None  # ask minus bid per unit: ≤ 0 meets the bid, > 0 is within tolerance


def compatible(a: Offer, b: Offer) -> bool:
    """Opposite sides of the same gpu and deal, with no stated variant or memory in conflict."""
    return (
        a.side is b.side.opposite
        and a.gpu == b.gpu
        and a.deal is b.deal
        and _agree(a.variant, b.variant)
        and _agree(a.memory_gb, b.memory_gb)
    )


def find_matches(
    new: PostedOffer, candidates: Iterable[PostedOffer], policy: MatchPolicy = MatchPolicy()
) -> list[Match]:
    """The best `policy.limit` counterparties for `new`, best first.

    Rank: priced before unpriced; then price (cheapest ask for a buyer, highest bid for a
    seller); then the new offer's own location; then newest; then the closest number of GPUs.
    """
    matches = []
    for other in candidates:
        if other.party == new.party or not compatible(new.offer, other.offer):
            continue
        ask, bid = (new, other) if new.offer.side is Side.SELL else (other, new)
        if ask.unit_price is None or bid.unit_price is None:
            matches.append(Match(other, priced=False, gap=None))
        elif ask.unit_price <= bid.unit_price * (1 + policy.tolerance):
            matches.append(Match(other, priced=True, gap=ask.unit_price - bid.unit_price))
    matches.sort(key=lambda match: _rank(new, match))
    return matches[: policy.limit]


def is_repost(new: PostedOffer, old: PostedOffer) -> bool:
    """The same party posting the same offer again (the caller decides how far back to look)."""
    return (
        new.party == old.party
        and _spec(new.offer) == _spec(old.offer)
        and new.gpus == old.gpus
        and same_price(new.unit_price, old.unit_price)
    )


def looks_alike(a: PostedOffer, b: PostedOffer) -> bool:
    """Two parties posting what is probably one lot of inventory (a broker relaying it).

    Same gpu, side, deal, GPUs, location and price within a day of each other. An unstated
    quantity or place never makes a look-alike: two bare "selling H100" posts stay two sellers.
    """
    x, y = a.offer, b.offer
    return (
        a.party != b.party
        and (x.gpu, x.side, x.deal) == (y.gpu, y.side, y.deal)
        and _agree(x.variant, y.variant)
        and _agree(x.memory_gb, y.memory_gb)
        and a.gpus is not None
        and a.gpus == b.gpus
        and x.location is not None
        and x.location == y.location
        and same_price(a.unit_price, b.unit_price)
        and abs(a.posted_at - b.posted_at) <= LOOKALIKE_WINDOW
    )


def same_price(a: Decimal | None, b: Decimal | None) -> bool:
    """Within 1% of the lower price (so 100 and 101 are the same); two unpriced posts agree."""
    if a is None or b is None:
        return a is b
    return abs(a - b) <= SAME_PRICE * min(a, b)


def _agree(a: object, b: object) -> bool:
    """Equal, or one of them unstated."""
    return a is None or b is None or a == b


def _spec(offer: Offer) -> tuple[object, ...]:
    return (offer.side, offer.deal, offer.gpu, offer.variant, offer.memory_gb)


def _rank(new: PostedOffer, match: Match) -> tuple[object, ...]:
    other = match.offer
    if match.priced:
        assert other.unit_price is not None
        # A buyer wants the cheapest ask first, a seller the highest bid first.
        price = other.unit_price if new.offer.side is Side.BUY else -other.unit_price
    else:
        price = Decimal(0)
    here = new.offer.location is not None and other.offer.location == new.offer.location
    if new.gpus is None or other.gpus is None:
        overlap: tuple[int, int] = (1, 0)
    else:
        overlap = (0, abs(other.gpus - new.gpus))
    # timedelta, not a float timestamp, so microseconds order exactly.
    age = -(other.posted_at - _EPOCH)
    return (not match.priced, price, not here, age, overlap, other.id)
