"""The ledger's schema, as forward migrations: each step runs once per file, in order.

A new column or table is a new function at the end; existing steps are never edited, so an
old ledger file always walks forward to the current schema (`Ledger.open` applies them).
"""

from __future__ import annotations

from decimal import Decimal

from sqlite_utils import Database, Migrations

MIGRATIONS = Migrations("gpudesk")


@MIGRATIONS()
def m001_initial(db: Database) -> None:
    db["messages"].create(
        {
            "id": int,
            "platform": str,
            "chat_id": str,
            "message_id": str,
            "sender_id": str,
            "sender_name": str,
            "poster_id": str,  # the origin of a forward, else the sender
            "poster_name": str,
            "text": str,
            "sent_at": str,  # ISO 8601, UTC
            "received_at": str,
            "edited_at": str,
            "reply_to_id": str,
            "link": str,
            "source": str,  # "live" or "import"
            "handled": int,  # 0 until its offers are read and stored: the inbox
        },
        pk="id",
        not_null={"platform", "chat_id", "message_id", "sender_id", "text", "sent_at"},
        defaults={"handled": 0, "source": "live"},
    )
    db["messages"].create_index(["platform", "chat_id", "message_id"], unique=True)
    db["messages"].create_index(["handled"])
    db["messages"].create_index(["sent_at"])

    db["offers"].create(
        {
            "id": int,
            "message": int,  # messages.id
            "item": int,  # position of the offer within its message
            "platform": str,
            "chat_id": str,
            "poster_id": str,
            "poster_name": str,
            "side": str,
            "deal": str,
            "gpu": str,
            "variant": str,
            "memory_gb": int,
            "quantity": int,
            "quantity_unit": str,
            "gpus_per_server": int,
            "price": str,  # exact decimal, as text
            "currency": str,
            "price_per": str,
            "location": str,
            "gpus": int,  # quantity in GPUs
            "status": str,  # open, withdrawn, filled, expired
            "posted_at": str,
            "seen_at": str,  # last time the poster posted it again
            "seen_count": int,
            "expires_at": str,
            "closed_at": str,
        },
        pk="id",
        foreign_keys=[("message", "messages", "id")],
        not_null={"message", "side", "deal", "gpu", "status", "posted_at", "expires_at"},
        defaults={"status": "open", "seen_count": 1},
    )
    db["offers"].create_index(["gpu", "deal", "side", "status", "expires_at"])
    db["offers"].create_index(["platform", "poster_id", "status"])
    db["offers"].create_index(["posted_at"])
    db["offers"].create_index(["message"])

    db["chats"].create(
        {
            "platform": str,
            "chat_id": str,
            "title": str,
            "language": str,
            "match_replies": int,
            "scope": str,  # "all" groups or this "group" only
            "first_seen": str,
        },
        pk=("platform", "chat_id"),
        defaults={"match_replies": 1, "scope": "all"},
    )
    db["users"].create(
        {"platform": str, "user_id": str, "name": str, "first_seen": str, "last_seen": str},
        pk=("platform", "user_id"),
    )


@MIGRATIONS()
def m002_matches(db: Database) -> None:
    """Matches the desk announced, for the weekly digest's "matches made" (issue 7)."""
    # Raw SQL for ON DELETE CASCADE (sqlite-utils cannot declare it): an edited post drops and
    # re-reads its offers, and the matches of the old reading go with them.
    db.execute(
        "CREATE TABLE matches ("
        " offer INTEGER NOT NULL REFERENCES offers(id) ON DELETE CASCADE,"  # the new offer
        " counterparty INTEGER NOT NULL REFERENCES offers(id) ON DELETE CASCADE,"
        " matched_at TEXT NOT NULL,"  # ISO 8601, UTC
        " gap TEXT,"  # ask minus bid per unit, exact decimal; NULL when either is unpriced
        " PRIMARY KEY (offer, counterparty))"
    )
    db["matches"].create_index(["matched_at"])
    db["matches"].create_index(["counterparty"])


@MIGRATIONS()
def m003_digests(db: Database) -> None:
    """Weekly digests, one row per chat and week, written before sending (issue 7)."""
    db["digests"].create(
        {
            "platform": str,
            "chat_id": str,
            "week": str,  # ISO week label of the window, "2026-W47"
            "window_start": str,  # ISO 8601, UTC
            "window_end": str,
            "claimed_at": str,  # when sending began: the row exists before the first byte goes
            "finished_at": str,
            "status": str,  # claimed, sent, failed, empty
            "note": str,  # why it was not sent
        },
        pk=("platform", "chat_id", "week"),
        not_null={"platform", "chat_id", "week", "claimed_at", "status"},
    )


@MIGRATIONS()
def m004_listings(db: Database) -> None:
    """Advertisements and withdrawals, what the weekly pulse counts listings from (issue 11).

    `adverts` holds every offer read from every post, one row per (message, item), whether the
    book stored it as a new offer or as a repost of a standing one (`offer` is that book row).
    `unit_amount` is its price per GPU-hour (rent) or per GPU (sale) in `unit_currency`, its
    own; the desk's currency and rate apply when it is read. `withdrawals` holds the messages
    that end a deal ("已出", "fully booked") with what they name, and `/cancel` and `/filled`.
    A ledger from before gets both from its offers: each offer's first post and last repost,
    and its cancellations.
    """
    # Raw SQL for the ON DELETE actions: an edited post drops its offers and is read again.
    db.execute(
        "CREATE TABLE adverts ("
        " id INTEGER PRIMARY KEY,"
        " message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
        " item INTEGER NOT NULL,"  # position of the offer within its message
        " offer INTEGER REFERENCES offers(id) ON DELETE SET NULL,"
        " platform TEXT NOT NULL, chat_id TEXT NOT NULL, poster_id TEXT NOT NULL,"
        " posted_at TEXT NOT NULL,"  # ISO 8601, UTC: the message's sent_at
        " side TEXT NOT NULL, deal TEXT NOT NULL, gpu TEXT NOT NULL, variant TEXT,"
        " memory_gb INTEGER, quantity INTEGER, quantity_unit TEXT, gpus_per_server INTEGER,"
        " price TEXT, currency TEXT, price_per TEXT, location TEXT,"
        " gpus INTEGER,"  # quantity in GPUs
        " unit_amount TEXT, unit_currency TEXT)"
    )
    db["adverts"].create_index(["gpu", "deal", "posted_at"])
    db["adverts"].create_index(["posted_at"])
    db["adverts"].create_index(["message"])
    db["adverts"].create_index(["offer"])
    db.execute(
        "CREATE TABLE withdrawals ("
        " id INTEGER PRIMARY KEY,"
        " message INTEGER REFERENCES messages(id) ON DELETE CASCADE,"
        " kind TEXT NOT NULL,"  # said, cancel, filled
        " offer INTEGER REFERENCES offers(id) ON DELETE SET NULL,"  # cancel, filled
        " platform TEXT NOT NULL, chat_id TEXT NOT NULL, poster_id TEXT NOT NULL,"
        " at TEXT NOT NULL,"  # ISO 8601, UTC
        " reply_to_id TEXT,"  # the platform message id it answers, in the same chat
        " words TEXT,"  # what ended it: "已出", "fully booked", "/cancel"
        " side TEXT, deal TEXT, gpu TEXT, variant TEXT, location TEXT, gpus INTEGER)"
    )
    db["withdrawals"].create_index(["at"])
    db["withdrawals"].create_index(["message"])
    _backfill_listing_facts(db)


def _backfill_listing_facts(db: Database) -> None:
    from decimal import Decimal

    from gpudesk.market.normalise import unit_price
    from gpudesk.market.offer import Currency, Offer

    columns = (
        "id, message, item, platform, chat_id, poster_id, posted_at, seen_at, seen_count,"
        " side, deal, gpu, variant, memory_gb, quantity, quantity_unit, gpus_per_server,"
        " price, currency, price_per, location, gpus, status, closed_at"
    )
    for row in db.execute(f"SELECT {columns} FROM offers ORDER BY id").fetchall():
        record = dict(zip([c.strip() for c in columns.split(",")], row, strict=True))
        offer = Offer.from_contract(record)
        own = offer.currency or Currency.CNY
        amount = unit_price(offer, own, Decimal(1))
        values = {
            name: record[name]
            for name in (
                "platform", "chat_id", "poster_id", "side", "deal", "gpu", "variant",
                "memory_gb", "quantity", "quantity_unit", "gpus_per_server", "price",
                "currency", "price_per", "location", "gpus",
            )
        }  # fmt: skip
        values.update(
            offer=record["id"],
            unit_amount=None if amount is None else str(amount),
            unit_currency=None if amount is None else own.value,
        )
        sightings = [(record["message"], record["item"], record["posted_at"])]
        if (record["seen_count"] or 1) > 1 and record["seen_at"] > record["posted_at"]:
            # The repost that last refreshed it: the poster's message sent at that moment.
            found = db.execute(
                "SELECT id FROM messages WHERE platform = ? AND poster_id = ? AND sent_at = ?"
                " ORDER BY id LIMIT 1",
                (record["platform"], record["poster_id"], record["seen_at"]),
            ).fetchone()
            if found is not None:
                sightings.append((found[0], 0, record["seen_at"]))
        for message, item, at in sightings:
            db["adverts"].insert({**values, "message": message, "item": item, "posted_at": at})
        if record["status"] in ("withdrawn", "filled") and record["closed_at"]:
            db["withdrawals"].insert(
                {
                    "kind": "cancel" if record["status"] == "withdrawn" else "filled",
                    "offer": record["id"],
                    "platform": record["platform"],
                    "chat_id": record["chat_id"],
                    "poster_id": record["poster_id"],
                    "at": record["closed_at"],
                    "words": "/cancel" if record["status"] == "withdrawn" else "/filled",
                }
            )


@MIGRATIONS(name="m_unit_price")
def m_unit_price(db: Database) -> None:
    """Normalised unit prices as indexed numbers, so the best counterparties come from an index.

    `unit_native` is the price per GPU-hour (rent) or per GPU (sale) in the offer's own
    currency (`unit_currency`); `unit_price` is the same in the desk's currency at the FX rate
    recorded in `ledger_meta`, refreshed by `Ledger.open` when the configured rate changes.
    REAL is for ordering and filtering only: exact figures are recomputed from `price`.
    """
    from gpudesk.market.normalise import unit_price
    from gpudesk.market.offer import Currency, Offer

    offers = db["offers"]
    offers.add_column("unit_native", float)  # type: ignore[union-attr]
    offers.add_column("unit_currency", str)  # type: ignore[union-attr]
    offers.add_column("unit_price", float)  # type: ignore[union-attr]
    db["ledger_meta"].create({"key": str, "value": str}, pk="key")
    rows = db.execute(
        "SELECT id, side, deal, gpu, gpus_per_server, price, currency, price_per FROM offers"
        " WHERE price IS NOT NULL"
    ).fetchall()
    for row in rows:
        offer = Offer.from_contract(
            {
                "side": row[1],
                "deal": row[2],
                "gpu": row[3],
                "gpus_per_server": row[4],
                "price": row[5],
                "currency": row[6],
                "price_per": row[7],
            }
        )
        own = offer.currency or Currency.CNY
        native = unit_price(offer, own, Decimal(1))
        if native is not None:
            db.execute(
                "UPDATE offers SET unit_native = ?, unit_currency = ? WHERE id = ?",
                (float(native), own.value, row[0]),
            )
    db["offers"].create_index(["gpu", "deal", "side", "status", "unit_price"])
    db["offers"].create_index(["status", "expires_at"])


@MIGRATIONS(name="m_outbox")
def m_outbox(db: Database) -> None:
    """Replies the desk owes, written with the message they answer (issue 9): an adapter marks
    each sent, and on start sends what a crash or a stop left queued."""
    db.execute(
        "CREATE TABLE outbox ("
        " id INTEGER PRIMARY KEY,"
        " message INTEGER REFERENCES messages(id) ON DELETE SET NULL,"  # what it answers
        " platform TEXT NOT NULL,"
        " chat_id TEXT NOT NULL,"
        " text TEXT NOT NULL,"
        " reply_to_id TEXT,"
        " private INTEGER NOT NULL DEFAULT 0,"
        " mention_ids TEXT NOT NULL DEFAULT '[]',"  # JSON list of user ids
        " kind TEXT NOT NULL,"
        " image BLOB,"
        " queued_at TEXT NOT NULL,"  # ISO 8601, UTC
        " status TEXT NOT NULL DEFAULT 'queued',"  # queued, sent, failed
        " finished_at TEXT,"
        " note TEXT)"  # why it failed
    )
    db.execute("CREATE INDEX outbox_queued ON outbox (platform, id) WHERE status = 'queued'")
    db.execute("CREATE INDEX outbox_message ON outbox (message)")
