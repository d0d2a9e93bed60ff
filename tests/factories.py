"""Posted offers for the market core's tests: one factory, with the defaults a test rarely sets."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

from gpudesk.market.book import PostedOffer
from gpudesk.market.offer import Deal, Offer, Side

_ids = itertools.count(1)


def next_id() -> int:
    """A fresh id, unique across every factory call of the test session."""
    return next(_ids)


def posted(
    side: str = "sell",
    *,
    at: datetime,
    who: str = "alice",
    platform: str = "telegram",
    gpu: str = "H100",
    deal: str = "rent",
    variant: str | None = None,
    memory: int | None = None,
    price: str | None = None,
    gpus: int | None = 8,
    location: str | None = None,
) -> PostedOffer:
    """An offer `who` posted `at`; `price` is its unit price (per GPU-hour for rent)."""
    offer = Offer(
        side=Side(side),
        deal=Deal(deal),
        gpu=gpu,
        variant=variant,
        memory_gb=memory,
        location=location,
    )
    return PostedOffer(
        id=next_id(),
        offer=offer,
        poster_id=who,
        poster_name=who,
        platform=platform,
        chat_id="chat",
        chat_title=None,
        posted_at=at,
        unit_price=None if price is None else Decimal(price),
        gpus=gpus,
        message_id=str(next_id()),
    )
