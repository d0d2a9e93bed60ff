"""The ledger's schema, as forward migrations: each step runs once per file, in order.

A new column or table is a new function at the end; existing steps are never edited, so an
old ledger file always walks forward to the current schema (`Ledger.open` applies them).
"""

from __future__ import annotations

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
