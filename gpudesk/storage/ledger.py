"""The ledger: every message and offer the desk has seen, in one SQLite file.

`Ledger` is the only door to storage. It speaks the domain's types (`ChatMessage`, `Offer`,
`PostedOffer`), never raw rows, and keeps the file safe to share: WAL mode, a busy timeout, and
writes that take the write lock up front (`BEGIN IMMEDIATE`) so a bot, an import and a digest can
run at once without "database is locked". Times are stored as ISO 8601 text in UTC.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from gpudesk.market.book import PostedOffer
from gpudesk.market.digest import MadeMatch
from gpudesk.market.message import ChatMessage
from gpudesk.market.normalise import Valuation
from gpudesk.market.offer import Deal, Offer, Side
from gpudesk.storage.migrations import MIGRATIONS

BUSY_TIMEOUT_SECONDS = 30.0

OPEN, WITHDRAWN, FILLED, EXPIRED = "open", "withdrawn", "filled", "expired"
STATUSES = (OPEN, WITHDRAWN, FILLED, EXPIRED)


class LedgerError(Exception):
    """The ledger file cannot be used (not SQLite, unreadable, or from a newer gpudesk)."""


def iso(moment: datetime) -> str:
    """An aware datetime as UTC text of fixed width, so that text order is time order."""
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


class Ledger:
    """The desk's memory. Open with `Ledger.open(path)`; use as a context manager to close."""

    def __init__(self, conn: sqlite3.Connection, valuation: Valuation | None = None):
        self.conn = conn
        self.db = Database(conn)
        self.valuation = valuation or Valuation()
        self._depth = 0

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
            ledger = cls(conn, valuation)
            ledger.migrate()
        except sqlite3.DatabaseError as error:
            raise LedgerError(f"{path} is not a usable gpudesk ledger: {error}") from None
        return ledger

    def migrate(self) -> None:
        with self.transaction():
            MIGRATIONS.apply(self.db)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write; nested calls join the outer one. Takes the write lock at once."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    # -- messages: the inbox --------------------------------------------------------------

    def store_message(
        self, message: ChatMessage, *, received_at: datetime, source: str = "live"
    ) -> StoredMessage:
        """Store a message once. Re-delivery is a no-op; an edit with new text replaces it."""
        with self.transaction():
            row = self.conn.execute(
                "SELECT id, text, handled FROM messages "
                "WHERE platform = ? AND chat_id = ? AND message_id = ?",
                (message.platform, message.chat_id, message.message_id),
            ).fetchone()
            if row is None:
                cursor = self.conn.execute(
                    "INSERT INTO messages (platform, chat_id, message_id, sender_id, sender_name,"
                    " poster_id, poster_name, text, sent_at, received_at, reply_to_id, link,"
                    " source, handled) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
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
                        iso(received_at),
                        message.reply_to_id,
                        message.link,
                        source,
                    ),
                )
                self._remember_chat_and_user(message, received_at)
                return StoredMessage(int(cursor.lastrowid or 0), True, False, False)
            message_row, old_text, handled = row
            if message.edited and old_text != message.text:
                self.conn.execute(
                    "UPDATE messages SET text = ?, edited_at = ?, handled = 0 WHERE id = ?",
                    (message.text, iso(received_at), message_row),
                )
                return StoredMessage(message_row, False, True, False)
            return StoredMessage(message_row, False, False, bool(handled))

    def mark_handled(self, message_row: int) -> None:
        with self.transaction():
            self.conn.execute("UPDATE messages SET handled = 1 WHERE id = ?", (message_row,))

    def unhandled_messages(self) -> list[tuple[int, ChatMessage]]:
        """Messages stored but not yet read: what a crash left in the inbox, oldest first."""
        rows = self.conn.execute(
            "SELECT id, platform, chat_id, message_id, sender_id, sender_name, poster_id,"
            " poster_name, text, sent_at, reply_to_id, link, edited_at FROM messages"
            " WHERE handled = 0 ORDER BY id"
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
                    announce=False,
                ),
            )
            for row in rows
        ]

    def message_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM messages").fetchone()[0])

    def _remember_chat_and_user(self, message: ChatMessage, now: datetime) -> None:
        self.conn.execute(
            "INSERT INTO chats (platform, chat_id, title, first_seen) VALUES (?,?,?,?)"
            " ON CONFLICT (platform, chat_id) DO UPDATE SET"
            " title = coalesce(excluded.title, chats.title)",
            (message.platform, message.chat_id, message.chat_title, iso(now)),
        )
        self.conn.execute(
            "INSERT INTO users (platform, user_id, name, first_seen, last_seen) VALUES (?,?,?,?,?)"
            " ON CONFLICT (platform, user_id) DO UPDATE SET name = excluded.name,"
            " last_seen = excluded.last_seen",
            (message.platform, message.sender_id, message.sender_name, iso(now), iso(now)),
        )

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
        record = offer.to_contract()
        record["price"] = None if offer.price is None else str(offer.price)
        record.update(
            message=message_row,
            item=item,
            platform=message.platform,
            chat_id=message.chat_id,
            poster_id=message.poster_id,
            poster_name=message.poster_name,
            gpus=gpus,
            status=OPEN,
            posted_at=iso(posted_at),
            seen_at=iso(posted_at),
            seen_count=1,
            expires_at=iso(expires_at),
        )
        columns = ", ".join(record)
        marks = ", ".join("?" for _ in record)
        with self.transaction():
            cursor = self.conn.execute(
                f"INSERT INTO offers ({columns}) VALUES ({marks})", tuple(record.values())
            )
        return int(cursor.lastrowid or 0)

    def offers_of_message(self, message_row: int) -> list[int]:
        rows = self.conn.execute(
            "SELECT id FROM offers WHERE message = ? ORDER BY item", (message_row,)
        ).fetchall()
        return [row[0] for row in rows]

    def drop_offers_of_message(self, message_row: int) -> int:
        """Forget the offers read from a message (before reading its edited text again)."""
        with self.transaction():
            cursor = self.conn.execute("DELETE FROM offers WHERE message = ?", (message_row,))
        return cursor.rowcount

    def refresh_offer(self, offer_id: int, *, seen_at: datetime, expires_at: datetime) -> None:
        """The poster said it again: keep one offer, move its last sighting and expiry on."""
        with self.transaction():
            self.conn.execute(
                "UPDATE offers SET seen_at = ?, expires_at = ?, seen_count = seen_count + 1"
                " WHERE id = ?",
                (iso(seen_at), iso(expires_at), offer_id),
            )

    def set_status(self, offer_id: int, status: str, *, now: datetime) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown offer status {status!r}; one of {', '.join(STATUSES)}")
        with self.transaction():
            self.conn.execute(
                "UPDATE offers SET status = ?, closed_at = ? WHERE id = ?",
                (status, None if status == OPEN else iso(now), offer_id),
            )

    def expire(self, *, now: datetime) -> int:
        """Mark open offers past their lifetime as expired; how many there were."""
        with self.transaction():
            cursor = self.conn.execute(
                "UPDATE offers SET status = ?, closed_at = expires_at"
                " WHERE status = ? AND expires_at <= ?",
                (EXPIRED, OPEN, iso(now)),
            )
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
            "SELECT title, language, match_replies, scope FROM chats"
            " WHERE platform = ? AND chat_id = ?",
            (platform, chat_id),
        ).fetchone()
        if row is None:
            return ChatRecord(platform, chat_id, None, None, True, "all")
        return ChatRecord(platform, chat_id, row[0], row[1], bool(row[2]), row[3] or "all")

    def chats(self) -> list[ChatRecord]:
        rows = self.conn.execute("SELECT platform, chat_id FROM chats ORDER BY platform, chat_id")
        return [self.chat(platform, chat_id) for platform, chat_id in rows.fetchall()]

    def update_chat(self, platform: str, chat_id: str, **values: Any) -> None:
        allowed = {"title", "language", "match_replies", "scope"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown chat settings {sorted(unknown)}; allowed {sorted(allowed)}")
        with self.transaction():
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
        with self.transaction():
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
        with self.transaction():
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
        with self.transaction():
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

    def checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the main file, so that a reader that
        ignores the log (Datasette's immutable mode) sees the ledger as it is now."""
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


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
