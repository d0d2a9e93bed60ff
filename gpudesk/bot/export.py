"""Export: the ledger's messages, offers and weekly pulse as CSV or JSON Lines.

Each `*_rows` function turns what the ledger yields into flat dicts with a fixed set of
columns (`MESSAGE_COLUMNS`, `OFFER_COLUMNS`, `PULSE_COLUMNS`); `write_rows` writes them in a
format. Rows are streamed, so a million messages never sit in memory (the pulse, which needs
every offer of a week at once, is the exception).

- a message row carries platform, chat id and the platform's message id, sender, poster
  (the origin of a forward), UTC time, source (`live` or `import`) and text;
- an offer row carries the contract fields (shared/contract/offer-json.md), the normalised
  price (`unit_price` per `unit`, `gpu_hour` for rent or `gpu` for sale, in `unit_currency`,
  rounded to 4 places), its status at export time (an open offer past its expiry is
  `expired`), and the message it came from (platform, chat_id, message_id);
- a pulse row sums up one (ISO week, gpu, deal): distinct sellers and buyers, posts, and the
  median ask and bid per unit, as `compute_pulse` reads them. Weeks are in the desk's time
  zone. `pulse_rows` is deliberately small: issue 11 refines it.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from gpudesk.market.book import PostedOffer
from gpudesk.market.normalise import unit_for
from gpudesk.market.offer import Currency, Deal, contract_number
from gpudesk.market.pulse import compute_pulse
from gpudesk.storage.ledger import EXPIRED, OPEN, Ledger, OfferRecord, iso

WHATS = ("offers", "messages", "pulse")
FORMATS = ("csv", "jsonl")
PRICE_PLACES = Decimal("0.0001")
_TICK = timedelta(microseconds=1)

CONTRACT_FIELDS = (
    "side",
    "deal",
    "gpu",
    "variant",
    "memory_gb",
    "quantity",
    "quantity_unit",
    "gpus_per_server",
    "price",
    "currency",
    "price_per",
    "location",
)
MESSAGE_COLUMNS = (
    "platform",
    "chat_id",
    "chat_title",
    "message_id",
    "sent_at",
    "sender_id",
    "sender_name",
    "poster_id",
    "poster_name",
    "reply_to_id",
    "edited",
    "link",
    "source",
    "text",
)
OFFER_COLUMNS = (
    "offer_id",
    "platform",
    "chat_id",
    "chat_title",
    "message_id",
    "link",
    "poster_id",
    "poster_name",
    "posted_at",
    "seen_at",
    "seen_count",
    "expires_at",
    "status",
    *CONTRACT_FIELDS,
    "gpus",
    "unit_price",
    "unit",
    "unit_currency",
)
PULSE_COLUMNS = (
    "week",
    "week_start",
    "gpu",
    "deal",
    "unit",
    "currency",
    "sellers",
    "buyers",
    "sell_offers",
    "buy_offers",
    "median_ask",
    "median_bid",
)


def message_rows(ledger: Ledger, *, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    for message, source in ledger.iter_messages(since=since):
        yield {
            "platform": message.platform,
            "chat_id": message.chat_id,
            "chat_title": message.chat_title,
            "message_id": message.message_id,
            "sent_at": iso(message.sent_at),
            "sender_id": message.sender_id,
            "sender_name": message.sender_name,
            "poster_id": message.poster_id,
            "poster_name": message.poster_name,
            "reply_to_id": message.reply_to_id,
            "edited": message.edited,
            "link": message.link,
            "source": source,
            "text": message.text,
        }


def offer_rows(
    ledger: Ledger, *, now: datetime, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    currency = ledger.valuation.currency.value
    for record in ledger.iter_offers(since=since):
        yield offer_row(record, now=now, currency=currency)


def offer_row(record: OfferRecord, *, now: datetime, currency: str) -> dict[str, Any]:
    posted = record.posted
    status = record.status
    if status == OPEN and record.expires_at <= now:
        status = EXPIRED  # the ledger marks it on its next sweep; the export says it now
    row: dict[str, Any] = {
        "offer_id": posted.id,
        "platform": posted.platform,
        "chat_id": posted.chat_id,
        "chat_title": posted.chat_title,
        "message_id": posted.message_id,
        "link": posted.link,
        "poster_id": posted.poster_id,
        "poster_name": posted.poster_name,
        "posted_at": iso(posted.posted_at),
        "seen_at": iso(record.seen_at),
        "seen_count": record.seen_count,
        "expires_at": iso(record.expires_at),
        "status": status,
    }
    contract = posted.offer.to_contract()
    row.update((name, contract[name]) for name in CONTRACT_FIELDS)
    row["price"] = posted.offer.price  # exact, as stored: the writer formats it
    row.update(
        gpus=posted.gpus,
        unit_price=_rounded(posted.unit_price),
        unit=unit_for(posted.offer.deal).value,
        unit_currency=currency if posted.unit_price is not None else None,
    )
    return row


def pulse_rows(
    offers: Iterable[PostedOffer], *, zone: ZoneInfo, currency: Currency
) -> list[dict[str, Any]]:
    """One row per (ISO week, gpu, deal) with offers, in week then gpu order."""
    weeks: dict[tuple[str, Deal], dict[date, list[PostedOffer]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for posted in offers:
        weeks[(posted.offer.gpu, posted.offer.deal)][_monday(posted.posted_at, zone)].append(posted)
    rows = []
    for (gpu, deal), by_week in weeks.items():
        for monday, week_offers in by_week.items():
            start = datetime.combine(monday, time(), zone)
            end = datetime.combine(monday + timedelta(days=7), time(), zone)
            # compute_pulse reads (now - window, now]; a microsecond back makes it the week's
            # [start, end), the same boundaries the offers were bucketed by.
            pulse = compute_pulse(
                week_offers, gpu, deal, now=end - _TICK, window=end - start, currency=currency
            )
            year, week, _ = monday.isocalendar()
            rows.append(
                {
                    "week": f"{year}-W{week:02d}",
                    "week_start": monday.isoformat(),
                    "gpu": gpu,
                    "deal": deal.value,
                    "unit": pulse.unit.value,
                    "currency": pulse.currency.value,
                    "sellers": pulse.sellers,
                    "buyers": pulse.buyers,
                    "sell_offers": pulse.sell_offers,
                    "buy_offers": pulse.buy_offers,
                    "median_ask": _rounded(pulse.median_ask),
                    "median_bid": _rounded(pulse.median_bid),
                }
            )
    rows.sort(key=lambda row: (row["week_start"], row["gpu"], row["deal"]))
    return rows


def _monday(moment: datetime, zone: ZoneInfo) -> date:
    day = moment.astimezone(zone).date()
    return day - timedelta(days=day.weekday())


def _rounded(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(PRICE_PLACES)


# -- writing ---------------------------------------------------------------------------------


def write_rows(
    rows: Iterable[dict[str, Any]], columns: tuple[str, ...], format: str, sink: TextIO
) -> int:
    """Write `rows` to `sink` as `csv` (a header row first) or `jsonl`; how many were written."""
    count = 0
    if format == "csv":
        writer = csv.writer(sink, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_cell(row[name]) for name in columns])
            count += 1
    elif format == "jsonl":
        for row in rows:
            record = {name: _json_value(row[name]) for name in columns}
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    else:
        raise ValueError(f"unknown export format {format!r}; one of {', '.join(FORMATS)}")
    sink.flush()
    return count


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _plain(value)
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return contract_number(value.normalize())
    return value


def _plain(value: Decimal) -> str:
    """`75000`, `2.1`, `12.8425`: no exponent, no trailing zeros."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
