"""The book: offers as they stand in the market, with who posted them, where and when.

`PostedOffer` is what matching and market readings work on: the parsed `Offer` plus its poster,
its chat, its time and its normalised figures (GPUs, unit price in the desk's currency). The
ledger builds them; the core never touches storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from gpudesk.market.offer import Offer


@dataclass(frozen=True, slots=True)
class PostedOffer:
    id: int
    offer: Offer
    poster_id: str  # platform user id, unique within the platform
    poster_name: str
    platform: str
    chat_id: str
    chat_title: str | None
    posted_at: datetime  # timezone-aware UTC
    unit_price: Decimal | None  # per GPU-hour (rent) or per GPU (sale), in the desk's currency
    gpus: int | None  # quantity in GPUs
    message_id: str
    link: str | None = None

    @property
    def party(self) -> tuple[str, str]:
        """The poster as a market party: the same user id on two platforms is two parties."""
        return (self.platform, self.poster_id)
