"""How figures read in a chat: money with its sign and unit, offers in one line, times ago.

All text comes from `texts.say`; this module only puts numbers into it. Times are shown in the
group's time zone; money rounds for display only (the ledger keeps exact decimals).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal

from gpudesk.handlers.texts import say
from gpudesk.market.normalise import Unit
from gpudesk.market.offer import Currency, Offer, QuantityUnit
from gpudesk.market.places import CHINESE_NAMES

SYMBOLS = {Currency.CNY: "¥", Currency.USD: "$"}


def money(amount: Decimal | None, currency: Currency | None, lang: str) -> str:
    """`¥75,000`, `$2.10`, `¥12.84`: whole units for large sums, cents for small ones."""
    if amount is None:
        return say(lang, "value.none")
    places = Decimal("1") if abs(amount) >= 1000 else Decimal("0.01")
    rounded = amount.quantize(places, rounding=ROUND_HALF_UP)
    symbol = SYMBOLS.get(currency, "") if currency else ""
    sign = "-" if rounded < 0 else ""
    return f"{sign}{symbol}{abs(rounded):,}"


def unit_money(amount: Decimal | None, currency: Currency, unit: Unit, lang: str) -> str:
    """A normalised price with its unit: `¥12.84/GPU-h`, `$21,000/GPU`."""
    if amount is None:
        return say(lang, "value.none")
    return money(amount, currency, lang) + say(lang, f"unit.{unit.value}")


def percent(change: Decimal | None, lang: str) -> str:
    if change is None:
        return say(lang, "value.none")
    value = (change * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    return f"{'+' if value > 0 else ''}{value}%"


def stated_price(offer: Offer, lang: str) -> str:
    """The price in the poster's own unit: `¥75,000/server/month`."""
    if offer.price is None:
        return say(lang, "price.unknown")
    per = say(lang, f"per.{offer.price_per.value}") if offer.price_per else ""
    return money(offer.price, offer.currency, lang) + per


def quantity(offer: Offer, lang: str) -> str:
    if offer.quantity is None:
        return say(lang, "qty.unknown")
    if offer.quantity_unit is QuantityUnit.SERVER:
        return say(lang, "qty.servers", n=offer.quantity, per=offer.gpus_per_server or 8)
    return say(lang, "qty.gpus", n=offer.quantity)


def summary(offer: Offer, lang: str) -> str:
    """One offer in a line: `sell H100 SXM rent · 10×8-GPU servers · ¥75,000/server/month`."""
    model = " ".join(
        part
        for part in (
            offer.gpu,
            offer.variant,
            f"{offer.memory_gb}G" if offer.memory_gb else None,
        )
        if part
    )
    parts = [
        f"{say(lang, f'side.{offer.side.value}')} {model} {say(lang, f'deal.{offer.deal.value}')}",
        quantity(offer, lang),
        stated_price(offer, lang),
        place(offer.location, lang),
    ]
    return " · ".join(parts)


def place(name: str | None, lang: str) -> str:
    """A canonical place as the group reads it (`Beijing`, `北京`); a note when none is named."""
    if name is None:
        return say(lang, "place.unknown")
    return CHINESE_NAMES.get(name, name) if lang == "zh" else name


def ago(then: datetime, now: datetime, lang: str) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 3600:
        return say(lang, "ago.minutes", n=max(1, seconds // 60))
    if seconds < 86400 * 2:
        return say(lang, "ago.hours", n=seconds // 3600)
    return say(lang, "ago.days", n=seconds // 86400)


def local_time(moment: datetime, zone: tzinfo) -> str:
    """`11-28 21:30` in the group's zone: short enough for a phone line."""
    return moment.astimezone(zone).strftime("%m-%d %H:%M")
