"""Browse: the ledger in Datasette, read-only, with labels and a few ready-made queries.

`serve(path, port=...)` checkpoints the ledger's write-ahead log into the main file, then serves
the file as an immutable database (Datasette's `-i`: opened with `immutable=1`, so it can never
be written through the browser, and no lock is taken that could slow the bot). `metadata()` is
the Datasette metadata: table and column descriptions, the offers' facets, labels for foreign
keys, and canned queries (open offers by model, open offers of one model, offers per model per
week, messages per chat).

Immutable means a snapshot: what the bot writes after `browse` starts shows up on the next
start. The canned queries compute in SQL what SQL can (counts, parties per week); prices per
GPU-hour need the desk's valuation and are in `gpudesk export --what offers` instead.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gpudesk.storage.ledger import Ledger

DEFAULT_PORT = 8001
LOOPBACK = "127.0.0.1"

# Stored times are ISO 8601 UTC text; this is "now" in a form that compares with them.
_NOW = "strftime('%Y-%m-%dT%H:%M:%f', 'now')"

_OPEN_OFFERS_BY_MODEL = f"""
select gpu, deal, side, count(*) as offers, count(distinct platform || ':' || poster_id)
  as parties, sum(gpus) as gpus, min(posted_at) as first_posted, max(seen_at) as last_seen
from offers
where status = 'open' and expires_at > {_NOW}
group by gpu, deal, side
order by offers desc, gpu, deal, side
"""

_OPEN_OFFERS_OF_MODEL = f"""
select o.id, o.gpu, o.side, o.deal, o.variant, o.memory_gb, o.quantity, o.quantity_unit,
  o.price, o.currency, o.price_per, o.location, o.poster_name, c.title as chat,
  o.posted_at, o.seen_count, m.text
from offers o
join messages m on m.id = o.message
left join chats c on c.platform = o.platform and c.chat_id = o.chat_id
where o.status = 'open' and o.expires_at > {_NOW} and (:gpu = '' or o.gpu = :gpu)
order by o.gpu, o.deal, o.side, o.posted_at desc
"""

_OFFERS_PER_WEEK = """
select date(posted_at, 'weekday 0', '-6 days') as week_start, gpu, deal,
  count(distinct case when side = 'sell' then platform || ':' || poster_id end) as sellers,
  count(distinct case when side = 'buy' then platform || ':' || poster_id end) as buyers,
  sum(side = 'sell') as sell_offers, sum(side = 'buy') as buy_offers, sum(gpus) as gpus
from offers
group by week_start, gpu, deal
order by week_start desc, sellers + buyers desc, gpu, deal
"""

_MESSAGES_PER_CHAT = """
select m.platform, m.chat_id, c.title, count(*) as messages,
  sum(m.source = 'import') as imported, min(m.sent_at) as first, max(m.sent_at) as last
from messages m
left join chats c on c.platform = m.platform and c.chat_id = m.chat_id
group by m.platform, m.chat_id
order by messages desc
"""

_TIME = "ISO 8601, UTC"

_TABLES: dict[str, dict[str, Any]] = {
    "offers": {
        "description": "Buy and sell offers read from messages, one row per offer.",
        "sort_desc": "posted_at",
        "facets": ["gpu", "deal", "side", "status"],
        "columns": {
            "message": "The message the offer was read from (messages.id)",
            "item": "Position of the offer within its message (price lists hold several)",
            "platform": "telegram, wechat or console",
            "chat_id": "The chat it was posted in, as the platform names it",
            "poster_id": "Who offers it: the origin of a forward, else the sender",
            "poster_name": "The poster's display name",
            "side": "sell (supplies hardware or compute) or buy (wants it)",
            "deal": "sale (hardware changes owner) or rent (compute is leased)",
            "gpu": "Canonical GPU model (contract catalog)",
            "variant": "SXM, PCIe or NVL when stated",
            "memory_gb": "Memory per GPU in GB when stated",
            "quantity": "How many, as stated",
            "quantity_unit": "gpu or server",
            "gpus_per_server": "GPUs per server when stated",
            "price": "Stated amount in whole currency units (exact decimal as text)",
            "currency": "CNY or USD",
            "price_per": "What one price buys: gpu_hour, server_month, gpu, server, ...",
            "location": "Most specific place named, in English",
            "gpus": "Quantity in GPUs (servers x GPUs per server, 8 when unstated)",
            "status": "open, withdrawn, filled or expired (as last swept)",
            "posted_at": f"First posted ({_TIME})",
            "seen_at": f"Last posted again by the same poster ({_TIME})",
            "seen_count": "How many times it was posted",
            "expires_at": f"When it stops standing unless posted again ({_TIME})",
            "closed_at": f"When it was withdrawn, filled or expired ({_TIME})",
        },
    },
    "messages": {
        "description": "Every message the desk has seen, live or imported from chat exports.",
        "sort_desc": "sent_at",
        "label_column": "text",
        "columns": {
            "platform": "telegram, wechat or console",
            "chat_id": "The chat, as the platform names it",
            "message_id": "The platform's message id, unique within the chat",
            "sender_id": "Who sent it (platform user id)",
            "sender_name": "The sender's display name",
            "poster_id": "Who the offers belong to: the origin of a forward, else the sender",
            "poster_name": "The poster's display name",
            "text": "The message as posted",
            "sent_at": f"When it was sent ({_TIME})",
            "received_at": f"When the desk stored it ({_TIME})",
            "edited_at": f"When an edit replaced the text ({_TIME})",
            "reply_to_id": "The platform message id this one answers",
            "link": "A URL to the post (public Telegram groups)",
            "source": "live (from the bot) or import (from a chat export)",
            "handled": "1 once its offers were read",
            "is_group": "1 when said in a group, 0 in a private chat",
            "sender_is_admin": "1 when the platform said the sender is a group admin",
        },
    },
    "chats": {
        "description": "The groups the desk knows, with their settings.",
        "label_column": "title",
        "columns": {
            "title": "The group's name",
            "language": "Reply language set for the group (empty: the desk default)",
            "match_replies": "1 when the desk answers new offers with counterparties",
            "scope": "all: readings use every group; group: this group's offers only",
            "weekly_digest": "1 when the group gets the weekly digest (/digest off: 0)",
            "first_seen": f"First message seen ({_TIME})",
        },
    },
    "users": {
        "description": "Everyone who posted, per platform.",
        "label_column": "name",
        "columns": {
            "user_id": "Platform user id",
            "name": "Display name last seen",
            "first_seen": f"First message ({_TIME})",
            "last_seen": f"Latest message ({_TIME})",
        },
    },
    "_sqlite_migrations": {"hidden": True},
    "market_saved": {"hidden": True},  # the live market packed for a quick restart: blobs
}

_QUERIES: dict[str, dict[str, Any]] = {
    "open_offers_by_model": {
        "title": "Open offers by model",
        "description": "Offers standing now, counted per GPU model, deal and side.",
        "sql": _OPEN_OFFERS_BY_MODEL,
    },
    "open_offers": {
        "title": "Open offers of one model",
        "description": "Offers standing now with their post; leave gpu empty for all models.",
        "sql": _OPEN_OFFERS_OF_MODEL,
    },
    "offers_per_week": {
        "title": "Weekly pulse: offers per model per week",
        "description": "Distinct sellers and buyers and their posts per model and deal, per week"
        " (weeks start Monday, UTC). Median prices: gpudesk export --what pulse.",
        "sql": _OFFERS_PER_WEEK,
    },
    "messages_per_chat": {
        "title": "Messages per chat",
        "description": "How many messages each chat has, how many imported, and their span.",
        "sql": _MESSAGES_PER_CHAT,
    },
}


def database_name(path: Path) -> str:
    """The name Datasette gives the file: its name without the extension."""
    return path.stem


def metadata(path: Path) -> dict[str, Any]:
    return {
        "title": "gpudesk ledger",
        "description": "Messages and offers from the GPU deal groups, read-only.",
        "databases": {
            database_name(path): {
                "description": f"The ledger {path.name}, as of the moment browse started.",
                "tables": _TABLES,
                "queries": _QUERIES,
            }
        },
    }


def make_datasette(path: Path) -> Any:
    """A Datasette serving `path` immutable, with gpudesk's metadata."""
    from datasette.app import Datasette

    return Datasette(
        immutables=[str(path)],
        metadata=metadata(path),
        settings={"sql_time_limit_ms": 5000, "facet_time_limit_ms": 1000},
    )


def serve(path: Path, *, host: str = LOOPBACK, port: int = DEFAULT_PORT) -> None:
    """Serve the ledger at `path` until interrupted (Ctrl-C)."""
    import uvicorn

    with Ledger.open(path) as ledger:  # brings an old file's schema up to date, too
        ledger.checkpoint()
    datasette = make_datasette(path)
    asyncio.run(datasette.invoke_startup())
    uvicorn.run(datasette.app(), host=host, port=port, log_level="warning", lifespan="on")
