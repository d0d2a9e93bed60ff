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
- a pulse row sums up one (ISO week, gpu, deal) as `market/listings.py` counts it (issue 11,
  README (pulse)): parties by their listings, median, quartiles and best prices per unit, the
  week-on-week move of the median ask, the reading, and beside them the raw posts and
  posters. Weeks are ISO weeks in the desk's time zone; the figures are `/price`'s and the
  digest's for the same week.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from gpudesk.market.listings import DEFAULT_THRESHOLDS, Listings, Week, moment, pulses
from gpudesk.market.normalise import unit_for
from gpudesk.market.offer import contract_number
from gpudesk.market.pulse import Pulse, ReadingThresholds
from gpudesk.storage.ledger import EXPIRED, OPEN, Ledger, OfferRecord, iso

WHATS = ("offers", "messages", "pulse")
FORMATS = ("csv", "jsonl")
PRICE_PLACES = Decimal("0.0001")

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
    "sellers",
    "buyers",
    "median_ask",
    "median_bid",
    "p25_ask",
    "p75_ask",
    "best_ask",
    "best_bid",
    "currency",
    "unit",
    "wow_ask",
    "reading",
    "sell_posters",
    "buy_posters",
    "sell_messages",
    "buy_messages",
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
    ledger: Ledger,
    *,
    zone: ZoneInfo,
    lifetime: timedelta,
    now: datetime,
    weeks: Sequence[Week] = (),
    since: datetime | None = None,
    chat: tuple[str | None, str] | None = None,
    thresholds: ReadingThresholds = DEFAULT_THRESHOLDS,
) -> list[dict[str, Any]]:
    """One row per (ISO week, gpu, deal) with anyone in it, in week then gpu order.

    `weeks` picks the weeks; by default every week from the first post (or `since`) to the
    last one with a listing standing, up to `now`. `chat` is (platform or None, chat id).
    """
    book = ledger.listings(until=now, lifetime=lifetime, chat=chat)
    if not weeks:
        weeks = _weeks_with_listings(book, zone, now, since)
    currency = ledger.valuation.currency
    rows = [
        pulse_row(pulse)
        for pulse in pulses(book, weeks, currency=currency, thresholds=thresholds)
        if pulse.sellers or pulse.buyers or pulse.sell_offers or pulse.buy_offers
    ]
    rows.sort(key=lambda row: (row["week_start"], row["gpu"], row["deal"]))
    return rows


def pulse_row(pulse: Pulse) -> dict[str, Any]:
    assert pulse.week is not None, "a pulse row is one ISO week's"
    year, _, number = pulse.week.partition("-W")
    return {
        "week": pulse.week,
        "week_start": date.fromisocalendar(int(year), int(number), 1).isoformat(),
        "gpu": pulse.gpu,
        "deal": pulse.deal.value,
        "sellers": pulse.sellers,
        "buyers": pulse.buyers,
        "median_ask": _rounded(pulse.median_ask),
        "median_bid": _rounded(pulse.median_bid),
        "p25_ask": _rounded(pulse.p25_ask),
        "p75_ask": _rounded(pulse.p75_ask),
        "best_ask": _rounded(pulse.best_ask),
        "best_bid": _rounded(pulse.best_bid),
        "currency": pulse.currency.value,
        "unit": pulse.unit.value,
        "wow_ask": _rounded(pulse.wow_ask),
        "reading": None if pulse.reading is None else pulse.reading.value,
        "sell_posters": pulse.sell_posters,
        "buy_posters": pulse.buy_posters,
        "sell_messages": pulse.sell_messages,
        "buy_messages": pulse.buy_messages,
    }


def _weeks_with_listings(
    book: Listings, zone: ZoneInfo, now: datetime, since: datetime | None
) -> list[Week]:
    if not book.listings:
        return []
    first = moment(min(listing.first_at for listing in book.listings))
    last = min(now, moment(max(listing.ends_at for listing in book.listings)))
    start = Week.of(max(first, since) if since is not None else first, zone)
    stop = Week.of(last, zone)
    count = (stop.monday - start.monday).days // 7
    return [start.shifted(i) for i in range(count + 1)]


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
