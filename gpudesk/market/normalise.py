"""Normalisation: how many GPUs an offer is for, and its price per GPU-hour or per GPU.

Every comparison between offers (matching, medians, watches) goes through these two functions so
that `月租7.5w/台` and `$1.40/GPU/hr` can be set side by side. A month is 730 hours, a year 8760;
a per-server price is divided by the stated GPUs per server, else by 8 (the common HGX box).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from gpudesk.market.offer import Currency, Deal, Offer, PricePer, QuantityUnit

DEFAULT_GPUS_PER_SERVER = 8


class Unit(StrEnum):
    """The normalised unit of a price: per GPU-hour for rent, per GPU for sale."""

    GPU_HOUR = "gpu_hour"
    GPU = "gpu"


def unit_for(deal: Deal) -> Unit:
    return Unit.GPU_HOUR if deal is Deal.RENT else Unit.GPU


def gpus_per_server(offer: Offer) -> int:
    return offer.gpus_per_server or DEFAULT_GPUS_PER_SERVER


def gpu_count(offer: Offer) -> int | None:
    """The quantity in GPUs: servers times GPUs per server; None when no quantity is stated."""
    if offer.quantity is None:
        return None
    if offer.quantity_unit is QuantityUnit.SERVER:
        return offer.quantity * gpus_per_server(offer)
    return offer.quantity


def convert(amount: Decimal, source: Currency, target: Currency, usd_cny: Decimal) -> Decimal:
    """Money from one currency to the other at `usd_cny` yuan per dollar."""
    if source is target:
        return amount
    if source is Currency.USD:
        return amount * usd_cny
    return amount / usd_cny


def unit_price(
    offer: Offer, currency: Currency, usd_cny: Decimal, *, assume: Currency = Currency.CNY
) -> Decimal | None:
    """The offer's price per GPU-hour (rent) or per GPU (sale) in `currency`.

    None when the post states no price, or when its basis cannot be put on the offer's deal
    (a bare number with no `per`, or a per-hour price on a sale). A price with no currency is
    read as `assume` (the group's own currency: CNY in Chinese groups).
    """
    if offer.price is None or offer.price_per is None:
        return None
    per = offer.price_per
    is_rent_basis = per.hours is not None
    if is_rent_basis != (offer.deal is Deal.RENT):
        return None
    return price_in_unit(
        offer.price, per, gpus_per_server(offer), offer.currency or assume, currency, usd_cny
    )


def price_in_unit(
    amount: Decimal,
    per: PricePer,
    gpus_in_server: int,
    source: Currency,
    currency: Currency,
    usd_cny: Decimal,
) -> Decimal:
    """A price stated in any unit, brought to the normalised unit (watches, commands)."""
    value = amount
    if per.hours is not None:
        value = value / per.hours
    if per.per_server:
        value = value / gpus_in_server
    return convert(value, source, currency, usd_cny)


class Valuation:
    """The desk's yardstick: one currency and an FX rate, applied to every offer alike."""

    __slots__ = ("currency", "usd_cny")

    def __init__(self, currency: Currency = Currency.CNY, usd_cny: Decimal = Decimal("7.2")):
        self.currency = currency
        self.usd_cny = usd_cny

    def unit_price(self, offer: Offer) -> Decimal | None:
        return unit_price(offer, self.currency, self.usd_cny)

    def __repr__(self) -> str:
        return f"Valuation({self.currency.value}, usd_cny={self.usd_cny})"
