"""The ledger: messages stored once, edits in place, migrations, a file that keeps everything."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from gpudesk.handlers.message import ChatMessage
from gpudesk.market.offer import Currency, Deal, Offer, PricePer, QuantityUnit, Side
from gpudesk.storage.ledger import EXPIRED, OPEN, Ledger, LedgerError, iso
from gpudesk.storage.migrations import MIGRATIONS
from tests.conftest import START

OFFER = Offer(
    side=Side.SELL,
    deal=Deal.RENT,
    gpu="H100",
    variant="SXM",
    quantity=10,
    quantity_unit=QuantityUnit.SERVER,
    gpus_per_server=8,
    price=Decimal("75000"),
    currency=Currency.CNY,
    price_per=PricePer.SERVER_MONTH,
    location="Beijing",
)


def message(message_id: str = "1", text: str = "出 H100", **extra: object) -> ChatMessage:
    values: dict[str, object] = {
        "platform": "telegram",
        "chat_id": "-100",
        "sender_id": "42",
        "sender_name": "Alice",
        "text": text,
        "sent_at": START,
        "message_id": message_id,
        "chat_title": "GPU Traders",
    }
    values.update(extra)
    return ChatMessage(**values)  # type: ignore[arg-type]


def add(ledger: Ledger, message_row: int, offer: Offer = OFFER, item: int = 0) -> int:
    return ledger.add_offer(
        message_row=message_row,
        item=item,
        message=message(),
        offer=offer,
        gpus=80,
        posted_at=START,
        expires_at=START + timedelta(days=14),
    )


def test_a_message_delivered_twice_is_stored_once(ledger: Ledger) -> None:
    first = ledger.store_message(message(), received_at=START)
    again = ledger.store_message(message(), received_at=START)
    assert (first.fresh, again.fresh, again.changed) == (True, False, False)
    assert first.id == again.id
    assert ledger.message_count() == 1


def test_the_same_message_id_in_another_chat_is_another_message(ledger: Ledger) -> None:
    ledger.store_message(message(), received_at=START)
    ledger.store_message(message(chat_id="-200"), received_at=START)
    assert ledger.message_count() == 2


def test_an_edit_replaces_the_text_and_reopens_the_message(ledger: Ledger) -> None:
    stored = ledger.store_message(message(), received_at=START)
    ledger.mark_handled(stored.id)
    edited = ledger.store_message(message(text="出 H200", edited=True), received_at=START)
    assert edited.changed and edited.id == stored.id
    [(row, pending)] = ledger.unhandled_messages()
    assert (row, pending.text, pending.edited) == (stored.id, "出 H200", True)


def test_unhandled_messages_are_the_inbox(ledger: Ledger) -> None:
    one = ledger.store_message(message("1"), received_at=START)
    two = ledger.store_message(message("2"), received_at=START)
    ledger.mark_handled(one.id)
    assert [row for row, _ in ledger.unhandled_messages()] == [two.id]


def test_offers_round_trip_exactly(ledger: Ledger) -> None:
    stored = ledger.store_message(message(), received_at=START)
    offer_id = add(ledger, stored.id)
    record = ledger.offer(offer_id)
    assert record is not None
    assert record.posted.offer == OFFER
    assert record.posted.offer.price == Decimal("75000")
    assert record.posted.unit_price == Decimal("75000") / 730 / 8
    assert (record.status, record.posted.chat_title, record.posted.gpus) == (
        OPEN,
        "GPU Traders",
        80,
    )


def test_open_offers_leave_out_expired_and_closed_ones(ledger: Ledger) -> None:
    stored = ledger.store_message(message(), received_at=START)
    kept, closed = add(ledger, stored.id, item=0), add(ledger, stored.id, item=1)
    ledger.set_status(closed, "withdrawn", now=START)
    assert [r.id for r in ledger.open_offers(now=START, gpu="H100")] == [kept]
    assert ledger.open_offers(now=START + timedelta(days=14), gpu="H100") == []
    assert ledger.expire(now=START + timedelta(days=15)) == 1
    assert ledger.offer(kept).status == EXPIRED  # type: ignore[union-attr]


def test_a_reopened_file_keeps_everything(db_path: Path) -> None:
    with Ledger.open(db_path) as ledger:
        stored = ledger.store_message(message(), received_at=START)
        offer_id = add(ledger, stored.id)
        ledger.update_chat("telegram", "-100", language="en")
    with Ledger.open(db_path) as ledger:
        assert ledger.message_count() == 1
        assert ledger.offer(offer_id).posted.offer == OFFER  # type: ignore[union-attr]
        assert ledger.chat("telegram", "-100").language == "en"
        assert ledger.chat("telegram", "-100").title == "GPU Traders"


def test_migrations_bring_an_old_file_forward_and_run_once(db_path: Path) -> None:
    # An old ledger: a file at the first schema version, with a message in it.
    from sqlite_utils import Database

    names = [m.name for m in MIGRATIONS.pending(Database(memory=True))]
    old = Database(db_path)
    if len(names) > 1:
        MIGRATIONS.apply(old, stop_before=names[1])
    else:
        MIGRATIONS.apply(old)
    old["messages"].insert(
        {
            "platform": "telegram",
            "chat_id": "-1",
            "message_id": "7",
            "sender_id": "42",
            "text": "出 H100",
            "sent_at": iso(START),
        }
    )
    old.conn.close()
    with Ledger.open(db_path) as ledger:
        assert [m.name for m in MIGRATIONS.applied(ledger.db)] == names
        assert ledger.message_count() == 1
        assert ledger.store_message(message("7", chat_id="-1"), received_at=START).fresh is False
    with Ledger.open(db_path) as ledger:  # a second open applies nothing again
        assert MIGRATIONS.pending(ledger.db) == []
        assert len(MIGRATIONS.applied(ledger.db)) == len(names)


def test_a_file_from_before_gpudesk_keeps_its_own_tables(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()
    with Ledger.open(db_path) as ledger:
        assert {"messages", "offers", "chats", "users"} <= set(ledger.db.table_names())
        assert ledger.conn.execute("SELECT body FROM notes").fetchone() == ("keep me",)


def test_the_file_is_in_wal_mode(ledger: Ledger) -> None:
    assert ledger.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_file_that_is_not_sqlite_is_a_named_error(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"this is not a database, just text " * 100)
    with pytest.raises(LedgerError, match="not a usable gpudesk ledger"):
        Ledger.open(bogus)


def test_a_failed_write_rolls_back_and_keeps_what_was_stored(ledger: Ledger) -> None:
    ledger.store_message(message("1"), received_at=START)
    with pytest.raises(RuntimeError), ledger.transaction():
        ledger.store_message(message("2"), received_at=START)
        raise RuntimeError("crash mid-write")
    assert ledger.message_count() == 1


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        iso(START.replace(tzinfo=None))


def test_two_writers_on_one_file_never_see_a_lock_error(db_path: Path) -> None:
    Ledger.open(db_path).close()
    errors: list[BaseException] = []

    def write(prefix: str) -> None:
        try:
            with Ledger.open(db_path) as ledger:
                for n in range(300):
                    ledger.store_message(message(f"{prefix}{n}"), received_at=START)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(p,)) for p in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Ledger.open(db_path) as ledger:
        assert ledger.message_count() == 600
