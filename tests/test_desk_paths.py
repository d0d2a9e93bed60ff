"""The desk's hot paths keep their meaning: imports in savepoints, reposts in time order, the
offer contract field by field, past weeks' pulses re-read when history under them changes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gpudesk.bot import export as ex
from gpudesk.bot.backfill import backfill
from gpudesk.bot.importers import ChatTarget, open_export
from gpudesk.handlers import desk as desk_module
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.texts import say
from gpudesk.market.listings import Week
from gpudesk.market.offer import Currency, Deal, Offer, PricePer, QuantityUnit, Side
from gpudesk.storage.ledger import Ledger
from tests.conftest import Chat, FakeClock

ZONE = ZoneInfo("Asia/Shanghai")
SELL = "出 H100 8卡 10台 北京 月租7.5w/台"
BUY = "收 H100 8卡 2台 北京 月租6w/台"


def text_export(path: Path, posts: Sequence[tuple[object, str, str]]) -> Path:
    """A WeChat text export: (time, sender, text) each."""
    path.write_text(
        "\n".join(f"{when.astimezone(ZONE):%Y-%m-%d %H:%M:%S} {who}\n{text}\n"  # type: ignore[attr-defined]
                  for when, who, text in posts),
        encoding="utf-8",
    )  # fmt: skip
    return path


def test_a_message_that_cannot_be_read_rolls_back_alone_and_gets_no_reply(
    ledger: Ledger, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_alerts = desk_module.alerts_for

    def alerts_for(*args: object, **kwargs: object) -> object:
        message = args[3]
        if "boom" in message.text:  # type: ignore[attr-defined]
            # it was read: its offer booked and advertised, its poster noted; then it fails
            raise RuntimeError("the watch book tripped")
        return real_alerts(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(desk_module, "alerts_for", alerts_for)
    desk = Desk(ledger, DeskSettings(language="en"), clock=clock)
    start = clock() - timedelta(days=3)
    export = text_export(
        tmp_path / "group.txt",
        [(start + timedelta(hours=n), who, text) for n, (who, text) in enumerate(
            [("alice", SELL), ("bob", f"{BUY} boom"), ("carol", BUY)]
        )],
    )  # fmt: skip
    target = ChatTarget("console", "room")
    report = backfill(desk, [open_export(export, zone=ZONE)], targets=(target,))
    assert report.read == 3 and len(report.problems) == 1
    assert desk.failed == 1
    rows = ledger.conn.execute(
        "SELECT m.sender_id, m.handled, count(o.id) FROM messages m"
        " LEFT JOIN offers o ON o.message = m.id GROUP BY m.id ORDER BY m.id"
    ).fetchall()
    assert rows == [("alice", 1, 1), ("bob", 0, 0), ("carol", 1, 1)]  # bob's writes undone
    assert ledger.conn.execute("SELECT count(*) FROM adverts").fetchone()[0] == 2
    assert ledger.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    # A live message that fails still gets its apology.
    chat = Chat(desk, clock)
    assert chat.post("dave", f"{SELL} boom") == say("en", "error.internal")


def test_history_never_gets_an_error_reply(ledger: Ledger, clock: FakeClock) -> None:
    def parse(text: str) -> list[Offer]:
        raise RuntimeError("no")

    desk = Desk(ledger, DeskSettings(language="en"), clock=clock, parse=parse)
    message = Chat(desk, clock).message("alice", SELL, announce=False)
    assert desk.handle(message) == []
    assert desk.failed == 1
    assert ledger.unhandled_messages()[0][1].text == SELL


def test_an_older_post_read_later_does_not_refresh_a_newer_offer(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    chat.post("alice", SELL)
    [(seen_at, count)] = ledger.conn.execute("SELECT seen_at, seen_count FROM offers").fetchall()
    older = chat.message("alice", SELL, sent_at=clock() - timedelta(hours=5), announce=False)
    chat.desk.handle(older)
    rows = ledger.conn.execute("SELECT seen_at, seen_count FROM offers ORDER BY id").fetchall()
    assert rows[0] == (seen_at, count)  # the newer offer is as it was
    assert len(rows) == 2  # the older post is an offer of its own
    clock.advance(hours=2)
    chat.post("alice", SELL)  # a later repost refreshes the first one that stands
    assert ledger.conn.execute("SELECT seen_count FROM offers ORDER BY id").fetchall()[0] == (2,)


def test_a_repost_never_moves_an_offer_back_in_time(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    chat.post("alice", SELL)
    clock.advance(hours=6)
    chat.post("alice", SELL)
    [(seen_at, expires_at)] = ledger.conn.execute(
        "SELECT seen_at, expires_at FROM offers"
    ).fetchall()
    between = chat.message("alice", SELL, sent_at=clock() - timedelta(hours=3), announce=False)
    chat.desk.handle(between)  # read late: it refreshes the offer, and moves nothing back
    assert ledger.conn.execute("SELECT seen_at, expires_at, seen_count FROM offers").fetchall() == [
        (seen_at, expires_at, 3)
    ]


def test_the_contract_is_the_dataclass_field_by_field() -> None:
    offers = [
        Offer(Side.SELL, Deal.RENT, "H100"),
        Offer(Side.BUY, Deal.SALE, "RTX 4090", "PCIe", 24, 100, QuantityUnit.GPU, None,
              Decimal("18000"), Currency.CNY, PricePer.GPU, "Shenzhen"),
        Offer(Side.SELL, Deal.RENT, "H200", "SXM", 141, 4, QuantityUnit.SERVER, 8,
              Decimal("2.35"), Currency.USD, PricePer.GPU_HOUR, "Singapore"),
    ]  # fmt: skip
    for offer in offers:
        expected = {
            name: value.value if isinstance(value, StrEnum) else value
            for name, value in dataclasses.asdict(offer).items()
        }
        price = offer.price
        whole = price is not None and price == price.to_integral_value()
        expected["price"] = None if price is None else int(price) if whole else float(price)
        contract = offer.to_contract()
        assert list(contract) == [f.name for f in dataclasses.fields(Offer)]
        assert contract == expected
        assert Offer.from_contract(contract) == offer


def test_a_past_weeks_pulse_is_read_again_when_an_import_lands_in_it(
    chat: Chat, ledger: Ledger, clock: FakeClock, tmp_path: Path
) -> None:
    chat.post("alice", SELL)
    clock.advance(days=15)
    weeks_ago = Week.of(clock(), ZONE).shifted(-2)  # past the week before: kept in a cache
    lifetime = timedelta(days=14)

    def kept() -> list[dict[str, object]]:
        found = ledger.week_pulses(weeks_ago, now=clock(), lifetime=lifetime)
        return [ex.pulse_row(p) for p in found]

    def exported() -> list[dict[str, object]]:
        return ex.pulse_rows(ledger, zone=ZONE, lifetime=lifetime, now=clock(), weeks=[weeks_ago])

    assert kept() == exported() != []
    assert kept() == exported()  # from the cache now
    bob = [(weeks_ago.start + timedelta(days=1), "bob", BUY)]
    export = text_export(tmp_path / "older.txt", bob)
    backfill(chat.desk, [open_export(export, zone=ZONE)], targets=(ChatTarget("console", "room"),))
    assert kept() == exported()
    assert exported()[0]["buyers"] == 1


@pytest.mark.parametrize("late", [True, False])
def test_a_withdrawal_closes_the_book_offers_of_what_it_ends(
    chat: Chat, ledger: Ledger, clock: FakeClock, late: bool
) -> None:
    chat.post("alice", SELL)
    clock.advance(hours=2)
    chat.post("bob", "WTS 80x H100 Beijing $1.78/GPU/hr")  # a broker's relay
    clock.advance(days=20 if late else 1)  # past three weeks, the offers stood no more
    chat.post("alice", "H100已出，谢谢各位")
    statuses = [row[0] for row in ledger.conn.execute("SELECT status FROM offers ORDER BY id")]
    assert statuses == (["open", "open"] if late else ["withdrawn", "withdrawn"])
