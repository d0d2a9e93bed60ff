"""The offer record: what one buy or sell post says, in the words of the public contract.

`Offer` mirrors `shared/contract/offer-json.md` field for field; `to_contract()` renders it
exactly as `gpudesk parse --json` prints it. Money is a `Decimal` so `7.5w` stays 75000.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Side(StrEnum):
    SELL = "sell"
    BUY = "buy"

    @property
    def opposite(self) -> Side:
        return Side.BUY if self is Side.SELL else Side.SELL


class Deal(StrEnum):
    SALE = "sale"
    RENT = "rent"


class Currency(StrEnum):
    CNY = "CNY"
    USD = "USD"


class QuantityUnit(StrEnum):
    GPU = "gpu"
    SERVER = "server"


class PricePer(StrEnum):
    GPU_HOUR = "gpu_hour"
    GPU_MONTH = "gpu_month"
    GPU_YEAR = "gpu_year"
    SERVER_HOUR = "server_hour"
    SERVER_MONTH = "server_month"
    SERVER_YEAR = "server_year"
    GPU = "gpu"
    SERVER = "server"

    @property
    def per_server(self) -> bool:
        return _PER_SERVER[self]

    @property
    def hours(self) -> int | None:
        """Hours one price buys for rent units (a month is 730 h, a year 8760 h); None for sale."""
        return _HOURS_OF[self]


_HOURS = {"hour": 1, "month": 730, "year": 8760}
# Worked out once per unit: every offer read and every price compared asks.
_HOURS_OF = {per: _HOURS.get(per.value.partition("_")[2] or "") for per in PricePer}
_PER_SERVER = {per: per.value.startswith("server") for per in PricePer}

VARIANTS = ("SXM", "PCIe", "NVL")


@dataclass(frozen=True, slots=True)
class Offer:
    """One buy or sell offer as a post states it; anything unstated is None."""

    side: Side
    deal: Deal
    gpu: str
    variant: str | None = None
    memory_gb: int | None = None
    quantity: int | None = None
    quantity_unit: QuantityUnit | None = None
    gpus_per_server: int | None = None
    price: Decimal | None = None
    currency: Currency | None = None
    price_per: PricePer | None = None
    location: str | None = None

    def to_contract(self) -> dict[str, Any]:
        """The JSON object of the contract: plain strings and numbers, None for unstated.

        Field by field, in the dataclass's order (`dataclasses.asdict` deep-copies every
        value, and the desk renders each offer it reads)."""
        unit, currency, per = self.quantity_unit, self.currency, self.price_per
        return {
            "side": self.side.value,
            "deal": self.deal.value,
            "gpu": self.gpu,
            "variant": self.variant,
            "memory_gb": self.memory_gb,
            "quantity": self.quantity,
            "quantity_unit": None if unit is None else unit.value,
            "gpus_per_server": self.gpus_per_server,
            "price": contract_number(self.price),
            "currency": None if currency is None else currency.value,
            "price_per": None if per is None else per.value,
            "location": self.location,
        }

    @classmethod
    def from_contract(cls, record: dict[str, Any]) -> Offer:
        """Read back a contract object (as stored or as exported)."""
        price = record.get("price")
        return cls(
            side=Side(record["side"]),
            deal=Deal(record["deal"]),
            gpu=record["gpu"],
            variant=record.get("variant"),
            memory_gb=record.get("memory_gb"),
            quantity=record.get("quantity"),
            quantity_unit=_maybe(QuantityUnit, record.get("quantity_unit")),
            gpus_per_server=record.get("gpus_per_server"),
            price=None if price is None else Decimal(str(price)),
            currency=_maybe(Currency, record.get("currency")),
            price_per=_maybe(PricePer, record.get("price_per")),
            location=record.get("location"),
        )


def contract_number(value: Decimal | None) -> int | float | None:
    """A Decimal as the contract's JSON number: an integer when whole, else a float."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _maybe(kind: Any, value: Any) -> Any:
    return None if value is None else kind(value)
