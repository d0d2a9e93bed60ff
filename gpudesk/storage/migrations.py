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


@MIGRATIONS(name="m_watches")
def m_watches(db: Database) -> None:
    """Watches, members' standing orders, and the alerts they raised (issue 10).

    A watch's price limit is exact text (`price_limit`, per GPU-hour for rent or per GPU for
    sale, in `currency`). The desk matches new offers against the running watches held in
    memory (`WatchBook`); `watch_meta.token` changes with every write that matters to it (the
    triggers below), so a ledger sees when another process changed the watches and reloads.
    An alert row is written before its message goes out: (watch, offer) is unique, so no offer
    is announced to a watch twice, whatever crashes after.
    """
    db.execute(
        "CREATE TABLE watches ("
        " id INTEGER PRIMARY KEY,"
        " platform TEXT NOT NULL, user_id TEXT NOT NULL, user_name TEXT,"  # the member
        " chat_id TEXT NOT NULL, in_group INTEGER NOT NULL,"  # where it was set
        " lang TEXT NOT NULL,"  # the language to tell them in
        " gpu TEXT NOT NULL, variant TEXT, memory_gb INTEGER,"
        " side TEXT NOT NULL,"  # the side of the offers it looks for
        " deal TEXT, place TEXT,"  # NULL: any
        " currency TEXT NOT NULL, price_limit TEXT,"
        " min_gpus INTEGER, scope_platform TEXT, scope_chat TEXT,"
        " delivery TEXT NOT NULL DEFAULT 'each',"  # each, hourly, daily
        " stated TEXT NOT NULL,"  # the member's own words
        " created_at TEXT NOT NULL, expires_at TEXT NOT NULL,"  # ISO 8601, UTC
        " reminded_at TEXT, ended_at TEXT,"
        " status TEXT NOT NULL DEFAULT 'active')"  # active, cancelled, expired
    )
    db.execute("CREATE INDEX watches_member ON watches (platform, user_id, status, expires_at)")
    db.execute("CREATE INDEX watches_expiry ON watches (status, expires_at)")
    db.execute(
        "CREATE TABLE watch_meta (id INTEGER PRIMARY KEY CHECK (id = 1), token BLOB NOT NULL)"
    )
    db.execute("INSERT INTO watch_meta (id, token) VALUES (1, randomblob(8))")
    # Every column but the reminder's bookkeeping (`reminded_at`, `ended_at`) matters.
    matters = (
        "platform, user_id, user_name, chat_id, in_group, lang, gpu, variant, memory_gb, side,"
        " deal, place, currency, price_limit, min_gpus, scope_platform, scope_chat, delivery,"
        " stated, created_at, expires_at, status"
    )
    for name, event in (
        ("watches_added", "INSERT"),
        ("watches_removed", "DELETE"),
        ("watches_changed", f"UPDATE OF {matters}"),
    ):
        db.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON watches"
            " BEGIN UPDATE watch_meta SET token = randomblob(8); END"
        )
    db.execute(
        "CREATE TABLE alerts ("
        " id INTEGER PRIMARY KEY,"
        " watch INTEGER NOT NULL REFERENCES watches(id) ON DELETE CASCADE,"
        # An edited post drops its offers: the alert stays (offer NULL), still tied to the post.
        " offer INTEGER REFERENCES offers(id) ON DELETE SET NULL,"
        " message INTEGER REFERENCES messages(id) ON DELETE CASCADE,"
        " platform TEXT NOT NULL, user_id TEXT NOT NULL,"  # the member told
        " via TEXT NOT NULL,"  # direct, digest, overflow (past the hourly cap)
        " status TEXT NOT NULL,"  # queued, claimed, sent, dropped, failed
        " created_at TEXT NOT NULL, due_at TEXT, claimed_at TEXT, finished_at TEXT,"
        " UNIQUE (watch, offer))"
    )
    db.execute("CREATE INDEX alerts_member ON alerts (platform, user_id, via, created_at)")
    db.execute("CREATE INDEX alerts_due ON alerts (status, due_at)")
    db.execute("CREATE INDEX alerts_message ON alerts (message, watch)")


@MIGRATIONS(name="m_listing_codes")
def m_listing_codes(db: Database) -> None:
    """Advertisements read fast: integer time and codes (issue 11, after `m004_listings`).

    A year's pulse reads a million advertisements, and integers cost a fraction of text to
    read. Each advertisement gets its time as microseconds since the epoch (`at_us`) and small
    integer codes for its party, its group, its lot and its unit price (`parties`, `venues`,
    `lots`, `quotes`), and an index holds what the pulse reads, narrow and in time order.
    Withdrawals get `at_us` too. Rows already there are coded here.
    """
    db.execute(
        "CREATE TABLE parties (id INTEGER PRIMARY KEY, platform TEXT NOT NULL,"
        " poster_id TEXT NOT NULL, UNIQUE (platform, poster_id))"
    )
    db.execute(
        "CREATE TABLE venues (id INTEGER PRIMARY KEY, platform TEXT NOT NULL,"
        " chat_id TEXT NOT NULL, UNIQUE (platform, chat_id))"
    )
    db.execute(
        "CREATE TABLE lots (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,"  # see lot_key
        " side TEXT NOT NULL, deal TEXT NOT NULL, gpu TEXT NOT NULL, gpus INTEGER,"
        " location TEXT)"
    )
    db.execute(  # a unit price in its own currency: "12.84246575342465753424657534 CNY"
        "CREATE TABLE quotes (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE)"
    )
    for column in ("at_us", "party", "venue", "lot", "quote"):
        db.execute(f"ALTER TABLE adverts ADD COLUMN {column} INTEGER")
    db.execute("ALTER TABLE withdrawals ADD COLUMN at_us INTEGER")
    code_listing_facts(db)
    db.execute("DROP INDEX IF EXISTS idx_adverts_gpu_deal_posted_at")
    db.execute("DROP INDEX IF EXISTS idx_adverts_posted_at")
    db.execute("DROP INDEX IF EXISTS idx_withdrawals_at")
    db["adverts"].create_index(["gpu", "deal", "at_us"])
    # What the pulse reads, narrow and in time order: a year's scan never touches the wide rows.
    db["adverts"].create_index(
        ["at_us", "message", "id", "party", "venue", "lot", "variant", "quote", "offer"],
        index_name="adverts_in_time",
    )
    db["withdrawals"].create_index(["at_us"])


def code_listing_facts(db: Database) -> None:
    """Give the advertisements and withdrawals that have none their time and codes."""
    columns = (
        "id", "platform", "chat_id", "poster_id", "posted_at", "side", "deal", "gpu", "gpus",
        "location", "unit_amount", "unit_currency",
    )  # fmt: skip
    rows = db.execute(f"SELECT {', '.join(columns)} FROM adverts WHERE at_us IS NULL").fetchall()
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        codes = listing_codes(db, record)
        db.execute(
            "UPDATE adverts SET at_us = ?, party = ?, venue = ?, lot = ?, quote = ? WHERE id = ?",
            (_micros(record["posted_at"]), codes["party"], codes["venue"], codes["lot"],
             codes["quote"], record["id"]),
        )  # fmt: skip
    rows = db.execute("SELECT id, at FROM withdrawals WHERE at_us IS NULL").fetchall()
    for withdrawal, at in rows:
        db.execute("UPDATE withdrawals SET at_us = ? WHERE id = ?", (_micros(at), withdrawal))


def lot_key(side: str, deal: str, gpu: str, gpus: int | None, location: str | None) -> str:
    """The text that makes a lot unique (NULLs would not: SQL never finds two NULLs equal)."""
    return f"{side}|{deal}|{gpu}|{'' if gpus is None else gpus}|{location or ''}"


def code(
    db: Database, table: str, values: dict[str, object], cache: dict[object, int] | None = None
) -> int:
    """The row id of `values` in a code table (`parties`, `venues`, `lots`), added if new.

    Codes never change once given, so a `cache` (one per open ledger) may keep them."""
    unique = ("key",) if table in ("lots", "quotes") else tuple(values)[:2]
    wanted = (table, *(values[name] for name in unique))
    if cache is not None and wanted in cache:
        return cache[wanted]
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    db.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING",
        tuple(values.values()),
    )
    where = " AND ".join(f"{name} = ?" for name in unique)
    row = db.execute(f"SELECT id FROM {table} WHERE {where}", wanted[1:]).fetchone()
    if cache is not None:
        cache[wanted] = int(row[0])
    return int(row[0])


def listing_codes(
    db: Database, record: dict[str, object], cache: dict[object, int] | None = None
) -> dict[str, int]:
    """The party, venue, lot and quote codes of an advertisement given as adverts columns."""
    lot = {name: record[name] for name in ("side", "deal", "gpu", "gpus", "location")}
    platform = record["platform"]
    amount = record["unit_amount"]
    quote = f"{amount} {record['unit_currency']}"
    return {
        "quote": None if amount is None else code(db, "quotes", {"key": quote}, cache),
        "party": code(
            db, "parties", {"platform": platform, "poster_id": record["poster_id"]}, cache
        ),
        "venue": code(db, "venues", {"platform": platform, "chat_id": record["chat_id"]}, cache),
        "lot": code(db, "lots", {"key": lot_key(**lot), **lot}, cache),  # type: ignore[arg-type]
    }


def _micros(text: str) -> int:
    from datetime import UTC, datetime, timedelta

    return (datetime.fromisoformat(text) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )


@MIGRATIONS(name="m_outbox_fallback")
def m_outbox_fallback(db: Database) -> None:
    """A queued alert keeps the group to mention its member in when a direct message fails."""
    db["outbox"].add_column("fallback_chat_id", str)  # type: ignore[union-attr]


@MIGRATIONS(name="m_hot_paths")
def m_hot_paths(db: Database) -> None:
    """Indexes for what the desk does on every post, so that none of it grows with the ledger.

    `offers_poster_lot`: the repost check reads a poster's standing offers of one side, deal
    and model (before, SQLite walked every standing offer of every poster by expiry).
    `offers_unpriced`: the book's and matching's unpriced offers, newest first, from an index
    (before, every unpriced offer of the model was sorted). `adverts_party` and `adverts_lot`:
    a withdrawal closes book offers by reading only the poster's lots of late, not all history.
    """
    db.execute(
        "CREATE INDEX offers_poster_lot ON offers"
        " (platform, poster_id, gpu, deal, side, status, expires_at)"
    )
    db.execute(
        "CREATE INDEX offers_unpriced ON offers (gpu, deal, side, status, seen_at)"
        " WHERE unit_price IS NULL"
    )
    db.execute("CREATE INDEX adverts_party ON adverts (party, at_us)")
    db.execute("CREATE INDEX adverts_lot ON adverts (lot, at_us)")
    db.execute("CREATE INDEX withdrawals_party ON withdrawals (platform, poster_id, at_us)")


@MIGRATIONS(name="m_desk_at_scale")
def m_desk_at_scale(db: Database) -> None:
    """What keeps the desk fast on a ledger of millions of posts.

    The inbox index holds only what is unread: a message is stored read within the transaction
    that reads it (`Desk.handle`), so most rows never enter it. `adverts_party` goes: a
    withdrawal finds its poster's lots from the poster's book offers; and the offers' index by
    poster and status goes, `offers_poster_lot` leads with the poster too: an index fewer on
    every advertisement and every offer keeps an import's commits smaller.

    `listing_changes` notes every advertisement or withdrawal deleted or rewritten (an edited
    post read again, a book offer dropped), with the earliest time it touched, so that the
    market state held in memory (`Ledger.week_pulses`) knows to read history again from there;
    new rows it finds by their ids.
    """
    db.execute("DROP INDEX IF EXISTS idx_messages_handled")
    db.execute("CREATE INDEX IF NOT EXISTS messages_unread ON messages (id) WHERE handled = 0")
    db.execute("DROP INDEX IF EXISTS adverts_party")
    db.execute("DROP INDEX IF EXISTS idx_offers_platform_poster_id_status")
    db.execute("CREATE TABLE listing_changes (id INTEGER PRIMARY KEY, at_us INTEGER NOT NULL)")
    for table in ("adverts", "withdrawals"):
        db.execute(
            f"CREATE TRIGGER {table}_forgotten AFTER DELETE ON {table} BEGIN"
            " INSERT INTO listing_changes (at_us) VALUES (coalesce(OLD.at_us, 0)); END"
        )
        db.execute(
            f"CREATE TRIGGER {table}_rewritten AFTER UPDATE ON {table} BEGIN"
            " INSERT INTO listing_changes (at_us)"
            " VALUES (coalesce(min(OLD.at_us, NEW.at_us), 0)); END"
        )


@MIGRATIONS(name="m_recover_message_flags")
def m_recover_message_flags(db: Database) -> None:
    """What the platform said about a message, kept with it, so that one a crash left unread is
    read on start as it would have been live (`Desk.recover`): `is_group` (a group, not a
    private chat) and `sender_is_admin` (the platform's positive admin check, asked only for
    admin commands). Rows from before get the safe values: a group, and no admin."""
    db.execute("ALTER TABLE messages ADD COLUMN is_group INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE messages ADD COLUMN sender_is_admin INTEGER NOT NULL DEFAULT 0")


@MIGRATIONS(name="m_digest_switch_chats")
def m_digest_switch_chats(db: Database) -> None:
    """A group's weekly digest switch (`/digest off`, `/digest on`): on unless a group turned it
    off; the digest scheduler skips a group with it off."""
    db.execute("ALTER TABLE chats ADD COLUMN weekly_digest INTEGER NOT NULL DEFAULT 1")


@MIGRATIONS(name="m_outbox_wechat_cap")
def m_outbox_wechat_cap(db: Database) -> None:
    """WeChat sends from the outbox too (issue 9), paced per room and capped per room a day.

    `platform_messages`: how many platform messages a reply's sending took, which the daily cap
    counts (a text and its chart are two; the match replies batched into one message count one,
    on the first of them, 0 on the rest; NULL: one). `outbox_queued_chat` finds a room's queue,
    `outbox_sent_chat` a room's sent messages of a day. A reply too old to send after an outage
    is marked `expired` (status), kept, not sent.
    """
    db.execute("ALTER TABLE outbox ADD COLUMN platform_messages INTEGER")
    db.execute(
        "CREATE INDEX outbox_queued_chat ON outbox (platform, chat_id, id) WHERE status = 'queued'"
    )
    db.execute(
        "CREATE INDEX outbox_sent_chat ON outbox (platform, chat_id, finished_at)"
        " WHERE status IN ('sent', 'sending')"
    )


@MIGRATIONS(name="m_market_saved")
def m_market_saved(db: Database) -> None:
    """The live market (`Ledger.week_pulses`) saved in the ledger, one row per scope (`scope`:
    the whole market, or one group's), so that a restart reads it back and the rows added
    since, not the whole history again. `made` says what it was made with (the code reading
    the market, the offer lifetime, the time zone, the exchange rate): a save made otherwise
    is not read. `advert`, `withdrawal`, `change` are the last ids of those rows it had read,
    `now_us` the moment it had read up to, `cursor` its last item; `packed`, the market
    (`market.listings.FrozenMarket`), is read back only as data."""
    db.execute(
        "CREATE TABLE market_saved (scope TEXT PRIMARY KEY, made TEXT NOT NULL,"
        " advert INTEGER NOT NULL, withdrawal INTEGER NOT NULL, change INTEGER NOT NULL,"
        " now_us INTEGER NOT NULL, cursor TEXT NOT NULL, saved_at TEXT NOT NULL,"
        " packed BLOB NOT NULL)"
    )
