"""The ledger: every message and offer the desk has seen, in one SQLite file.

`Ledger` is the only door to storage. It speaks the domain's types (`ChatMessage`, `Offer`,
`PostedOffer`), never raw rows, and keeps the file safe to share: WAL mode, a busy timeout, and
writes that take the write lock up front (`BEGIN IMMEDIATE`) so a bot, an import and a digest can
run at once without "database is locked". Times are stored as ISO 8601 text in UTC.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from functools import lru_cache
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast, overload

from sqlite_utils import Database

from gpudesk.market.book import PostedOffer
from gpudesk.market.digest import MadeMatch
from gpudesk.market.listings import (
    BROKER_WINDOW,
    DEFAULT_THRESHOLDS,
    Advert,
    Closing,
    Codes,
    FrozenMarket,
    Listings,
    LiveMarket,
    Lot,
    Week,
    Withdrawal,
    build_listings,
    gc_paused,
    micros,
    moment,
    pulses,
    settle,
)
from gpudesk.market.match import same_price
from gpudesk.market.message import ChatMessage, Reply
from gpudesk.market.normalise import Valuation, convert, unit_price
from gpudesk.market.offer import Currency, Deal, Offer, PricePer, Side
from gpudesk.market.pulse import Pulse, ReadingThresholds
from gpudesk.market.watch import Delivery, Watch, WatchBook
from gpudesk.storage.migrations import MIGRATIONS, code, lot_key

if TYPE_CHECKING:  # the detector pulls in the parser; the ledger needs only the type
    from gpudesk.market.withdrawal import Withdrawn

BUSY_TIMEOUT_SECONDS = 30.0
CHECKPOINT_PAGES = 1000  # SQLite's default: the log is copied into the file past 4 MiB
# An import lets the log grow to 200 MiB between copies: each copy syncs the file, and a larger
# log holds each busy index page once where a smaller one would copy it again and again.
BULK_CHECKPOINT_PAGES = 50_000

OPEN, WITHDRAWN, FILLED, EXPIRED = "open", "withdrawn", "filled", "expired"
STATUSES = (OPEN, WITHDRAWN, FILLED, EXPIRED)


class LedgerError(Exception):
    """The ledger file cannot be used (not SQLite, unreadable, or from a newer gpudesk)."""


@lru_cache(maxsize=256)
def iso(moment: datetime) -> str:
    """An aware datetime as UTC text of fixed width, so that text order is time order.

    Cached: the desk writes a message's time into the message, its offers and its
    advertisements, and a datetime is immutable."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: the ledger stores aware UTC times only")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """What storing a message did: `fresh` for a first delivery, `changed` for a new edit."""

    id: int
    fresh: bool
    changed: bool
    handled: bool


@dataclass(frozen=True, slots=True)
class ChatRecord:
    platform: str
    chat_id: str
    title: str | None
    language: str | None
    match_replies: bool
    scope: str
    weekly_digest: bool = True  # False after `/digest off`: the scheduler skips the group


@dataclass(frozen=True, slots=True)
class OfferRecord:
    """An offer with its book-keeping: status and lifetime, on top of the posted offer."""

    posted: PostedOffer
    status: str
    expires_at: datetime
    seen_at: datetime
    seen_count: int

    @property
    def id(self) -> int:
        return self.posted.id


_OFFER_COLUMNS = (
    "o.id, o.side, o.deal, o.gpu, o.variant, o.memory_gb, o.quantity, o.quantity_unit, "
    "o.gpus_per_server, o.price, o.currency, o.price_per, o.location, o.gpus, o.platform, "
    "o.chat_id, o.poster_id, o.poster_name, o.posted_at, o.status, o.expires_at, o.seen_at, "
    "o.seen_count, m.message_id, m.link, c.title"
)
_OFFER_FROM = (
    "offers o JOIN messages m ON m.id = o.message "
    "LEFT JOIN chats c ON c.platform = o.platform AND c.chat_id = o.chat_id"
)
_OFFER_FROM_INDEXED = _OFFER_FROM.replace("offers o ", "offers o INDEXED BY {} ", 1)

# What an offer states, in the contract's order (`Offer.to_contract`), as stored.
_OFFER_FIELDS = (
    "side, deal, gpu, variant, memory_gb, quantity, quantity_unit, gpus_per_server, price,"
    " currency, price_per, location"
)
_INSERT_OFFER = (
    f"INSERT INTO offers ({_OFFER_FIELDS}, unit_native, unit_currency, unit_price, message,"
    " item, platform, chat_id, poster_id, poster_name, gpus, status, posted_at, seen_at,"
    " seen_count, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)

_REFRESH_OFFER = (
    "UPDATE offers SET seen_at = max(seen_at, ?), expires_at = max(expires_at, ?),"
    " seen_count = seen_count + ? WHERE id = ?"
)

_INSERT_ADVERT = (
    f"INSERT INTO adverts ({_OFFER_FIELDS}, message, item, offer, platform, chat_id, poster_id,"
    " posted_at, at_us, gpus, unit_amount, unit_currency, quote, party, venue, lot)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def _offer_values(offer: Offer) -> tuple[Any, ...]:
    """The columns of `_OFFER_FIELDS`: enums as their text, the price exact as text."""
    unit, currency, per = offer.quantity_unit, offer.currency, offer.price_per
    return (
        offer.side.value,
        offer.deal.value,
        offer.gpu,
        offer.variant,
        offer.memory_gb,
        offer.quantity,
        None if unit is None else unit.value,
        offer.gpus_per_server,
        None if offer.price is None else str(offer.price),
        None if currency is None else currency.value,
        None if per is None else per.value,
        offer.location,
    )


class Ledger:
    """The desk's memory. Open with `Ledger.open(path)`; use as a context manager to close."""

    def __init__(self, conn: sqlite3.Connection, valuation: Valuation | None = None):
        self.conn = conn
        self.db = Database(conn)
        self.valuation = valuation or Valuation()
        self._depth = 0
        self._codes: dict[object, int] = {}  # parties, venues, lots (issue 11): never change
        # (platform, chat id, title) upserted in the current write transaction: while it holds
        # the write lock nobody else can change them, so each is written once per batch.
        self._seen_chats: set[tuple[str, str, str | None]] = set()
        # Members written in this transaction, and their latest name and sighting, written at
        # its end: an import batch hears the same few hundred members tens of thousands of times.
        self._seen_users: set[tuple[str, str]] = set()
        self._sightings: dict[tuple[str, str], tuple[str, str]] = {}
        self._last_units: tuple[Offer, tuple[Decimal | None, str, Decimal | None]] | None = None
        # -- import (issue 8): the posters' standing offers that batches of history looked at,
        # kept in memory for the repost check (`batched`); `_batch` while a batch is written.
        self._offer_book: _Standing | None = None
        self._batch: _Standing | None = None
        # -- the market as it goes (`week_pulses`): per scope, the state kept in memory, and
        # past weeks' pulses, each with what the ledger held when it was worked out.
        self._markets: dict[tuple[object, ...], _Market] = {}
        self._past: dict[tuple[object, ...], tuple[_Stamp, list[Pulse]]] = {}
        self._serial = 0  # outer write transactions begun: a market read inside one is dropped
        # if it rolls back

    @classmethod
    def open(cls, path: str | Path, valuation: Valuation | None = None) -> Ledger:
        """Open (or create) the ledger file and bring its schema up to date."""
        path = Path(path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            # 64 MiB of page cache (the default is 2 MiB): a ledger of a million offers has
            # indexes of tens of MiB, and every post writes into several of them.
            conn.execute("PRAGMA cache_size = -65536")
            ledger = cls(conn, valuation)
            ledger.migrate()
        except sqlite3.DatabaseError as error:
            raise LedgerError(f"{path} is not a usable gpudesk ledger: {error}") from None
        return ledger

    def migrate(self) -> None:
        with self.transaction():
            MIGRATIONS.apply(self.db)
            self._reprice()

    def _reprice(self) -> None:
        """Bring `offers.unit_price` to the current valuation when the FX rate or currency moved."""
        key = f"{self.valuation.currency.value}@{self.valuation.usd_cny}"
        row = self.conn.execute("SELECT value FROM ledger_meta WHERE key = 'valuation'").fetchone()
        if row is not None and row[0] == key:
            return
        target, fx = self.valuation.currency.value, float(self.valuation.usd_cny)
        self.conn.execute(
            "UPDATE offers SET unit_price = CASE"
            " WHEN unit_currency = ? THEN unit_native"
            " WHEN ? = 'CNY' THEN unit_native * ? ELSE unit_native / ? END"
            " WHERE unit_native IS NOT NULL",
            (target, target, fx, fx),
        )
        self.conn.execute(
            "INSERT INTO ledger_meta (key, value) VALUES ('valuation', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key,),
        )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> _Transaction:
        """One atomic write. Takes the write lock at once (`BEGIN IMMEDIATE`).

        A nested call is a SAVEPOINT inside the outer transaction: when it fails, only its own
        writes are rolled back and the outer transaction goes on (an import batch keeps the
        messages before and after the one that could not be read)."""
        return _Transaction(self, savepoint=True)

    def _writing(self) -> _Transaction | _Joined:
        """The ledger's own writes: a transaction of their own when called alone, else a part
        of the caller's (transaction or savepoint, which bounds them if they fail)."""
        return _JOINED if self._depth else _Transaction(self, savepoint=False)

    def _before_commit(self) -> None:
        """Write what was kept back for the end of the transaction: members' latest sightings."""
        if self._sightings:
            self.conn.executemany(
                "UPDATE users SET name = ?, last_seen = ? WHERE platform = ? AND user_id = ?",
                [(*seen, *user) for user, seen in self._sightings.items()],
            )

    def _after_transaction(self) -> None:
        self._seen_chats.clear()  # only good while we hold the write lock
        self._seen_users.clear()
        self._sightings.clear()

    def _forget_written(self) -> None:
        """After a rollback: what was remembered of rows written may name rows now gone."""
        self._codes.clear()
        self._seen_chats.clear()
        self._seen_users.clear()
        self._offer_book = None  # import (issue 8): the posters' offers in memory may be gone
        if self._batch is not None:
            self._batch.clear()
        for key, market in list(self._markets.items()):
            if market.serial == self._serial:
                del self._markets[key]

    # -- messages: the inbox --------------------------------------------------------------

    def store_message(
        self,
        message: ChatMessage,
        *,
        received_at: datetime,
        source: str = "live",
        handled: bool = False,
    ) -> StoredMessage:
        """Store a message once. Re-delivery is a no-op; an edit with new text replaces it.

        `handled` stores it as read already: for a caller that reads it in the same
        transaction (`Desk.handle`), so that a failure rolls the mark back with the rest."""
        with self._writing():
            conn = self.conn
            received = iso(received_at)
            # The first delivery is the common case: one statement, no look-up first, and no
            # RETURNING (it costs a third of the insert): a row was added when one changed.
            cursor = conn.execute(
                "INSERT INTO messages (platform, chat_id, message_id, sender_id, sender_name,"
                " poster_id, poster_name, text, sent_at, received_at, reply_to_id, link,"
                " source, handled, is_group, sender_is_admin)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (platform, chat_id, message_id) DO NOTHING",
                (
                    message.platform,
                    message.chat_id,
                    message.message_id,
                    message.sender_id,
                    message.sender_name,
                    message.poster_id,
                    message.poster_name,
                    message.text,
                    iso(message.sent_at),
                    received,
                    message.reply_to_id,
                    message.link,
                    source,
                    int(handled),
                    int(message.is_group),  # kept for `Desk.recover`: read as it came
                    int(message.sender_is_admin),
                ),
            )
            if cursor.rowcount == 1:
                self._remember_chat_and_user(message, received)
                return StoredMessage(int(cursor.lastrowid or 0), True, False, handled)
            message_row, old_text, was_handled = conn.execute(
                "SELECT id, text, handled FROM messages "
                "WHERE platform = ? AND chat_id = ? AND message_id = ?",
                (message.platform, message.chat_id, message.message_id),
            ).fetchone()
            if message.edited and old_text != message.text:
                conn.execute(
                    "UPDATE messages SET text = ?, edited_at = ?, handled = ? WHERE id = ?",
                    (message.text, received, int(handled), message_row),
                )
                return StoredMessage(message_row, False, True, handled)
            return StoredMessage(message_row, False, False, bool(was_handled))

    def mark_handled(self, message_row: int) -> None:
        with self._writing():
            self.conn.execute("UPDATE messages SET handled = 1 WHERE id = ?", (message_row,))

    def unhandled_messages(self) -> list[tuple[int, ChatMessage]]:
        """Messages stored but not yet read: what a crash left in the inbox, oldest first.

        Each comes back as it arrived: its chat's title, whether it was said in a group, the
        platform's admin check if one was made then (`sender_is_admin`), and `announce` for a
        live message (False for an imported one). `Desk.recover` decides what to answer."""
        rows = self.conn.execute(
            "SELECT m.id, m.platform, m.chat_id, m.message_id, m.sender_id, m.sender_name,"
            " m.poster_id, m.poster_name, m.text, m.sent_at, m.reply_to_id, m.link,"
            " m.edited_at, m.source, m.is_group, m.sender_is_admin, c.title FROM messages m"
            " LEFT JOIN chats c ON c.platform = m.platform AND c.chat_id = m.chat_id"
            " WHERE m.handled = 0 ORDER BY m.id"
        ).fetchall()
        return [
            (
                row[0],
                ChatMessage(
                    platform=row[1],
                    chat_id=row[2],
                    message_id=row[3],
                    sender_id=row[4],
                    sender_name=row[5] or "",
                    origin_sender_id=row[6] if row[6] != row[4] else None,
                    origin_sender_name=row[7] if row[6] != row[4] else None,
                    text=row[8],
                    sent_at=from_iso(row[9]),
                    reply_to_id=row[10],
                    link=row[11],
                    edited=row[12] is not None,
                    announce=(row[13] or "live") == "live",
                    is_group=row[14] != 0,  # unknown (NULL) is a group: admin commands ask
                    sender_is_admin=row[15] == 1,  # only a check the platform answered yes
                    chat_title=row[16],
                ),
            )
            for row in rows
        ]

    def message_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM messages").fetchone()[0])

    def _remember_chat_and_user(self, message: ChatMessage, now: str) -> None:
        chat = (message.platform, message.chat_id, message.chat_title)
        if chat not in self._seen_chats:
            self.conn.execute(
                "INSERT INTO chats (platform, chat_id, title, first_seen) VALUES (?,?,?,?)"
                " ON CONFLICT (platform, chat_id) DO UPDATE SET"
                " title = coalesce(excluded.title, chats.title)",
                (*chat, now),
            )
            self._seen_chats.add(chat)
        user = (message.platform, message.sender_id)
        if user in self._seen_users:
            self._sightings[user] = (message.sender_name, now)
            return
        self.conn.execute(
            "INSERT INTO users (platform, user_id, name, first_seen, last_seen) VALUES (?,?,?,?,?)"
            " ON CONFLICT (platform, user_id) DO UPDATE SET name = excluded.name,"
            " last_seen = excluded.last_seen",
            (*user, message.sender_name, now, now),
        )
        self._seen_users.add(user)

    # -- offers ---------------------------------------------------------------------------

    def add_offer(
        self,
        *,
        message_row: int,
        item: int,
        message: ChatMessage,
        offer: Offer,
        gpus: int | None,
        posted_at: datetime,
        expires_at: datetime,
    ) -> int:
        native, own, in_desk_currency = self.unit_prices(offer)
        posted = iso(posted_at)
        with self._writing():
            cursor = self.conn.execute(
                _INSERT_OFFER,
                (
                    *_offer_values(offer),
                    None if native is None else float(native),
                    None if native is None else own,
                    None if in_desk_currency is None else float(in_desk_currency),
                    message_row,
                    item,
                    message.platform,
                    message.chat_id,
                    message.poster_id,
                    message.poster_name,
                    gpus,
                    OPEN,
                    posted,
                    posted,
                    1,
                    iso(expires_at),
                ),
            )
        offer_id = int(cursor.lastrowid or 0)
        if self._batch is not None:
            self._batch.add(offer_id, message, offer, gpus, posted, iso(expires_at))
        return offer_id

    def unit_prices(self, offer: Offer) -> tuple[Decimal | None, str, Decimal | None]:
        """The offer's unit price (per GPU-hour for rent, per GPU for sale) in its own
        currency, that currency, and the price in the desk's currency (`Valuation`).

        The desk books, advertises and matches the same offer one after the other: the last
        offer's figures are kept, so that each is worked out once."""
        last = self._last_units
        if last is not None and last[0] is offer:
            return last[1]
        own = offer.currency or Currency.CNY
        native = unit_price(offer, own, self.valuation.usd_cny)
        valuation = self.valuation
        desk = (
            None if native is None else convert(native, own, valuation.currency, valuation.usd_cny)
        )
        found = (native, own.value, desk)
        self._last_units = (offer, found)
        return found

    def offers_of_message(self, message_row: int) -> list[int]:
        rows = self.conn.execute(
            "SELECT id FROM offers WHERE message = ? ORDER BY item", (message_row,)
        ).fetchall()
        return [row[0] for row in rows]

    def drop_offers_of_message(self, message_row: int) -> int:
        """Forget the offers read from a message (before reading its edited text again)."""
        self._write_refreshes()
        with self._writing():
            cursor = self.conn.execute("DELETE FROM offers WHERE message = ?", (message_row,))
        if self._batch is not None:
            self._batch.clear()
        return cursor.rowcount

    def refresh_offer(self, offer_id: int, *, seen_at: datetime, expires_at: datetime) -> None:
        """The poster said it again: keep one offer, move its last sighting and expiry on
        (never back: an older post read later, from an import, moves neither).

        Within a batch of history (`batched`) the refreshes of an offer are summed up in
        memory and written once, when the batch ends or something reads them first."""
        if self._batch is not None:
            self._batch.refresh(offer_id, iso(seen_at), iso(expires_at))
            return
        with self._writing():
            self.conn.execute(_REFRESH_OFFER, (iso(seen_at), iso(expires_at), 1, offer_id))

    def _write_refreshes(self) -> None:
        """Write the refreshes a batch of history kept back (`refresh_offer`)."""
        batch = self._batch
        if batch is not None and batch.refreshed:
            self.conn.executemany(
                _REFRESH_OFFER,
                [(*seen, offer_id) for offer_id, seen in batch.refreshed.items()],
            )
            batch.refreshed.clear()

    def repost_of(
        self,
        platform: str,
        poster_id: str,
        offer: Offer,
        *,
        gpus: int | None,
        unit_price: Decimal | None,
        at: datetime,
    ) -> int | None:
        """The poster's book offer that a post of `offer` at `at` says again (`is_repost`):
        open, posted at or before `at` and standing then, with the same side, deal, model,
        variant, memory and GPUs and a unit price within 1%; the oldest such, or None.

        One index walk over the poster's offers of that side, deal and model, reading only
        what the comparison needs (a busy poster has thousands of offers). Within a batch of
        history (`batched`), from the posters' book in memory: the walk is made once per
        poster and model for the whole import, not once per post."""
        when = iso(at)
        batch = self._batch
        if batch is not None and batch.floor <= when <= batch.ceiling:
            key = (platform, poster_id, offer.gpu, offer.deal.value, offer.side.value)
            lots = batch.lots.get(key)
            if lots is None:
                lots = batch.load(key, self._standing_rows(key, batch.floor, batch.ceiling))
            for row in lots.get((offer.variant, offer.memory_gb, gpus), ()):
                # id, posted_at, expires_at, open, then the stated price and its unit price
                if row[3] and row[2] > when and row[1] <= when:
                    theirs = row[8]
                    if theirs is _UNKNOWN:
                        theirs = row[8] = self._stated_price(offer, *row[4:8])
                    if same_price(unit_price, theirs):
                        return int(row[0])
            return None
        self._write_refreshes()
        rows = self.conn.execute(
            "SELECT id, price, currency, price_per, gpus_per_server FROM offers"
            " INDEXED BY offers_poster_lot"
            " WHERE platform = ? AND poster_id = ? AND gpu = ? AND deal = ? AND side = ?"
            " AND status = ? AND expires_at > ? AND posted_at <= ? AND variant IS ?"
            " AND memory_gb IS ? AND gpus IS ? ORDER BY id",
            (
                platform,
                poster_id,
                offer.gpu,
                offer.deal.value,
                offer.side.value,
                OPEN,
                when,
                when,
                offer.variant,
                offer.memory_gb,
                gpus,
            ),
        ).fetchall()
        for offer_id, price, currency, per, per_server in rows:
            if same_price(unit_price, self._stated_price(offer, price, currency, per, per_server)):
                return int(offer_id)
        return None

    def _stated_price(
        self,
        offer: Offer,
        price: str | None,
        currency: str | None,
        per: str | None,
        per_server: int | None,
    ) -> Decimal | None:
        """The unit price in the desk's currency of a book offer of `offer`'s side, deal and
        model, from its stored price, currency, basis and GPUs per server."""
        if price is None or per is None:
            return None
        stated = Offer(
            side=offer.side,
            deal=offer.deal,
            gpu=offer.gpu,
            gpus_per_server=per_server,
            price=Decimal(price),
            currency=None if currency is None else Currency(currency),
            price_per=PricePer(per),
        )
        return self.valuation.unit_price(stated)

    def _standing_rows(
        self, key: tuple[Any, ...], floor: str, ceiling: str
    ) -> list[tuple[Any, ...]]:
        """A poster's open offers of one model, deal and side (platform, poster, model, deal,
        side: `key`) posted by `ceiling` and standing past `floor`, oldest first: what repost
        checks of posts made between them may find, as `_Standing.load` takes them."""
        return self.conn.execute(
            "SELECT id, posted_at, expires_at, 1, price, currency, price_per, gpus_per_server,"
            " variant, memory_gb, gpus FROM offers INDEXED BY offers_poster_lot"
            " WHERE platform = ? AND poster_id = ? AND gpu = ? AND deal = ? AND side = ?"
            " AND status = ? AND expires_at > ? AND posted_at <= ? ORDER BY id",
            (*key, OPEN, floor, ceiling),
        ).fetchall()

    def _offers_posted(self, after: str, until: str, floor: str) -> list[tuple[Any, ...]]:
        """Open offers posted after `after` up to `until` and standing past `floor`, as
        `_Standing.extend` takes them: `_standing_rows`' columns, then their lot's key."""
        return self.conn.execute(
            "SELECT id, posted_at, expires_at, 1, price, currency, price_per, gpus_per_server,"
            " variant, memory_gb, gpus, platform, poster_id, gpu, deal, side FROM offers"
            " INDEXED BY idx_offers_posted_at"
            " WHERE posted_at > ? AND posted_at <= ? AND status = ? AND expires_at > ?"
            " ORDER BY id",
            (after, until, OPEN, floor),
        ).fetchall()

    def set_status(self, offer_id: int, status: str, *, now: datetime) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown offer status {status!r}; one of {', '.join(STATUSES)}")
        self._write_refreshes()
        with self._writing():
            self.conn.execute(
                "UPDATE offers SET status = ?, closed_at = ? WHERE id = ?",
                (status, None if status == OPEN else iso(now), offer_id),
            )
        if self._batch is not None:
            self._batch.clear()

    def expire(self, *, now: datetime) -> int:
        """Mark open offers past their lifetime as expired; how many there were."""
        self._write_refreshes()
        with self._writing():
            cursor = self.conn.execute(
                "UPDATE offers SET status = ?, closed_at = expires_at"
                " WHERE status = ? AND expires_at <= ?",
                (EXPIRED, OPEN, iso(now)),
            )
        if self._batch is not None:
            self._batch.clear()
        return cursor.rowcount

    def offer(self, offer_id: int) -> OfferRecord | None:
        rows = self._offers(
            f"SELECT {_OFFER_COLUMNS} FROM {_OFFER_FROM} WHERE o.id = ?", (offer_id,)
        )
        return rows[0] if rows else None

    def open_offers(
        self,
        *,
        now: datetime,
        gpu: str | None = None,
        deal: Deal | None = None,
        side: Side | None = None,
        chat: tuple[str, str] | None = None,
    ) -> list[OfferRecord]:
        """Offers standing at `now`: open and not yet expired, newest first."""
        where = ["o.status = ?", "o.expires_at > ?"]
        params: list[Any] = [OPEN, iso(now)]
        where, params = _filters(where, params, gpu=gpu, deal=deal, side=side, chat=chat)
        sql = (
            f"SELECT {_OFFER_COLUMNS} FROM {_OFFER_FROM} WHERE {' AND '.join(where)}"
            " ORDER BY o.seen_at DESC"
        )
        return self._offers(sql, params)

    def best_offers(
        self,
        *,
        now: datetime,
        gpu: str,
        deal: Deal,
        side: Side,
        lowest_first: bool,
        price_at_most: Decimal | None = None,
        price_at_least: Decimal | None = None,
        limit: int = 50,
        chat: tuple[str, str] | None = None,
    ) -> list[OfferRecord]:
        """Standing offers of one side by normalised price (an index walk, however big the
        book), best first, then up to `limit` unpriced ones, newest first."""
        where = ["o.gpu = ?", "o.deal = ?", "o.side = ?", "o.status = ?", "o.expires_at > ?"]
        params: list[Any] = [gpu, str(deal), str(side), OPEN, iso(now)]
        if chat is not None:
            where.append("o.platform = ? AND o.chat_id = ?")
            params.extend(chat)
        priced = [*where, "o.unit_price IS NOT NULL"]
        priced_params = list(params)
        for bound, op in ((price_at_most, "<="), (price_at_least, ">=")):
            if bound is not None:
                # A hair of slack: REAL only pre-filters; exact Decimals decide afterwards.
                slack = float(bound) * 1e-9
                priced.append(f"o.unit_price {op} ?")
                priced_params.append(float(bound) + (slack if op == "<=" else -slack))
        order = "ASC" if lowest_first else "DESC"
        # Across every group, walk the price index (and the unpriced offers' index, newest
        # first) and stop at `limit`: SQLite would rather sort every standing offer of the
        # side (tens of thousands in a busy book). A group of its own is read by expiry.
        walk = chat is None
        by_price = _OFFER_FROM_INDEXED.format("idx_offers_gpu_deal_side_status_unit_price")
        rows = self._offers(
            f"SELECT {_OFFER_COLUMNS} FROM {by_price if walk else _OFFER_FROM}"
            f" WHERE {' AND '.join(priced)}"
            f" ORDER BY o.unit_price {order}, o.seen_at DESC LIMIT ?",
            [*priced_params, limit],
        )
        newest = _OFFER_FROM_INDEXED.format("offers_unpriced")
        rows += self._offers(
            f"SELECT {_OFFER_COLUMNS} FROM {newest if walk else _OFFER_FROM}"
            f" WHERE {' AND '.join(where)} AND o.unit_price IS NULL"
            " ORDER BY o.seen_at DESC LIMIT ?",
            [*params, limit],
        )
        return rows

    def poster_offers(self, platform: str, poster_id: str, *, now: datetime) -> list[OfferRecord]:
        sql = (
            f"SELECT {_OFFER_COLUMNS} FROM {_OFFER_FROM} WHERE o.platform = ? AND"
            " o.poster_id = ? AND o.status = ? AND o.expires_at > ? ORDER BY o.id"
        )
        return self._offers(sql, (platform, poster_id, OPEN, iso(now)))

    def offers_seen_between(
        self,
        start: datetime,
        end: datetime,
        *,
        gpu: str | None = None,
        deal: Deal | None = None,
        chat: tuple[str, str] | None = None,
    ) -> list[OfferRecord]:
        """Offers posted or seen again in [start, end), whatever their status now."""
        where = ["o.seen_at >= ?", "o.posted_at < ?"]
        params: list[Any] = [iso(start), iso(end)]
        where, params = _filters(where, params, gpu=gpu, deal=deal, side=None, chat=chat)
        sql = f"SELECT {_OFFER_COLUMNS} FROM {_OFFER_FROM} WHERE {' AND '.join(where)}"
        return self._offers(sql, params)

    def _offers(self, sql: str, params: Sequence[Any]) -> list[OfferRecord]:
        return [self._offer_record(row) for row in self.conn.execute(sql, params)]

    def _offer_record(self, row: Sequence[Any]) -> OfferRecord:
        offer = Offer.from_contract(
            {
                "side": row[1],
                "deal": row[2],
                "gpu": row[3],
                "variant": row[4],
                "memory_gb": row[5],
                "quantity": row[6],
                "quantity_unit": row[7],
                "gpus_per_server": row[8],
                "price": None if row[9] is None else Decimal(row[9]),
                "currency": row[10],
                "price_per": row[11],
                "location": row[12],
            }
        )
        posted = PostedOffer(
            id=row[0],
            offer=offer,
            poster_id=row[16],
            poster_name=row[17] or "",
            platform=row[14],
            chat_id=row[15],
            chat_title=row[25],
            posted_at=from_iso(row[18]),
            unit_price=self.valuation.unit_price(offer),
            gpus=row[13],
            message_id=row[23],
            link=row[24],
        )
        return OfferRecord(
            posted=posted,
            status=row[19],
            expires_at=from_iso(row[20]),
            seen_at=from_iso(row[21]),
            seen_count=row[22],
        )

    # -- chats ----------------------------------------------------------------------------

    def chat(self, platform: str, chat_id: str) -> ChatRecord:
        row = self.conn.execute(
            "SELECT title, language, match_replies, scope, weekly_digest FROM chats"
            " WHERE platform = ? AND chat_id = ?",
            (platform, chat_id),
        ).fetchone()
        if row is None:
            return ChatRecord(platform, chat_id, None, None, True, "all")
        return ChatRecord(
            platform, chat_id, row[0], row[1], bool(row[2]), row[3] or "all", row[4] != 0
        )

    def chats(self) -> list[ChatRecord]:
        rows = self.conn.execute("SELECT platform, chat_id FROM chats ORDER BY platform, chat_id")
        return [self.chat(platform, chat_id) for platform, chat_id in rows.fetchall()]

    def update_chat(self, platform: str, chat_id: str, **values: Any) -> None:
        allowed = {"title", "language", "match_replies", "scope", "weekly_digest"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown chat settings {sorted(unknown)}; allowed {sorted(allowed)}")
        self._seen_chats.clear()
        with self._writing():
            self.conn.execute(
                "INSERT INTO chats (platform, chat_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (platform, chat_id),
            )
            for key, value in values.items():
                self.conn.execute(
                    f"UPDATE chats SET {key} = ? WHERE platform = ? AND chat_id = ?",
                    (value, platform, chat_id),
                )

    # -- digests (issue 7): the matches the desk made, and the weekly digests sent -------------

    def record_match(
        self, offer_id: int, counterparty_id: int, *, matched_at: datetime, gap: Decimal | None
    ) -> None:
        """Remember that the desk answered offer `offer_id` with `counterparty_id` (once)."""
        with self._writing():
            self.conn.execute(
                "INSERT INTO matches (offer, counterparty, matched_at, gap) VALUES (?,?,?,?)"
                " ON CONFLICT DO NOTHING",
                (offer_id, counterparty_id, iso(matched_at), None if gap is None else str(gap)),
            )

    def matches_between(
        self, start: datetime, end: datetime, *, chat: tuple[str, str] | None = None
    ) -> list[MadeMatch]:
        """Matches made in (start, end], oldest first; with `chat`, those where either offer
        was posted in it."""
        bounds = (iso(start), iso(end))
        rows = self.conn.execute(
            "SELECT offer, counterparty, matched_at, gap FROM matches"
            " WHERE matched_at > ? AND matched_at <= ? ORDER BY matched_at, offer, counterparty",
            bounds,
        ).fetchall()
        in_window = "SELECT {} FROM matches WHERE matched_at > ? AND matched_at <= ?"
        offers = {
            record.id: record.posted
            for record in self._offers(
                f"SELECT {_OFFER_COLUMNS} FROM {_OFFER_FROM} WHERE o.id IN"
                f" ({in_window.format('offer')} UNION {in_window.format('counterparty')})",
                bounds + bounds,
            )
        }
        made = [
            MadeMatch(
                offer=offers[offer],
                counterparty=offers[counterparty],
                matched_at=from_iso(matched_at),
                gap=None if gap is None else Decimal(gap),
            )
            for offer, counterparty, matched_at, gap in rows
        ]
        if chat is None:
            return made
        return [
            m for m in made if chat in ((p.platform, p.chat_id) for p in (m.offer, m.counterparty))
        ]

    def digest_chats(self, platforms: Sequence[str]) -> list[ChatRecord]:
        """The groups on `platforms` a digest can go to: heard from live, and titled.

        An imported history alone does not prove the bot is in the group. A private chat is
        stored without a title (`ChatMessage.chat_title` is None outside groups) and gets none.
        """
        marks = ", ".join("?" for _ in platforms)
        rows = self.conn.execute(
            f"SELECT platform, chat_id FROM chats c WHERE platform IN ({marks})"
            " AND title IS NOT NULL AND EXISTS (SELECT 1 FROM messages m"
            " WHERE m.platform = c.platform AND m.chat_id = c.chat_id AND m.source = 'live')"
            " ORDER BY platform, chat_id",
            tuple(platforms),
        ).fetchall()
        return [self.chat(platform, chat_id) for platform, chat_id in rows]

    def claim_digest(
        self,
        platform: str,
        chat_id: str,
        week: str,
        *,
        at: datetime,
        window: tuple[datetime, datetime],
    ) -> bool:
        """Take the chat's digest of `week` before sending any of it: True the first time,
        False ever after. Written first so that a crash mid-send never sends it twice."""
        with self._writing():
            cursor = self.conn.execute(
                "INSERT INTO digests (platform, chat_id, week, window_start, window_end,"
                " claimed_at, status) VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (platform, chat_id, week, iso(window[0]), iso(window[1]), iso(at), CLAIMED),
            )
        return cursor.rowcount == 1

    def mark_digest_sent(self, platform: str, chat_id: str, week: str, *, at: datetime) -> None:
        self._finish_digest(platform, chat_id, week, SENT, at, None)

    def mark_digest_unsent(
        self, platform: str, chat_id: str, week: str, *, at: datetime, status: str, note: str
    ) -> None:
        """The claimed digest was not sent: `failed` (with the error) or `empty` (no offers)."""
        if status not in (FAILED, EMPTY):
            raise ValueError(f"unsent digest status {status!r}; one of {FAILED}, {EMPTY}")
        self._finish_digest(platform, chat_id, week, status, at, note)

    def digest_record(self, platform: str, chat_id: str, week: str) -> DigestRecord | None:
        row = self.conn.execute(
            "SELECT status, claimed_at, finished_at, note FROM digests"
            " WHERE platform = ? AND chat_id = ? AND week = ?",
            (platform, chat_id, week),
        ).fetchone()
        if row is None:
            return None
        finished = None if row[2] is None else from_iso(row[2])
        return DigestRecord(platform, chat_id, week, row[0], from_iso(row[1]), finished, row[3])

    def _finish_digest(
        self, platform: str, chat_id: str, week: str, status: str, at: datetime, note: str | None
    ) -> None:
        with self._writing():
            self.conn.execute(
                "UPDATE digests SET status = ?, finished_at = ?, note = ?"
                " WHERE platform = ? AND chat_id = ? AND week = ?",
                (status, iso(at), note, platform, chat_id, week),
            )

    # -- export ---------------------------------------------------------------------------
    # Added for `gpudesk import`, `export` and `browse` (issue 8): counts, whole-ledger reads
    # streamed from a cursor (a million rows never sit in a list), and a WAL checkpoint.

    def offer_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM offers").fetchone()[0])

    def iter_offers(self, *, since: datetime | None = None) -> Iterator[OfferRecord]:
        """Every offer posted at or after `since` (all when None), in posting order."""
        where, params = ("WHERE o.posted_at >= ?", (iso(since),)) if since else ("", ())
        sql = f"SELECT {_OFFER_COLUMNS} FROM {_OFFER_FROM} {where} ORDER BY o.posted_at, o.id"
        for row in self.conn.execute(sql, params):
            yield self._offer_record(row)

    def iter_messages(self, *, since: datetime | None = None) -> Iterator[tuple[ChatMessage, str]]:
        """Every message sent at or after `since` (all when None), in time order, with its
        source ("live" or "import"). `edited` is set on messages that were edited."""
        where, params = ("WHERE m.sent_at >= ?", (iso(since),)) if since else ("", ())
        sql = (
            "SELECT m.platform, m.chat_id, m.message_id, m.sender_id, m.sender_name,"
            " m.poster_id, m.poster_name, m.text, m.sent_at, m.reply_to_id, m.link,"
            " m.edited_at, m.source, c.title FROM messages m"
            " LEFT JOIN chats c ON c.platform = m.platform AND c.chat_id = m.chat_id"
            f" {where} ORDER BY m.sent_at, m.id"
        )
        for row in self.conn.execute(sql, params):
            forwarded = row[5] != row[3]
            message = ChatMessage(
                platform=row[0],
                chat_id=row[1],
                message_id=row[2],
                sender_id=row[3],
                sender_name=row[4] or "",
                origin_sender_id=row[5] if forwarded else None,
                origin_sender_name=row[6] if forwarded else None,
                text=row[7],
                sent_at=from_iso(row[8]),
                reply_to_id=row[9],
                link=row[10],
                edited=row[11] is not None,
                chat_title=row[13],
                announce=False,
            )
            yield message, row[12] or "live"

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """A long run of writes (an import): the write-ahead log is copied into the file in
        fewer, larger steps (each one syncs the file), and at the end copied in whole and
        emptied, so that it does not stay at its largest (it waits for a writer under way)."""
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {BULK_CHECKPOINT_PAGES}")
        try:
            yield
        finally:
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
        if not self._depth:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    @contextmanager
    def batched(self, *, since: datetime, until: datetime) -> Iterator[None]:
        """A batch of history written in one go, inside the caller's write transaction
        (`Desk.read_history`): no savepoint per message (each costs a copy of every page it
        touches), and the posters' standing offers kept in memory for the repost checks of
        posts made from `since` to `until`. A write that fails inside spoils the batch: the
        caller rolls the whole transaction back (it raises here if the failure was swallowed).

        The book in memory is kept up to date by the ledger's own writes and carried from one
        batch to the next while nothing else wrote: no other connection (SQLite's
        `data_version`) and no other transaction on this one. A later batch adds the offers
        posted since the last one's end; one that goes back in time (the next chat of an
        export) or follows another writer reads it afresh."""
        if not self._depth:
            raise LedgerError("a batch is written inside a transaction (Ledger.transaction)")
        floor, ceiling = iso(since), iso(until)
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        book = self._offer_book
        if (
            book is None
            or book.version != version
            or book.serial != self._serial - 1
            or floor < book.floor
        ):
            book = self._offer_book = _Standing(floor, ceiling)
        else:
            if ceiling > book.ceiling:
                book.extend(ceiling, self._offers_posted(book.ceiling, ceiling, book.floor))
            book.move_on(floor)
        book.version, book.spoiled = version, False
        self._batch = book
        try:
            yield
            self._write_refreshes()
        finally:
            self._batch = None
        if book.spoiled:
            self._offer_book = None
            raise LedgerError("a write in this batch failed: roll the batch back")
        book.serial = self._serial  # good for the next batch, if it comes right after this one

    def checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the main file, so that a reader that
        ignores the log (Datasette's immutable mode) sees the ledger as it is now."""
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # -- listings (issue 11): advertisements and withdrawals, what the pulse counts ---------------
    # Every offer read from every post is an advertisement, whether the book stored it or
    # refreshed a standing offer with it; messages that end a deal, `/cancel` and `/filled` are
    # withdrawals. `listings()` reads them back into `market.listings`, the one pulse engine.

    def record_advert(
        self,
        *,
        message_row: int,
        item: int,
        message: ChatMessage,
        offer: Offer,
        gpus: int | None,
        offer_id: int | None,
    ) -> int:
        """Remember that `message` advertised `offer` (booked as, or refreshing, `offer_id`)."""
        amount, own, _ = self.unit_prices(offer)  # in its own currency: FX applies on read
        platform, poster_id, chat_id = message.platform, message.poster_id, message.chat_id
        unit_amount = None if amount is None else str(amount)
        codes, db = self._codes, self.db
        # The codes (`migrations.listing_codes`), from the ledger's cache when it has them.
        quote = None
        if unit_amount is not None:
            key = f"{unit_amount} {own}"
            quote = codes.get(("quotes", key)) or code(db, "quotes", {"key": key}, codes)
        party = codes.get(("parties", platform, poster_id)) or code(
            db, "parties", {"platform": platform, "poster_id": poster_id}, codes
        )
        venue = codes.get(("venues", platform, chat_id)) or code(
            db, "venues", {"platform": platform, "chat_id": chat_id}, codes
        )
        side, deal, place = offer.side.value, offer.deal.value, offer.location
        key = lot_key(side, deal, offer.gpu, gpus, place)
        lot = codes.get(("lots", key)) or code(
            db,
            "lots",
            {"key": key, "side": side, "deal": deal, "gpu": offer.gpu, "gpus": gpus,
             "location": place},
            codes,
        )  # fmt: skip
        with self._writing():
            cursor = self.conn.execute(
                _INSERT_ADVERT,
                (
                    *_offer_values(offer),
                    message_row,
                    item,
                    offer_id,
                    platform,
                    chat_id,
                    poster_id,
                    iso(message.sent_at),
                    micros(message.sent_at),
                    gpus,
                    unit_amount,
                    None if amount is None else own,
                    quote,
                    party,
                    venue,
                    lot,
                ),
            )
        return int(cursor.lastrowid or 0)

    def forget_listing_facts(self, message_row: int, *, keep_adverts: bool = False) -> bool:
        """Before an edited message is read again, forget what it withdrew and, unless
        `keep_adverts`, what it advertised. True when it had advertisements and kept them:
        a post edited into "已出" ends what it advertised rather than erasing it."""
        with self._writing():
            self.conn.execute("DELETE FROM withdrawals WHERE message = ?", (message_row,))
            if not keep_adverts:
                self.conn.execute("DELETE FROM adverts WHERE message = ?", (message_row,))
                return False
            row = self.conn.execute(
                "SELECT 1 FROM adverts WHERE message = ? LIMIT 1", (message_row,)
            ).fetchone()
        return row is not None

    def record_withdrawal(
        self,
        *,
        message_row: int,
        message: ChatMessage,
        said: Withdrawn,
        at: datetime,
        lifetime: timedelta,
        reply_to_id: str | None = None,
    ) -> int:
        """Keep a message that ends a deal, and close the book offers of what it ends.

        `at` is when it was said: the message's time, or the edit's for a post edited into
        "sold" (which then answers itself: `reply_to_id`). The pulse reads withdrawals back by
        itself; closing the book's offers here only keeps matching from offering sold stock.
        """
        reply = reply_to_id or message.reply_to_id
        self._write_refreshes()  # the book offers it reads must be as they are
        with self._writing():
            cursor = self.conn.execute(
                "INSERT INTO withdrawals (message, kind, platform, chat_id, poster_id, at, at_us,"
                " reply_to_id, words, side, deal, gpu, variant, location, gpus)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    message_row,
                    Closing.SAID.value,
                    message.platform,
                    message.chat_id,
                    message.poster_id,
                    iso(at),
                    micros(at),
                    reply,
                    said.words,
                    None if said.side is None else said.side.value,
                    None if said.deal is None else said.deal.value,
                    said.gpu,
                    said.variant,
                    said.place,
                    said.gpus,
                ),
            )
            withdrawal_id = int(cursor.lastrowid or 0)
            book = self._closing_book(message, said.gpu, reply, at=at, lifetime=lifetime)
            if book is not None:
                for listing in book.closed_by(withdrawal_id):
                    self._withdraw_offers({a[8] for a, _ in listing.adverts}, at)  # offer
        return withdrawal_id

    def _closing_book(
        self,
        message: ChatMessage,
        gpu: str | None,
        reply_to_id: str | None,
        *,
        at: datetime,
        lifetime: timedelta,
    ) -> Listings | None:
        """The listings a withdrawal by `message` at `at` may close, read back a bounded way.

        A withdrawal closes listings of its poster (as their party, or as the broker who
        relayed them) and of the post it answers, of the model it names (or the post's). The
        listings of a lot depend only on that lot's advertisements and on withdrawals by their
        parties; so the lots of the poster's standing book offers of that model and of the post
        answered, their advertisements over the last offer lifetime (and a broker's day), and
        the withdrawals of the parties in them are enough: a few dozen rows however long the
        history (before: every advertisement of the model in six weeks, and every code)."""
        low, high = micros(at - lifetime - BROKER_WINDOW), micros(at)
        conn = self.conn
        lots: set[int] = set()
        if gpu is not None:
            offers = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM offers INDEXED BY offers_poster_lot"
                    " WHERE platform = ? AND poster_id = ? AND gpu = ? AND deal IN (?, ?)"
                    " AND side IN (?, ?) AND status = ? AND expires_at > ?",
                    (message.platform, message.poster_id, gpu, *Deal, *Side, OPEN, iso(at)),
                )
            ]
            lots.update(
                row[0]
                for row in _rows_in(
                    conn,
                    "SELECT DISTINCT lot FROM adverts WHERE offer IN ({})"
                    f" AND at_us >= {low} AND at_us <= {high}",
                    offers,
                )
            )
        if reply_to_id is not None:
            lots.update(
                row[0]
                for row in conn.execute(
                    "SELECT a.lot FROM adverts a JOIN messages m ON m.id = a.message"
                    " WHERE m.platform = ? AND m.chat_id = ? AND m.message_id = ?",
                    (message.platform, message.chat_id, reply_to_id),
                )
            )
        if not lots:
            return None
        found = {
            row[0]: Lot(Side(row[1]), Deal(row[2]), row[3], row[4], row[5])
            for row in _rows_in(
                conn, "SELECT id, side, deal, gpu, gpus, location FROM lots WHERE id IN ({})", lots
            )
        }
        if gpu is not None:  # a withdrawal naming a model ends listings of that model only
            found = {code: lot for code, lot in found.items() if lot.gpu == gpu}
        if not found:
            return None
        adverts = sorted(
            _rows_in(
                conn,
                "SELECT a.id, a.message, a.at_us, a.party, a.venue, a.lot, a.variant, a.quote,"
                " a.offer FROM adverts a INDEXED BY adverts_lot WHERE a.lot IN ({})"
                f" AND a.at_us >= {low} AND a.at_us <= {high}",
                found,
            ),
            key=itemgetter(2, 1, 0),
        )
        parties = {
            row[0]: (row[1], row[2])
            for row in _rows_in(
                conn,
                "SELECT id, platform, poster_id FROM parties WHERE id IN ({})",
                {a[3] for a in adverts},
            )
        }
        by_platform: dict[str, list[str]] = {}
        for platform, poster_id in sorted(parties.values()):
            by_platform.setdefault(platform, []).append(poster_id)
        withdrawals = sorted(
            (
                w
                for platform, posters in by_platform.items()
                for w in self._withdrawals(
                    until=at, since=moment(low), gpu=gpu, by=(platform, posters)
                )
            ),
            key=attrgetter("at", "id"),
        )
        codes = Codes(parties=parties, lots=found, prices=self._prices({a[7] for a in adverts}))
        return build_listings(adverts, withdrawals, lifetime=lifetime, codes=codes, in_order=True)

    def _prices(self, quotes: set[int | None]) -> dict[int, Decimal | None]:
        """Unit prices of quote codes, in the desk's currency."""
        valuation = self.valuation
        prices: dict[int, Decimal | None] = {}
        for quote, key in _rows_in(
            self.conn, "SELECT id, key FROM quotes WHERE id IN ({})", quotes - {None}
        ):
            amount, _, currency = key.partition(" ")
            prices[quote] = convert(
                Decimal(amount), Currency(currency), valuation.currency, valuation.usd_cny
            )
        return prices

    def record_closing(
        self, offer_id: int, status: str, *, at: datetime, message: ChatMessage
    ) -> None:
        """`/cancel` (status withdrawn) or `/filled` closed a book offer: keep it as a
        withdrawal, so the listing that offer advertised ends there too."""
        kind = Closing.FILLED if status == FILLED else Closing.CANCEL
        row = self.conn.execute(
            "SELECT id FROM messages WHERE platform = ? AND chat_id = ? AND message_id = ?",
            (message.platform, message.chat_id, message.message_id),
        ).fetchone()
        owner = self.conn.execute(
            "SELECT platform, chat_id, poster_id FROM offers WHERE id = ?", (offer_id,)
        ).fetchone()
        if owner is None:
            return
        with self._writing():
            self.conn.execute(
                "INSERT INTO withdrawals (message, kind, offer, platform, chat_id, poster_id, at,"
                " at_us, words) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    None if row is None else row[0],
                    kind.value,
                    offer_id,
                    *owner,
                    iso(at),
                    micros(at),
                    f"/{'filled' if kind is Closing.FILLED else 'cancel'}",
                ),
            )

    def listing_facts(
        self,
        *,
        until: datetime,
        since: datetime | None = None,
        gpu: str | None = None,
        deal: Deal | None = None,
        chat: tuple[str | None, str] | None = None,
        keep_posts: bool = True,
    ) -> tuple[list[Advert], list[Withdrawal], Codes]:
        """Advertisements and withdrawals up to `until` (inclusive), and what their codes mean.

        The advertisements come as the ledger's compact rows, in `Advert`'s field order with
        codes for party, group, lot and price (`Codes` maps them), as a year's pulse reads a
        million: one query, no per-row Python. Without `keep_posts` the group is left out.
        `chat` is (platform or None, chat id): one group's advertisements. Withdrawals are
        never filtered by chat (a `/cancel` in a private chat ends a listing in a group), nor
        by model when they name none (a reply says it by the post it answers).
        """
        where, params = ["a.at_us <= ?"], [micros(until)]
        if since is not None:
            where.append("a.at_us >= ?")
            params.append(micros(since))
        for column, value in (("a.gpu", gpu), ("a.deal", deal)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(str(value))
        if chat is not None:
            where.append("a.chat_id = ?")
            params.append(chat[1])
            if chat[0] is not None:
                where.append("a.platform = ?")
                params.append(chat[0])
        # Lean readers need no group (it only tells a repost from a cross-post).
        venue = "a.venue" if keep_posts else "NULL"
        sql = (
            f"SELECT a.id, a.message, a.at_us, a.party, {venue}, a.lot, a.variant, a.quote,"
            f" a.offer FROM adverts a WHERE {' AND '.join(where)}"
            " ORDER BY a.at_us, a.message, a.id"  # the engine's order; free from the index
        )
        with gc_paused():
            adverts = self.conn.execute(sql, params).fetchall()
        return adverts, self._withdrawals(until=until, since=since, gpu=gpu), self._codebook()

    def listings(
        self,
        *,
        until: datetime,
        lifetime: timedelta,
        since: datetime | None = None,
        gpu: str | None = None,
        deal: Deal | None = None,
        chat: tuple[str | None, str] | None = None,
        keep_posts: bool = False,
    ) -> Listings:
        """The listings read from the ledger up to `until` (see `market.listings`); with
        `keep_posts`, every post of each listing and its role (`explain`)."""
        adverts, withdrawals, codes = self.listing_facts(
            until=until, since=since, gpu=gpu, deal=deal, chat=chat, keep_posts=keep_posts
        )
        return build_listings(
            adverts,
            withdrawals,
            lifetime=lifetime,
            codes=codes,
            keep_posts=keep_posts,
            in_order=True,
        )

    # -- the market as it goes: `/price` and `/market` in milliseconds --------------------------
    # `listings()` + `pulses()` read the whole history: seconds for a million posts. A
    # `LiveMarket` per scope is built from it once and then fed the rows added since (found by
    # their ids; `listing_changes` tells of rows deleted or rewritten), and saved in the ledger
    # for the next start (`market_saved`); past weeks' pulses are kept until a row of their
    # time or before comes in.

    def week_pulses(
        self,
        week: Week,
        *,
        now: datetime,
        lifetime: timedelta,
        gpu: str | None = None,
        chat: tuple[str | None, str] | None = None,
        thresholds: ReadingThresholds = DEFAULT_THRESHOLDS,
    ) -> list[Pulse]:
        """`pulses(self.listings(until=now, ...), [week], gpu=gpu)`: the same figures, from
        state kept in memory for this week and the week before, and from a cache for weeks
        past (or read afresh when neither can say)."""
        currency = self.valuation.currency
        current = Week.of(now, week.zone)
        if week in (current, current.shifted(-1)):
            market = self._live_market(chat, lifetime, week.zone, now)
            if market is not None:
                found = market.pulses(week, currency=currency, thresholds=thresholds, gpu=gpu)
                if found is not None:
                    return found
        elif week.end <= now:  # a week past: final until a row of its time comes in
            key = (chat, lifetime, str(week.zone), week.label, gpu, thresholds, currency)
            cached = self._past.get(key)
            with self._reading():
                stamp = self._stamp()
                if cached is not None and not self._touched_since(cached[0], micros(week.end)):
                    self._past[key] = (stamp, cached[1])  # still good as of now
                    return cached[1]
                found = self._read_pulses(week, now, lifetime, gpu, chat, thresholds)
            if len(self._past) >= PAST_WEEKS_KEPT:
                self._past.pop(next(iter(self._past)))
            self._past[key] = (stamp, found)
            return found
        return self._read_pulses(week, now, lifetime, gpu, chat, thresholds)

    def warm_market(
        self,
        *,
        now: datetime,
        lifetime: timedelta,
        zone: tzinfo,
        chat: tuple[str | None, str] | None = None,
    ) -> None:
        """Build the market state `week_pulses` keeps (seconds for a million posts; read back
        as saved in the ledger on a restart), so that the first `/price` need not."""
        self._live_market(chat, lifetime, zone, now)

    def _read_pulses(
        self,
        week: Week,
        now: datetime,
        lifetime: timedelta,
        gpu: str | None,
        chat: tuple[str | None, str] | None,
        thresholds: ReadingThresholds,
    ) -> list[Pulse]:
        book = self.listings(until=now, lifetime=lifetime, gpu=gpu, chat=chat)
        return pulses(
            book, [week], currency=self.valuation.currency, thresholds=thresholds, gpu=gpu
        )

    def _live_market(
        self,
        chat: tuple[str | None, str] | None,
        lifetime: timedelta,
        zone: tzinfo,
        now: datetime,
    ) -> LiveMarket | None:
        """The scope's market, brought up to `now`; None when `now` is before a moment it
        was asked about (the caller reads the history afresh).

        Rows added in order are fed to it. When that cannot be (a row deleted or rewritten, or
        one arriving behind others it met), it goes back to a copy kept from before the
        earliest row concerned (`SPARE_EVERY`) and reads on from there; only when no copy is
        old enough is the whole history read again. A scope's market not in memory is read
        back as saved in the ledger (`_load_market`), if it was, and fits."""
        key = (chat, lifetime, str(zone))
        found = self._markets.get(key)
        with self._reading():
            made = found is None
            if found is None:  # the market saved in the ledger, if any is good
                found = self._load_market(chat, lifetime, zone, now)
            if found is not None:
                if micros(now) < found.market.now:
                    return None
                earliest = self._catch_up(found, chat, now)
                if earliest is not None:
                    made = True
                    if not self._restore(found, chat, now, earliest):
                        found = None
            if found is None:
                found = self._build_market(chat, lifetime, zone, now)
            made |= self._keep_spare(found)
        if made:
            settle(found.market)
        found.serial = self._serial if self._depth else -1
        self._markets.pop(key, None)
        while len(self._markets) >= MARKETS_KEPT:
            self._markets.pop(next(iter(self._markets)))
        self._markets[key] = found
        self._save_market(chat, lifetime, zone, found)
        return found.market

    def _build_market(
        self,
        chat: tuple[str | None, str] | None,
        lifetime: timedelta,
        zone: tzinfo,
        now: datetime,
    ) -> _Market:
        """The market read from the whole history, and a copy of it as it was a day before
        `now` (to go back to, and to save in the ledger). The history is read from the cursor
        as the market takes it in, never whole."""
        stamp = self._stamp()
        until = micros(now)
        split = min(until, micros(now - SPARE_EVERY))
        codes = self._market_codes()
        withdrawals = self._withdrawals(until=_END_OF_TIME, since=None, gpu=None)
        market = LiveMarket.build(
            self._adverts_where(chat, "a.at_us <= ?", [split], order=_IN_TIME),
            [w for w in withdrawals if w.at <= split],
            codes=codes,
            lifetime=lifetime,
            zone=zone,
            now=moment(split),
        )
        spare = market.freeze(_spill())
        spare.tag = stamp  # it read the rows up to `stamp` of `split` or before
        rest = self._adverts_where(chat, "a.at_us > ?", [split], order=_IN_TIME).fetchall()
        ok = market.feed(
            [a for a in rest if a[2] <= until],
            [w for w in withdrawals if split < w.at <= until],
            now,
        )
        assert ok, "the rows after the copy come in order"
        return _Market(
            market=market,
            stamp=stamp,
            codes=_code_marks(self.conn),
            later_adverts=[a for a in rest if a[2] > until],
            later_withdrawals=[w for w in withdrawals if w.at > until],
            serial=-1,
            spares=[spare],
            spare_due=market.cursor[0] + SPARE_EVERY // _US,  # a day from now
            unsaved=spare,
        )

    # A copy of a scope's market is saved in the ledger (`market_saved`) as it is made: when
    # the market is built, and a day of posts after each copy. A restart reads it back and the
    # rows added since (a second or two), not the whole history: only a save made otherwise
    # (`_made`), or one older than a row since deleted or rewritten, is read again in full.

    def _load_market(
        self,
        chat: tuple[str | None, str] | None,
        lifetime: timedelta,
        zone: tzinfo,
        now: datetime,
    ) -> _Market | None:
        """The scope's market as saved, with the rows it had not read yet (after the moment
        it was saved at); None when there is none fit to read."""
        row = self.conn.execute(
            "SELECT rowid, made, advert, withdrawal, change, now_us, cursor FROM market_saved"
            " WHERE scope = ?",
            (json.dumps(chat),),
        ).fetchone()
        made = self._made(lifetime, zone)
        if row is None or made is None or row[1] != made or row[5] > micros(now):
            return None
        stamp, latest = _Stamp(row[2], row[3], row[4]), self._stamp()
        if (
            stamp.advert > latest.advert
            or stamp.withdrawal > latest.withdrawal
            or stamp.change > latest.change
        ):
            return None  # rows it read are gone
        read_to = row[5]  # the moment it had read up to
        codes = self._market_codes()
        try:
            with self.conn.blobopen("market_saved", "packed", row[0], readonly=True) as blob:
                cursor = tuple(json.loads(row[6]))
                spare = FrozenMarket.read_from(blob, codes, cursor, read_to, _spill())  # type: ignore[arg-type]
            market = spare.thaw()
        except Exception:  # anything wrong with it: read the history instead
            _log.warning("the market saved in the ledger could not be read: reading history")
            return None
        spare.tag = stamp
        later = self._adverts_where(chat, "a.id <= ? AND a.at_us > ?", [stamp.advert, read_to])
        return _Market(
            market=market,
            stamp=stamp,
            codes=_code_marks(self.conn),
            later_adverts=later.fetchall(),
            later_withdrawals=[
                w
                for w in self._withdrawals(until=_END_OF_TIME, since=moment(read_to), gpu=None)
                if w.at > read_to and w.id <= stamp.withdrawal
            ],
            serial=-1,
            spares=[spare],
            # not at once: a restart need not pay for a copy (and its memory) to spare a day
            spare_due=spare.cursor[0] + 2 * SPARE_EVERY // _US,
            saved=spare.cursor,
        )

    def _save_market(
        self,
        chat: tuple[str | None, str] | None,
        lifetime: timedelta,
        zone: tzinfo,
        found: _Market,
    ) -> None:
        """Save the scope's copy to save, if any, in the write under way or one of its own
        (not inside another's reading: then at a later call)."""
        spare, made = found.unsaved, self._made(lifetime, zone)
        if spare is None or made is None or (not self._depth and self.conn.in_transaction):
            return
        stamp = cast(_Stamp, spare.tag)
        try:
            with self._writing():
                self.conn.execute(
                    "INSERT INTO market_saved (scope, made, advert, withdrawal, change, now_us,"
                    " cursor, saved_at, packed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, zeroblob(?))"
                    " ON CONFLICT (scope) DO UPDATE SET made = excluded.made,"
                    " advert = excluded.advert, withdrawal = excluded.withdrawal,"
                    " change = excluded.change, now_us = excluded.now_us,"
                    " cursor = excluded.cursor, saved_at = excluded.saved_at,"
                    " packed = excluded.packed",
                    (
                        json.dumps(chat),
                        made,
                        stamp.advert,
                        stamp.withdrawal,
                        stamp.change,
                        spare.now,
                        json.dumps(spare.cursor),
                        iso(datetime.now(UTC)),
                        spare.size,
                    ),
                )
                rowid = self.conn.execute(
                    "SELECT rowid FROM market_saved WHERE scope = ?", (json.dumps(chat),)
                ).fetchone()[0]
                with self.conn.blobopen("market_saved", "packed", rowid) as blob:
                    spare.write_to(blob)
        except sqlite3.Error as error:  # a save is for later starts: never worth failing for
            _log.warning("could not save the market in the ledger: %s", error)
            found.unsaved = None  # the next copy will try again
            return
        found.unsaved, found.saved = None, spare.cursor

    def _made(self, lifetime: timedelta, zone: tzinfo) -> str | None:
        """What a saved market depends on besides the rows: the code that reads the market,
        the offer lifetime, the time zone and the exchange rate (None: the code cannot say
        what it is, so nothing is saved or read back)."""
        valuation = self.valuation
        if _market_code() is None:
            return None
        return json.dumps(
            [_market_code(), lifetime // _US, str(zone), valuation.currency.value,
             str(valuation.usd_cny)]
        )  # fmt: skip

    def _catch_up(
        self, found: _Market, chat: tuple[str | None, str] | None, now: datetime
    ) -> int | None:
        """Feed the market what was added since it last read; None when it took it all in,
        else the time (µs) of the earliest row it could not, or that was deleted or rewritten
        (the market is then spoiled: the caller goes back to a copy)."""
        stamp, new_stamp = found.stamp, self._stamp()
        changed = self.conn.execute(
            "SELECT max(id), min(at_us) FROM listing_changes WHERE id > ?", (stamp.change,)
        ).fetchone()
        # Up to the ledger's last ids, whatever the scope: a quiet group's market does not
        # look again through every other group's rows since its own last one.
        adverts = self._adverts_where(
            chat, "a.id > ? AND a.id <= ?", [stamp.advert, new_stamp.advert]
        ).fetchall()
        withdrawals = [
            w for w in self._withdrawals_after(stamp.withdrawal) if w.id <= new_stamp.withdrawal
        ]
        if changed[0] is not None:  # a row deleted or rewritten (an edit read again)
            return min([changed[1], *(a[2] for a in adverts), *(w.at for w in withdrawals)])
        if adverts:
            self._learn_codes(found)
        until = micros(now)
        adverts = found.later_adverts + adverts
        withdrawals = found.later_withdrawals + withdrawals
        found.later_adverts = [a for a in adverts if a[2] > until]
        found.later_withdrawals = [w for w in withdrawals if w.at > until]
        found.stamp = new_stamp
        ready_adverts = [a for a in adverts if a[2] <= until]
        ready_withdrawals = [w for w in withdrawals if w.at <= until]
        if found.market.feed(ready_adverts, ready_withdrawals, now):
            return None
        return min([*(a[2] for a in ready_adverts), *(w.at for w in ready_withdrawals)])

    def _restore(
        self,
        found: _Market,
        chat: tuple[str | None, str] | None,
        now: datetime,
        earliest: int,
    ) -> bool:
        """Go back to the latest copy made before `earliest` (µs) and read on from there to
        `now`; False when there is none."""
        usable = [
            spare
            for spare in found.spares
            if spare.cursor[0] < earliest and spare.now <= micros(now)
        ]
        if not usable:
            return False
        spare = max(usable, key=lambda frozen: frozen.cursor)
        market = spare.thaw()  # the copy stays as it was, for the next time
        since = spare.cursor[0]
        stamp = self._stamp()
        adverts = [
            a
            for a in self._adverts_where(chat, "a.at_us >= ?", [since])
            if (a[2], a[1], 0, a[0]) > spare.cursor
        ]
        withdrawals = [
            w
            for w in self._withdrawals(until=_END_OF_TIME, since=moment(since), gpu=None)
            if (w.at, w.message or 0, 1, w.id) > spare.cursor
        ]
        self._learn_codes(found)
        until = micros(now)
        if not market.feed(
            [a for a in adverts if a[2] <= until], [w for w in withdrawals if w.at <= until], now
        ):
            return False
        found.market, found.stamp = market, stamp
        found.later_adverts = [a for a in adverts if a[2] > until]
        found.later_withdrawals = [w for w in withdrawals if w.at > until]
        found.spares = [other for other in found.spares if other.cursor < spare.cursor]
        found.spares.append(spare)
        if found.saved is not None and found.saved[0] >= earliest:
            found.unsaved = spare  # the saved one read what is now gone: save this instead
        return True

    def _keep_spare(self, found: _Market) -> bool:
        """A copy of the market a day of posts after the last one (two kept at most); whether
        one was made."""
        market = found.market
        if found.spares and market.cursor[0] < found.spare_due:
            return False
        spare = found.unsaved = market.freeze(_spill())
        spare.tag = found.stamp
        found.spares = [*found.spares[-(SPARES_KEPT - 1) :], spare]
        found.spare_due = market.cursor[0] + SPARE_EVERY // _US
        return True

    def _adverts_where(
        self,
        chat: tuple[str | None, str] | None,
        condition: str,
        params: list[Any],
        *,
        order: str = "a.id",
    ) -> sqlite3.Cursor:
        """Advertisements as `listing_facts` gives them (lean), but each priced by its quote's
        text (`_Quotes`), in `order` (by id, or `_IN_TIME`: the engine's, from the index), as
        a cursor: rows come as they are read, never all at once."""
        where = [condition]
        if chat is not None:
            where.append("a.chat_id = ?")
            params = [*params, chat[1]]
            if chat[0] is not None:
                where.append("a.platform = ?")
                params.append(chat[0])
        return self.conn.execute(
            "SELECT a.id, a.message, a.at_us, a.party, NULL, a.lot, a.variant, q.key, a.offer"
            " FROM adverts a LEFT JOIN quotes q ON q.id = a.quote"
            f" WHERE {' AND '.join(where)} ORDER BY {order}",
            params,
        )

    def _learn_codes(self, found: _Market) -> None:
        """Add the parties and lots coded since the market was built to its codes (its prices
        are worked out from the quotes' text as they come: `_Quotes`)."""
        codes = found.market.builder.codes
        parties, lots, quotes = found.codes
        parties_map = cast(dict[int, tuple[str, str]], codes.parties)
        for code_id, platform, poster_id in self.conn.execute(
            "SELECT id, platform, poster_id FROM parties WHERE id > ?", (parties,)
        ):
            parties_map[code_id] = (platform, poster_id)
            parties = max(parties, code_id)
        lots_map = cast(dict[int, Lot], codes.lots)
        for row in self.conn.execute(
            "SELECT id, side, deal, gpu, gpus, location FROM lots WHERE id > ?", (lots,)
        ):
            lots_map[row[0]] = Lot(Side(row[1]), Deal(row[2]), row[3], row[4], row[5])
            lots = max(lots, row[0])
        found.codes = (parties, lots, quotes)

    def _withdrawals_after(self, last_id: int) -> list[Withdrawal]:
        """Withdrawals with ids after `last_id`, whenever they were said."""
        return self._withdrawals(until=_END_OF_TIME, since=None, gpu=None, after=last_id)

    def _stamp(self) -> _Stamp:
        """How far the ledger's listing rows go: their last ids (rows after a stamp are news
        to whoever read up to it)."""
        row = self.conn.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM adverts),"
            " (SELECT coalesce(max(id), 0) FROM withdrawals),"
            " (SELECT coalesce(max(id), 0) FROM listing_changes)"
        ).fetchone()
        return _Stamp(advert=row[0], withdrawal=row[1], change=row[2])

    def _touched_since(self, stamp: _Stamp, before: int) -> bool:
        """Whether a listing row of a time before `before` (µs) was added, deleted or
        rewritten since `stamp`."""
        for sql, last in (
            ("SELECT 1 FROM adverts WHERE id > ? AND at_us < ? LIMIT 1", stamp.advert),
            ("SELECT 1 FROM withdrawals WHERE id > ? AND at_us < ? LIMIT 1", stamp.withdrawal),
            ("SELECT 1 FROM listing_changes WHERE id > ? AND at_us < ? LIMIT 1", stamp.change),
        ):
            if self.conn.execute(sql, (last, before)).fetchone() is not None:
                return True
        return False

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Reads that must agree with each other: one snapshot of the file (a transaction of
        their own, unless one is under way)."""
        if self._depth or self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def listing_posts(
        self, *, adverts: Sequence[int] = (), withdrawals: Sequence[int] = ()
    ) -> dict[tuple[str, int], ListingPost]:
        """The posts behind advertisements and withdrawals, keyed ("advert", id) and
        ("withdrawal", id): for `explain`, which shows each one's group, poster and words."""
        found: dict[tuple[str, int], ListingPost] = {}
        for kind, ids, sql in (
            (
                "advert",
                adverts,
                "SELECT a.id, a.platform, a.chat_id, c.title, m.poster_name, m.poster_id,"
                " a.posted_at, m.text, m.link, a.side, a.deal, a.gpu, a.variant, a.memory_gb,"
                " a.quantity, a.quantity_unit, a.gpus_per_server, a.price, a.currency,"
                " a.price_per, a.location FROM adverts a JOIN messages m ON m.id = a.message"
                " LEFT JOIN chats c ON c.platform = a.platform AND c.chat_id = a.chat_id"
                " WHERE a.id IN ({})",
            ),
            (
                "withdrawal",
                withdrawals,
                "SELECT w.id, w.platform, w.chat_id, c.title, coalesce(m.poster_name,"
                " u.name), w.poster_id, w.at, coalesce(m.text, w.words), m.link"
                " FROM withdrawals w LEFT JOIN messages m ON m.id = w.message"
                " LEFT JOIN chats c ON c.platform = w.platform AND c.chat_id = w.chat_id"
                " LEFT JOIN users u ON u.platform = w.platform AND u.user_id = w.poster_id"
                " WHERE w.id IN ({})",
            ),
        ):
            wanted = sorted(set(ids))
            for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
                chunk = wanted[start : start + 500]
                query = sql.format(", ".join("?" for _ in chunk))
                for row in self.conn.execute(query, chunk):
                    offer = None
                    if kind == "advert":
                        names = (
                            "side", "deal", "gpu", "variant", "memory_gb", "quantity",
                            "quantity_unit", "gpus_per_server", "price", "currency",
                            "price_per", "location",
                        )  # fmt: skip
                        offer = Offer.from_contract(dict(zip(names, row[9:], strict=True)))
                    found[(kind, row[0])] = ListingPost(
                        chat=(row[1], row[2]),
                        chat_title=row[3],
                        poster_name=row[4] or row[5],
                        at=from_iso(row[6]),
                        text=row[7] or "",
                        link=row[8],
                        offer=offer,
                    )
        return found

    def _market_codes(self) -> Codes:
        """What the live market's rows' codes stand for: parties and lots by code, prices by
        their quote's text (`_adverts_where`), worked out as they come (`_Quotes`)."""
        parties, lots = self._parties_and_lots()
        return Codes(parties=parties, lots=lots, prices=_Quotes(self.valuation))

    def _parties_and_lots(self) -> tuple[dict[int, tuple[str, str]], dict[int, Lot]]:
        """The party and lot codes of advertisement rows, and what each stands for."""
        parties = {
            row[0]: (row[1], row[2])
            for row in self.conn.execute("SELECT id, platform, poster_id FROM parties")
        }
        lots = {
            row[0]: Lot(Side(row[1]), Deal(row[2]), row[3], row[4], row[5])
            for row in self.conn.execute("SELECT id, side, deal, gpu, gpus, location FROM lots")
        }
        return parties, lots

    def _codebook(self) -> Codes:
        """What advertisement rows' codes stand for; prices in the desk's currency."""
        parties, lots = self._parties_and_lots()
        valuation = self.valuation
        prices: dict[int, Decimal | None] = {}
        for quote, key in self.conn.execute("SELECT id, key FROM quotes"):
            amount, _, currency = key.partition(" ")
            prices[quote] = convert(
                Decimal(amount), Currency(currency), valuation.currency, valuation.usd_cny
            )
        return Codes(parties=parties, lots=lots, prices=prices)

    def _withdrawals(
        self,
        *,
        until: datetime,
        since: datetime | None,
        gpu: str | None,
        by: tuple[str, Sequence[str]] | None = None,
        after: int | None = None,
    ) -> list[Withdrawal]:
        where, params = ["w.at_us <= ?"], [micros(until)]
        if after is not None:  # ids after this one only
            where.append("w.id > ?")
            params.append(after)
        if by is not None:  # these posters' (of one platform) only
            platform, posters = by
            where.append(f"w.platform = ? AND w.poster_id IN ({', '.join('?' for _ in posters)})")
            params.extend((platform, *posters))
        if since is not None:
            where.append("w.at_us >= ?")
            params.append(micros(since))
        if gpu is not None:
            where.append("(w.gpu = ? OR w.gpu IS NULL)")
            params.append(gpu)
        rows = self.conn.execute(
            "SELECT w.id, w.message, w.at_us, w.platform, w.poster_id, w.chat_id, w.kind, r.id,"
            " w.gpu, w.deal, w.side, w.location, w.gpus, w.offer, p.id FROM withdrawals w"
            " LEFT JOIN messages r ON r.platform = w.platform AND r.chat_id = w.chat_id"
            " AND r.message_id = w.reply_to_id"
            " LEFT JOIN parties p ON p.platform = w.platform AND p.poster_id = w.poster_id"
            f" WHERE {' AND '.join(where)} ORDER BY w.at_us, w.id",
            params,
        ).fetchall()
        return [
            Withdrawal(
                id=row[0],
                message=row[1],
                at=row[2],
                # as advertisements name it: by code (a poster with none closes nothing)
                party=(row[3], row[4]) if row[14] is None else row[14],
                chat=(row[3], row[5]),
                kind=Closing(row[6]),
                reply_to=row[7],
                gpu=row[8],
                deal=None if row[9] is None else Deal(row[9]),
                side=None if row[10] is None else Side(row[10]),
                place=row[11],
                gpus=row[12],
                offer=row[13],
            )
            for row in rows
        ]

    def _withdraw_offers(self, offer_ids: set[int | None], at: datetime) -> None:
        for offer_id in sorted(i for i in offer_ids if i is not None):
            self.conn.execute(
                "UPDATE offers SET status = ?, closed_at = ? WHERE id = ? AND status = ?",
                (WITHDRAWN, iso(at), offer_id, OPEN),
            )
            if self._batch is not None:
                self._batch.close(offer_id)

    # -- outbox (issue 9): replies owed, queued with the message they answer ----------------

    def queue_replies(
        self, replies: Sequence[Reply], *, message_row: int | None, at: datetime
    ) -> list[Reply]:
        """Write `replies` to the outbox (one transaction; joins the caller's); the same
        replies come back with their `outbox_id` set, for the adapter to mark once sent."""
        queued = []
        with self._writing():
            for reply in replies:
                cursor = self.conn.execute(
                    "INSERT INTO outbox (message, platform, chat_id, text, reply_to_id, private,"
                    " mention_ids, kind, image, queued_at, fallback_chat_id)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        message_row,
                        reply.platform,
                        reply.chat_id,
                        reply.text,
                        reply.reply_to_id,
                        int(reply.private),
                        json.dumps(list(reply.mention_ids)),
                        reply.kind,
                        reply.image,
                        iso(at),
                        reply.fallback_chat_id,
                    ),
                )
                queued.append(replace(reply, outbox_id=int(cursor.lastrowid or 0)))
        return queued

    def unsent_replies(self, platform: str) -> list[Reply]:
        """Replies on `platform` still queued (a crash or a stop came first), oldest first."""
        return [queued.reply for queued in self.queued_replies(platform)]

    def queued_replies(self, platform: str, *, chat_id: str | None = None) -> list[QueuedReply]:
        """Replies on `platform` still queued, oldest first, with the time each was queued:
        all of them, or those to `chat_id` (one room's queue, as WeChat's sender reads it)."""
        # A reply can only quote a message of its own chat: a private answer to a group
        # message comes back unthreaded.
        sql = (
            "SELECT o.id, o.chat_id, o.text, CASE WHEN m.chat_id IS NULL OR m.chat_id = o.chat_id"
            " THEN o.reply_to_id END, o.private, o.mention_ids, o.kind, o.image,"
            " o.fallback_chat_id, o.queued_at FROM outbox o"
            " LEFT JOIN messages m ON m.id = o.message WHERE o.platform = ? AND o.status = ?"
        )
        arguments: tuple[str, ...] = (platform, OUTBOX_QUEUED)
        if chat_id is not None:
            sql += " AND o.chat_id = ?"
            arguments += (chat_id,)
        rows = self.conn.execute(sql + " ORDER BY o.id", arguments).fetchall()
        return [
            QueuedReply(
                Reply(
                    platform=platform,
                    chat_id=row[1],
                    text=row[2],
                    reply_to_id=row[3],
                    private=bool(row[4]),
                    mention_ids=tuple(json.loads(row[5])),
                    kind=row[6],
                    image=row[7],
                    fallback_chat_id=row[8],
                    outbox_id=row[0],
                ),
                from_iso(row[9]),
            )
            for row in rows
        ]

    def begin_reply(self, outbox_id: int, *, at: datetime) -> None:
        """Mark a reply as being sent, for replies that must go at most once (watch alerts):
        one caught here by a crash is never sent again, where a queued one would be."""
        with self._writing():
            self.conn.execute(
                "UPDATE outbox SET status = ?, finished_at = ? WHERE id = ? AND status = ?",
                (OUTBOX_SENDING, iso(at), outbox_id, OUTBOX_QUEUED),
            )

    def finish_reply(
        self, outbox_id: int, *, at: datetime, status: str = "sent", note: str | None = None
    ) -> None:
        """The adapter is done with a reply: `sent`, or `failed` (refused for good; `note`
        says why). A reply still queued is sent again on the next start."""
        self.finish_replies([outbox_id], at=at, status=status, note=note)

    def finish_replies(
        self,
        outbox_ids: Sequence[int],
        *,
        at: datetime,
        status: str = "sent",
        note: str | None = None,
        platform_messages: int | None = None,
    ) -> None:
        """`finish_reply` for several replies in one transaction: the match replies WeChat
        batched into one message are all sent, or none is. `platform_messages`: how many
        platform messages their sending took (a daily cap counts them; `sent_messages`),
        written on the first reply, 0 on the others; None: one each."""
        if status not in (OUTBOX_SENT, OUTBOX_FAILED):
            raise ValueError(f"outbox status {status!r}; one of {OUTBOX_SENT}, {OUTBOX_FAILED}")
        counts = [platform_messages] + [0 if platform_messages is not None else None] * (
            len(outbox_ids) - 1
        )
        with self._writing():
            self.conn.executemany(
                "UPDATE outbox SET status = ?, finished_at = ?, note = ?, platform_messages = ?"
                " WHERE id = ?",
                [
                    (status, iso(at), note, count, outbox_id)
                    for outbox_id, count in zip(outbox_ids, counts, strict=True)
                ],
            )

    def expire_replies(self, outbox_ids: Sequence[int], *, at: datetime, note: str) -> int:
        """Mark queued replies `expired`: too old to send after an outage. They are kept, with
        `note` saying why, never sent. Returns how many were still queued."""
        with self._writing():
            return self.conn.executemany(
                "UPDATE outbox SET status = ?, finished_at = ?, note = ?"
                " WHERE id = ? AND status = ?",
                [(OUTBOX_EXPIRED, iso(at), note, id_, OUTBOX_QUEUED) for id_ in outbox_ids],
            ).rowcount

    def sent_messages(
        self, platform: str, chat_id: str, *, since: datetime, until: datetime
    ) -> int:
        """Platform messages sent to `chat_id` from `since` up to `until`, counted from the
        outbox's sent rows (and those begun at most once): what a daily cap has used."""
        row = self.conn.execute(
            "SELECT total(coalesce(platform_messages, 1)) FROM outbox"
            " WHERE platform = ? AND chat_id = ? AND status IN ('sent', 'sending')"
            " AND finished_at >= ? AND finished_at < ?",
            (platform, chat_id, iso(since), iso(until)),
        ).fetchone()
        return int(row[0])

    def prune_replies(self, *, finished_before: datetime) -> int:
        """Delete the replies sent (or begun at most once) before `finished_before`; queued,
        failed and expired ones stay. Returns how many went."""
        with self._writing():
            return self.conn.execute(
                "DELETE FROM outbox WHERE status IN (?, ?) AND finished_at < ?",
                (OUTBOX_SENT, OUTBOX_SENDING, iso(finished_before)),
            ).rowcount

    def outbox_counts(self) -> dict[str, int]:
        """How many replies are queued, being sent (at most once), sent, failed and expired."""
        rows = self.conn.execute("SELECT status, count(*) FROM outbox GROUP BY status")
        counts = dict.fromkeys(OUTBOX_STATUSES, 0)
        counts.update({status: int(n) for status, n in rows.fetchall()})
        return counts

    # -- watches (issue 10): members' standing orders, and the alerts they raised -------------
    # New offers are checked against the running watches in memory (a `WatchBook`, loaded on
    # first use). Our own writes update it in place; `watch_meta.token` (changed by triggers on
    # every write to `watches` but a reminder's) tells when someone else wrote, or ours was
    # rolled back, and the book is loaded again. An alert row is written before its message
    # goes out, and (watch, offer) is unique, so an offer reaches a watch at most once,
    # whatever crashes after.

    _book: WatchBook[WatchRecord] | None = None
    _book_token: bytes | None = None

    def add_watch(
        self,
        watch: Watch,
        *,
        name: str,
        chat_id: str,
        in_group: bool,
        lang: str,
        stated: str,
        created_at: datetime,
        expires_at: datetime,
        most: int,
    ) -> int | None:
        """Store a watch of `watch.owner`; None when they already have `most` active ones
        (counted and written in one transaction, so two at once cannot pass the limit)."""
        if watch.owner is None:
            raise ValueError("a watch needs its owner (platform, user id) to be stored")
        platform, user_id = watch.owner
        with self._writing():
            if self.count_watches(platform, user_id, now=created_at) >= most:
                return None
            before = self._watch_token()
            cursor = self.conn.execute(
                "INSERT INTO watches (platform, user_id, user_name, chat_id, in_group, lang, gpu,"
                " variant, memory_gb, side, deal, place, currency, price_limit, min_gpus,"
                " scope_platform, scope_chat, delivery, stated, created_at, expires_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    platform,
                    user_id,
                    name,
                    chat_id,
                    int(in_group),
                    lang,
                    watch.gpu,
                    watch.variant,
                    watch.memory_gb,
                    watch.side.value,
                    None if watch.deal is None else watch.deal.value,
                    watch.place,
                    watch.currency.value,
                    None if watch.limit is None else str(watch.limit),
                    watch.min_gpus,
                    watch.scope[0] if watch.scope else None,
                    watch.scope[1] if watch.scope else None,
                    watch.delivery.value,
                    stated,
                    iso(created_at),
                    iso(expires_at),
                ),
            )
            watch_id = int(cursor.lastrowid or 0)
            record = self.watch_record(watch_id)
            assert record is not None
            self._keep_book(before, lambda book: book.add(record.watch, expires_at, record))
        return watch_id

    def count_watches(self, platform: str, user_id: str, *, now: datetime) -> int:
        """The member's watches still running at `now`."""
        row = self.conn.execute(
            "SELECT count(*) FROM watches WHERE platform = ? AND user_id = ? AND status = ?"
            " AND expires_at > ?",
            (platform, user_id, WATCH_ACTIVE, iso(now)),
        ).fetchone()
        return int(row[0])

    def watch_record(self, watch_id: int) -> WatchRecord | None:
        rows = self._watches(f"SELECT {_WATCH_COLUMNS} FROM watches w WHERE w.id = ?", (watch_id,))
        return rows[0] if rows else None

    def member_watches(self, platform: str, user_id: str, *, now: datetime) -> list[WatchRecord]:
        """The member's running watches, oldest first, with their hits so far."""
        return self._watches(
            f"SELECT {_WATCH_COLUMNS}, (SELECT count(*) FROM alerts a WHERE a.watch = w.id),"
            " (SELECT a.offer FROM alerts a WHERE a.watch = w.id ORDER BY a.id DESC LIMIT 1)"
            " FROM watches w WHERE w.platform = ? AND w.user_id = ? AND w.status = ?"
            " AND w.expires_at > ? ORDER BY w.id",
            (platform, user_id, WATCH_ACTIVE, iso(now)),
        )

    def end_watch(self, watch_id: int, *, at: datetime, status: str = "cancelled") -> None:
        if status not in (WATCH_CANCELLED, WATCH_EXPIRED):
            raise ValueError(f"a watch ends {WATCH_CANCELLED} or {WATCH_EXPIRED}, not {status!r}")
        with self._writing():
            before = self._watch_token()
            self.conn.execute(
                "UPDATE watches SET status = ?, ended_at = ? WHERE id = ? AND status = ?",
                (status, iso(at), watch_id, WATCH_ACTIVE),
            )
            self._keep_book(before, lambda book: book.discard(watch_id))

    def renew_watch(self, watch_id: int, *, expires_at: datetime) -> None:
        """Run the watch until `expires_at`, with a fresh reminder before."""
        with self._writing():
            before = self._watch_token()
            self.conn.execute(
                "UPDATE watches SET expires_at = ?, reminded_at = NULL WHERE id = ?",
                (iso(expires_at), watch_id),
            )
            record = self.watch_record(watch_id)
            if record is not None and record.status == WATCH_ACTIVE:
                self._keep_book(before, lambda book: book.add(record.watch, expires_at, record))

    def watches_for(self, posted: PostedOffer, *, now: datetime) -> list[WatchRecord]:
        """The running watches that `posted` meets, by watch id (see `WatchBook`)."""
        return self._watch_book(now).meeting(posted, now)

    def alerted_watches(self, message_row: int) -> set[int]:
        """The watches already told of an offer in this message (an edit re-reads its offers)."""
        rows = self.conn.execute("SELECT watch FROM alerts WHERE message = ?", (message_row,))
        return {int(row[0]) for row in rows.fetchall()}

    def direct_alerts_since(self, platform: str, user_id: str, since: datetime) -> int:
        """How many alerts went to the member one by one after `since` (the hourly cap)."""
        row = self.conn.execute(
            "SELECT count(*) FROM alerts WHERE platform = ? AND user_id = ? AND via = ?"
            " AND created_at > ?",
            (platform, user_id, ALERT_DIRECT, iso(since)),
        ).fetchone()
        return int(row[0])

    def add_alert(
        self,
        *,
        watch_id: int,
        offer_id: int,
        message_row: int | None,
        member: tuple[str, str],
        via: str,
        status: str,
        at: datetime,
        due_at: datetime | None = None,
    ) -> int | None:
        """Record that `offer_id` met `watch_id` (before anyone is told); None when it was
        recorded before, so the member is not told twice."""
        with self._writing():
            cursor = self.conn.execute(
                "INSERT INTO alerts (watch, offer, message, platform, user_id, via, status,"
                " created_at, due_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT DO NOTHING",
                (
                    watch_id,
                    offer_id,
                    message_row,
                    *member,
                    via,
                    status,
                    iso(at),
                    None if due_at is None else iso(due_at),
                    iso(at) if status == ALERT_SENT else None,
                ),
            )
        return int(cursor.lastrowid or 0) if cursor.rowcount == 1 else None

    def claim_due_alerts(self, *, now: datetime, platforms: Sequence[str]) -> list[AlertRecord]:
        """Take the queued alerts due by `now` on `platforms` (status `claimed`, before they are
        sent: a crash after this never sends them again), oldest first."""
        marks = ", ".join("?" for _ in platforms)
        with self._writing():
            rows = self.conn.execute(
                "SELECT id, watch, offer, via, created_at FROM alerts WHERE status = ?"
                f" AND due_at <= ? AND platform IN ({marks}) ORDER BY id",
                (ALERT_QUEUED, iso(now), *platforms),
            ).fetchall()
            ids = [row[0] for row in rows]
            self.conn.executemany(
                "UPDATE alerts SET status = ?, claimed_at = ? WHERE id = ?",
                [(ALERT_CLAIMED, iso(now), alert_id) for alert_id in ids],
            )
        watches = {
            record.id: record
            for record in self._watches(
                f"SELECT {_WATCH_COLUMNS} FROM watches w WHERE w.id IN"
                " (SELECT watch FROM alerts WHERE status = ? AND claimed_at = ?)",
                (ALERT_CLAIMED, iso(now)),
            )
        }
        offers = {
            record.id: record
            for record in self._offers(
                f"SELECT {_OFFER_COLUMNS} FROM {_OFFER_FROM} WHERE o.id IN"
                " (SELECT offer FROM alerts WHERE status = ? AND claimed_at = ?)",
                (ALERT_CLAIMED, iso(now)),
            )
        }
        return [
            AlertRecord(
                id=alert_id,
                watch=watches[watch_id],
                offer=None if offer_id is None else offers.get(offer_id),
                via=via,
                created_at=from_iso(created_at),
            )
            for alert_id, watch_id, offer_id, via, created_at in rows
        ]

    def finish_alerts(self, alert_ids: Sequence[int], *, status: str, at: datetime) -> None:
        """Claimed alerts are `sent`, `dropped` (their offer closed meanwhile) or `failed`."""
        if status not in (ALERT_SENT, ALERT_DROPPED, ALERT_FAILED):
            raise ValueError(f"alert status {status!r}")
        with self._writing():
            self.conn.executemany(
                "UPDATE alerts SET status = ?, finished_at = ? WHERE id = ?",
                [(status, iso(at), alert_id) for alert_id in alert_ids],
            )

    def expire_watches(self, *, now: datetime) -> int:
        """End the watches whose time is up; how many there were."""
        with self._writing():
            before = self._watch_token()
            ended = [
                row[0]
                for row in self.conn.execute(
                    "SELECT id FROM watches WHERE status = ? AND expires_at <= ?",
                    (WATCH_ACTIVE, iso(now)),
                )
            ]
            if not ended:
                return 0
            self.conn.execute(
                "UPDATE watches SET status = ?, ended_at = expires_at"
                " WHERE status = ? AND expires_at <= ?",
                (WATCH_EXPIRED, WATCH_ACTIVE, iso(now)),
            )

            def drop(book: WatchBook[WatchRecord]) -> None:
                for watch_id in ended:
                    book.discard(watch_id)

            self._keep_book(before, drop)
        return len(ended)

    def claim_reminders(
        self, *, now: datetime, before: timedelta, platforms: Sequence[str]
    ) -> list[WatchRecord]:
        """Running watches on `platforms` that end within `before` and were not reminded,
        marked reminded before the reminder goes out (so it goes at most once). A watch that
        never ran longer than `before` is marked but not returned: it needs no reminder."""
        marks = ", ".join("?" for _ in platforms)
        with self._writing():
            records = self._watches(
                f"SELECT {_WATCH_COLUMNS} FROM watches w WHERE w.status = ?"
                " AND w.reminded_at IS NULL AND w.expires_at > ? AND w.expires_at <= ?"
                f" AND w.platform IN ({marks}) ORDER BY w.id",
                (WATCH_ACTIVE, iso(now), iso(now + before), *platforms),
            )
            self.conn.executemany(
                "UPDATE watches SET reminded_at = ? WHERE id = ?",
                [(iso(now), record.id) for record in records],
            )
        return [r for r in records if r.expires_at - r.created_at > before]

    def _watch_token(self) -> bytes:
        return bytes(self.conn.execute("SELECT token FROM watch_meta").fetchone()[0])

    def _watch_book(self, now: datetime) -> WatchBook[WatchRecord]:
        """The running watches in memory, loaded again when the ledger's changed under it."""
        token = self._watch_token()
        if self._book is None or token != self._book_token:
            book: WatchBook[WatchRecord] = WatchBook()
            for record in self._watches(
                f"SELECT {_BOOK_COLUMNS} FROM watches w WHERE w.status = ? AND w.expires_at > ?",
                (WATCH_ACTIVE, iso(now)),
            ):
                book.add(record.watch, record.expires_at, record)
            self._book, self._book_token = book, token
        return self._book

    def _keep_book(self, before: bytes, change: Callable[[WatchBook[WatchRecord]], None]) -> None:
        """After our own write (in its transaction): apply it to the book in memory if the
        book was current before it, else let it be loaded again on next use."""
        if self._book is not None and before == self._book_token:
            change(self._book)
            self._book_token = self._watch_token()
        else:
            self._book = None

    def _watches(self, sql: str, params: Sequence[Any]) -> list[WatchRecord]:
        return [self._watch_record(row) for row in self.conn.execute(sql, params)]

    def _watch_record(self, row: Sequence[Any]) -> WatchRecord:
        currency = Currency(row[13])
        limit = None if row[14] is None else Decimal(row[14])
        if limit is not None and currency is not self.valuation.currency:
            # Set when the desk counted in the other currency: compare at today's rate.
            limit = convert(limit, currency, self.valuation.currency, self.valuation.usd_cny)
        # Interned: the book holds every running watch, and most of these repeat across them.
        share = _share
        watch = Watch(
            gpu=share(row[7]),
            side=Side(row[10]),
            deal=Deal(row[11]) if row[11] else None,
            variant=share(row[8]),
            memory_gb=row[9],
            limit=limit,
            currency=self.valuation.currency,
            place=share(row[12]),
            min_gpus=row[15],
            scope=(share(row[16]), share(row[17])) if row[17] is not None else None,
            delivery=Delivery(row[18]),
            id=row[0],
            owner=(share(row[1]), share(row[2])),
        )
        return WatchRecord(
            watch=watch,
            name=share(row[3]) or "",
            chat_id=share(row[4]),
            in_group=bool(row[5]),
            lang=share(row[6]),
            stated=row[19],
            created_at=from_iso(row[20]),
            expires_at=from_iso(row[21]),
            reminded_at=None if row[22] is None else from_iso(row[22]),
            status=share(row[23]),
            hits=int(row[24]) if len(row) > 24 else 0,
            last_hit=row[25] if len(row) > 25 else None,
        )


_UNKNOWN: Any = object()  # a unit price not worked out yet


class _Standing:
    """Posters' open offers, as batches of history read them (`Ledger.batched`).

    `lots` maps (platform, poster, model, deal, side) to that poster's offers of it posted by
    `ceiling` and standing past `floor`, by (variant, memory, GPUs), oldest first (and those
    the batches added since), each `[id, posted_at, expires_at,
    open, price, currency, per, GPUs per server, unit price or _UNKNOWN]` as
    `Ledger.repost_of` reads them; `rows` finds them by id. Read a poster's model at a time,
    then kept up to date by the ledger's writes (a new offer, a refresh, a withdrawal); a
    write it cannot follow (an offer deleted, a status set) clears it, to be read again."""

    __slots__ = (
        "ceiling", "floor", "kept", "lots", "refreshed", "rows", "serial", "spoiled", "version"
    )  # fmt: skip

    def __init__(self, floor: str, ceiling: str):
        self.floor = floor
        self.ceiling = ceiling
        self.lots: dict[tuple[Any, ...], dict[tuple[Any, ...], list[list[Any]]]] = {}
        self.rows: dict[int, list[Any]] = {}
        # offer id -> [latest sighting, latest expiry, sightings]: refreshes not written yet
        self.refreshed: dict[int, list[Any]] = {}
        self.kept = 0  # rows after the last pruning
        self.version = self.serial = -1
        self.spoiled = False

    def load(
        self, key: tuple[Any, ...], rows: Iterable[Sequence[Any]]
    ) -> dict[tuple[Any, ...], list[list[Any]]]:
        """Take `Ledger._standing_rows(key)`: the row, then variant, memory and GPUs."""
        lots: dict[tuple[Any, ...], list[list[Any]]] = {}
        for found in rows:
            row = [*found[:8], _UNKNOWN]
            lots.setdefault(tuple(found[8:]), []).append(row)
            self.rows[row[0]] = row
        self.lots[key] = lots
        return lots

    def add(
        self,
        offer_id: int,
        message: ChatMessage,
        offer: Offer,
        gpus: int | None,
        posted_at: str,
        expires_at: str,
    ) -> None:
        key = (message.platform, message.poster_id, offer.gpu, offer.deal.value, offer.side.value)
        lots = self.lots.get(key)
        if lots is None:
            return  # not read yet: it will be, with this offer
        price, currency, per = offer.price, offer.currency, offer.price_per
        row = [
            offer_id,
            posted_at,
            expires_at,
            True,
            None if price is None else str(price),
            None if currency is None else currency.value,
            None if per is None else per.value,
            offer.gpus_per_server,
            _UNKNOWN,
        ]
        # the newest id: each list stays in id order
        lots.setdefault((offer.variant, offer.memory_gb, gpus), []).append(row)
        self.rows[offer_id] = row

    def refresh(self, offer_id: int, seen_at: str, expires_at: str) -> None:
        kept = self.refreshed.get(offer_id)
        if kept is None:
            self.refreshed[offer_id] = [seen_at, expires_at, 1]
        else:
            kept[0], kept[1], kept[2] = max(kept[0], seen_at), max(kept[1], expires_at), kept[2] + 1
        row = self.rows.get(offer_id)
        if row is not None and expires_at > row[2]:
            row[2] = expires_at

    def close(self, offer_id: int) -> None:
        row = self.rows.get(offer_id)
        if row is not None:
            row[3] = False

    def extend(self, ceiling: str, rows: Iterable[Sequence[Any]]) -> None:
        """Take the offers posted up to `ceiling` since the last one (`Ledger._offers_posted`):
        another chat's, or another writer's; those it has already, and those of lots not read
        yet (read whole when first asked), it leaves."""
        self.ceiling = ceiling
        for found in rows:
            lots = self.lots.get(tuple(found[11:]))
            if lots is None or found[0] in self.rows:
                continue
            row = [*found[:8], _UNKNOWN]
            bisect.insort(lots.setdefault(tuple(found[8:11]), []), row, key=itemgetter(0))
            self.rows[row[0]] = row

    def move_on(self, floor: str) -> None:
        """A later batch, from `floor` on: forget what stood no longer then, once the book has
        doubled since it last did (so that it stays the size of what stands)."""
        if len(self.rows) < 2 * self.kept + 10_000:
            return
        self.floor = floor
        for lots in self.lots.values():
            for variant, rows in list(lots.items()):
                standing = [row for row in rows if row[2] > floor]
                if standing:
                    lots[variant] = standing
                else:
                    del lots[variant]
        self.rows = {row[0]: row for lots in self.lots.values() for rows in lots.values()
                     for row in rows}  # fmt: skip
        self.kept = len(self.rows)

    def clear(self) -> None:
        self.lots.clear()
        self.rows.clear()
        self.refreshed.clear()  # written before by whoever keeps them, or rolled back
        self.kept = 0


class _Transaction:
    """`Ledger.transaction()`: BEGIN IMMEDIATE ... COMMIT, or a SAVEPOINT when nested (a plain
    class: the desk opens several per message, and a generator-based one costs more)."""

    __slots__ = ("ledger", "name", "savepoint")

    def __init__(self, ledger: Ledger, *, savepoint: bool):
        self.ledger = ledger
        self.savepoint = savepoint
        self.name: str | None = None

    def __enter__(self) -> None:
        ledger = self.ledger
        if ledger._depth:
            # -- import (issue 8): none inside a batch of history, which fails as a whole
            if self.savepoint and ledger._batch is None:
                self.name = f"sp{ledger._depth}"
                ledger.conn.execute(f"SAVEPOINT {self.name}")
            ledger._depth += 1
            return
        ledger.conn.execute("BEGIN IMMEDIATE")
        ledger._depth = 1
        ledger._serial += 1

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        ledger = self.ledger
        conn = ledger.conn
        ledger._depth -= 1
        if ledger._depth:  # nested: release (or roll back) the savepoint, if any
            if self.name is not None and conn.in_transaction:
                if kind is not None:
                    conn.execute(f"ROLLBACK TO {self.name}")
                conn.execute(f"RELEASE {self.name}")
            if kind is not None:
                ledger._forget_written()
                if ledger._batch is not None:
                    ledger._batch.spoiled = True  # nothing to roll back to: the batch must go
            return
        try:
            if kind is None:
                try:
                    ledger._before_commit()
                    conn.execute("COMMIT")
                    return
                except BaseException:
                    _roll_back(ledger)
                    raise
            _roll_back(ledger)
        finally:
            ledger._after_transaction()


def _roll_back(ledger: Ledger) -> None:
    if ledger.conn.in_transaction:  # some errors end the whole transaction in SQLite
        ledger.conn.execute("ROLLBACK")
    ledger._forget_written()


class _Joined:
    """A write that joins the transaction under way: nothing to begin or end."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_JOINED = _Joined()


PAST_WEEKS_KEPT = 256  # past weeks' pulses kept in memory (per scope, model and week)
MARKETS_KEPT = 8  # scopes whose market is kept in memory (the whole market, and groups)
# A copy of a market is kept a day of posts back, and the one before it: an edit or a late
# post sends it back to the latest copy before it (a day or two to read again), not to the
# start of history.
SPARE_EVERY = timedelta(days=1)
SPARES_KEPT = 2
_US = timedelta(microseconds=1)
_END_OF_TIME = datetime(9999, 1, 1, tzinfo=UTC)  # later than any post


@dataclass(frozen=True, slots=True)
class _Stamp:
    """How far the listing rows went when something was read from them."""

    advert: int  # the last advertisement's id
    withdrawal: int  # the last withdrawal's id
    change: int  # the last `listing_changes` id


@dataclass(slots=True)
class _Market:
    """A scope's `LiveMarket` and what of the ledger it has read."""

    market: LiveMarket
    stamp: _Stamp
    codes: tuple[int, int, int]  # the last party, lot and quote codes it knows
    later_adverts: list[Advert]  # read, but after the latest moment asked about
    later_withdrawals: list[Withdrawal]
    serial: int  # the write transaction it was last read in (-1: none)
    spares: list[FrozenMarket]  # copies of it as it was before, oldest first (`SPARE_EVERY`)
    spare_due: int  # µs: the next copy is made once the market has read up to this
    unsaved: FrozenMarket | None = None  # a copy to save in the ledger (`_save_market`)
    saved: tuple[int, int, int, int] | None = None  # the cursor of the copy saved last


class _Quotes(dict[str, Decimal | None]):
    """Unit prices of quotes by their text ("7.20 USD"), in the desk's currency, worked out
    as they are asked for: the live market's prices (`_market_codes`). A cache, emptied when
    it holds `QUOTES_KEPT`: a long history has hundreds of thousands of quotes, and a market
    built from it asks for each only around the time it was posted."""

    def __init__(self, valuation: Valuation):
        super().__init__()
        self.valuation = valuation

    def __missing__(self, key: str) -> Decimal:
        if len(self) >= QUOTES_KEPT:
            self.clear()
        amount, _, code = key.partition(" ")
        valuation = self.valuation
        price = convert(Decimal(amount), _CURRENCIES[code], valuation.currency, valuation.usd_cny)
        self[key] = price
        return price


_CURRENCIES = {currency.value: currency for currency in Currency}


QUOTES_KEPT = 50_000


def _spill() -> IO[bytes]:
    """Where a copy of a market waits (`LiveMarket.freeze`): in memory while small, in a
    temporary file past `SPILL_AT` (a copy of a million posts' market is tens of MB)."""
    return tempfile.SpooledTemporaryFile(max_size=SPILL_AT)


SPILL_AT = 1 << 20
_log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _market_code() -> str | None:
    """A digest of the code a saved market is made by (a market saved by other code is read
    again from history): the engine, what prices and lots rest on, and this file. None when
    the sources cannot be read."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in [root / "market" / f"{name}.py" for name in _MARKET_CODE] + [Path(__file__)]:
        try:
            digest.update(path.read_bytes())
        except OSError:
            return None
    return digest.hexdigest()[:16]


_MARKET_CODE = ("listings", "match", "normalise", "pulse", "offer")


_IN_TIME = "a.at_us, a.message, a.id"  # the engine's order (`market.listings`), from the index


def _code_marks(conn: sqlite3.Connection) -> tuple[int, int, int]:
    row = conn.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM parties),"
        " (SELECT coalesce(max(id), 0) FROM lots), (SELECT coalesce(max(id), 0) FROM quotes)"
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def _filters(
    where: list[str],
    params: list[Any],
    *,
    gpu: str | None,
    deal: Deal | None,
    side: Side | None,
    chat: tuple[str, str] | None,
) -> tuple[list[str], list[Any]]:
    for column, value in (("o.gpu", gpu), ("o.deal", deal), ("o.side", side)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(str(value))
    if chat is not None:
        where.append("o.platform = ? AND o.chat_id = ?")
        params.extend(chat)
    return where, params


def _rows_in(
    conn: sqlite3.Connection, sql: str, ids: Iterable[Any], chunk: int = 500
) -> Iterator[Any]:
    """The rows of `sql` (with `IN ({})` for the ids) for every id, in chunks of bound
    parameters SQLite accepts."""
    wanted = sorted(ids)
    for start in range(0, len(wanted), chunk):
        part = wanted[start : start + chunk]
        yield from conn.execute(sql.format(", ".join("?" for _ in part)), part)


# -- digests (issue 7) ---------------------------------------------------------------------------

CLAIMED, SENT, FAILED, EMPTY = "claimed", "sent", "failed", "empty"


@dataclass(frozen=True, slots=True)
class DigestRecord:
    """One chat's digest of one week: `claimed` until sending ends, then sent/failed/empty."""

    platform: str
    chat_id: str
    week: str
    status: str
    claimed_at: datetime
    finished_at: datetime | None
    note: str | None


# -- listings (issue 11) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListingPost:
    """The post behind an advertisement or a withdrawal, as `explain` shows it."""

    chat: tuple[str, str]
    chat_title: str | None
    poster_name: str
    at: datetime
    text: str
    link: str | None
    offer: Offer | None  # what an advertisement stated; None for a withdrawal


# -- outbox (issue 9) ----------------------------------------------------------------------------

OUTBOX_QUEUED, OUTBOX_SENT, OUTBOX_FAILED = "queued", "sent", "failed"
OUTBOX_SENDING = "sending"  # at-most-once replies between their send and its mark
OUTBOX_EXPIRED = "expired"  # too old to send after an outage: kept, never sent
OUTBOX_STATUSES = (OUTBOX_QUEUED, OUTBOX_SENDING, OUTBOX_SENT, OUTBOX_FAILED, OUTBOX_EXPIRED)


@dataclass(frozen=True, slots=True)
class QueuedReply:
    """A reply waiting in the outbox, and when it was queued (UTC)."""

    reply: Reply
    queued_at: datetime


# -- watches (issue 10) ----------------------------------------------------------------------------

WATCH_ACTIVE, WATCH_CANCELLED, WATCH_EXPIRED = "active", "cancelled", "expired"
ALERT_DIRECT, ALERT_DIGEST, ALERT_OVERFLOW = "direct", "digest", "overflow"
ALERT_QUEUED, ALERT_CLAIMED, ALERT_SENT = "queued", "claimed", "sent"
ALERT_DROPPED, ALERT_FAILED = "dropped", "failed"


@overload
def _share(text: str) -> str: ...
@overload
def _share(text: None) -> None: ...
def _share(text: str | None) -> str | None:
    """One copy of a repeated text (a GPU, a chat id, a member) for the book in memory."""
    return None if text is None else sys.intern(text)


_WATCH_COLUMNS = (
    "w.id, w.platform, w.user_id, w.user_name, w.chat_id, w.in_group, w.lang, w.gpu, w.variant,"
    " w.memory_gb, w.side, w.deal, w.place, w.currency, w.price_limit, w.min_gpus,"
    " w.scope_platform, w.scope_chat, w.delivery, w.stated, w.created_at, w.expires_at,"
    " w.reminded_at, w.status"
)
# The book needs no copy of the member's own words.
_BOOK_COLUMNS = _WATCH_COLUMNS.replace("w.stated", "''")


@dataclass(frozen=True, slots=True)
class WatchRecord:
    """A stored watch: the watch itself (with its id and owner), who set it where, its time
    and, from `member_watches`, what it has found so far."""

    watch: Watch
    name: str  # the member's name when they set it
    chat_id: str  # where they set it: a group (alerts fall back to a mention there) or a DM
    in_group: bool
    lang: str
    stated: str  # their own words
    created_at: datetime
    expires_at: datetime
    reminded_at: datetime | None
    status: str
    hits: int = 0
    last_hit: int | None = None  # the offer of the latest alert, if it is still in the book

    @property
    def id(self) -> int:
        return self.watch.id

    @property
    def member(self) -> tuple[str, str]:
        assert self.watch.owner is not None  # every stored watch has one
        return self.watch.owner


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A queued alert taken for a digest: its watch, and its offer (None if it was dropped)."""

    id: int
    watch: WatchRecord
    offer: OfferRecord | None
    via: str
    created_at: datetime
