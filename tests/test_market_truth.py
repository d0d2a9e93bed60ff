"""Market truth through the desk: real posts in, listings and the weekly pulse out (issue 11).

Small histories posted through `Desk.handle` (the real parser, the real ledger) that isolate
each rule of README (pulse), checked where people see them: `/price`, `/market`, `/explain`,
the digest, `gpudesk export --what pulse` and `gpudesk explain`. The clock starts on Monday
2 November 2026, 09:00 in Shanghai: week 2026-W45.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from gpudesk.bot import export as ex
from gpudesk.bot.cli import State
from gpudesk.bot.data_cli import export_command
from gpudesk.bot.explain_cli import explain
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.digest_text import load_digest
from gpudesk.market.digest import occurrence_for_week, window_ending
from gpudesk.market.listings import Week
from gpudesk.market.offer import Deal
from gpudesk.market.withdrawal import detect_withdrawal
from gpudesk.storage.ledger import Ledger
from gpudesk.storage.migrations import _backfill_listing_facts, code_listing_facts
from tests.conftest import Chat, FakeClock

ZONE = ZoneInfo("Asia/Shanghai")
W45 = Week(2026, 45, ZONE)
LIFETIME = timedelta(days=14)

SELL = "出 H100 8卡 10台 北京 月租7.5w/台"  # 80 GPUs in Beijing at ¥12.8425/GPU-h
SELL_RELAYED = "WTS 80x H100 Beijing $1.78/GPU/hr"  # a broker's words: $1.78 at 7.2 is ¥12.816
SELL_CUT = "出 H100 8卡 10台 北京 月租7w/台"  # ¥11.99/GPU-h
SELL_SHANGHAI = "出 H100 8卡 10台 上海 月租7.5w/台"
BUY = "收 H100 8卡 2台 北京 月租6w/台"  # ¥10.27/GPU-h


def rows(ledger: Ledger, clock: FakeClock, *weeks: Week) -> list[dict[str, Any]]:
    return ex.pulse_rows(ledger, zone=ZONE, lifetime=LIFETIME, now=clock(), weeks=list(weeks))


def h100(ledger: Ledger, clock: FakeClock, week: Week = W45) -> dict[str, Any] | None:
    found = [r for r in rows(ledger, clock, week) if (r["gpu"], r["deal"]) == ("H100", "rent")]
    return found[0] if found else None


def other_group(chat: Chat) -> Chat:
    return Chat(chat.desk, chat.clock, chat_id="room2", chat_title="GPU现货群")


# -- what advertises a listing ---------------------------------------------------------------------


def test_reposts_and_a_copy_in_another_group_are_one_party(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    chat.post("alice", SELL)
    clock.advance(days=2)
    chat.post("alice", SELL)
    other_group(chat).post("alice", SELL)
    text = chat.post("carol", "/price H100 rent")
    assert "1 sellers · 0 buyers" in text
    assert "Posts this week: sell 3 by 1 posters" in text
    row = h100(ledger, clock)
    assert row is not None
    assert (row["sellers"], row["sell_messages"], row["sell_posters"]) == (1, 3, 1)


def test_a_brokers_translated_repost_in_dollars_per_gpu_hour_is_the_same_lot(
    chat: Chat, ledger: Ledger, clock: FakeClock, db_path: Path
) -> None:
    chat.post("alice", SELL)
    clock.advance(hours=5)
    chat.post("bob", SELL_RELAYED)
    row = h100(ledger, clock)
    assert row is not None
    assert (row["sellers"], row["sell_posters"], row["sell_messages"]) == (1, 2, 2)
    assert row["median_ask"] == Decimal("12.8425")  # alice's own price, not bob's restatement
    out = invoke_explain(db_path, "H100", "rent", "--week", "2026-W45")
    assert "1. Alice · 80 GPUs · Beijing · ¥12.84/GPU-h this week" in out
    assert "GPU Traders · Bob · broker repost: “WTS 80x H100 Beijing $1.78/GPU/hr”" in out


@pytest.mark.parametrize(
    ("later", "text"),
    [
        pytest.param(timedelta(days=2), SELL, id="the same lot two days later"),
        pytest.param(timedelta(hours=1), SELL_SHANGHAI, id="the same day in another place"),
    ],
)
def test_look_alike_parties_stay_two(
    chat: Chat, ledger: Ledger, clock: FakeClock, later: timedelta, text: str
) -> None:
    chat.post("alice", SELL)
    clock.advance(seconds=later.total_seconds())
    chat.post("dave", text)
    row = h100(ledger, clock)
    assert row is not None and row["sellers"] == 2


def test_a_price_cut_mid_week_is_the_weeks_price(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    chat.post("alice", SELL)
    clock.advance(days=3)
    chat.post("alice", SELL_CUT)
    assert "median ¥11.99/GPU-h" in chat.post("carol", "/price H100 rent")
    row = h100(ledger, clock)
    assert row is not None and row["median_ask"] == Decimal("11.9863")  # 70000 / 730 / 8
    assert row["sell_messages"] == 2 and row["sellers"] == 1


# -- standing and withdrawals ----------------------------------------------------------------------


def test_a_quiet_seller_stands_for_fourteen_days(chat: Chat, clock: FakeClock) -> None:
    chat.post("alice", SELL)  # Monday 09:00, week 45
    clock.advance(days=13, hours=23)
    assert "1 sellers" in chat.post("carol", "/price H100 rent")  # Sunday of week 46
    clock.advance(days=1)  # Monday of week 47, 08:00: it still stood in this week until 09:00
    assert "1 sellers" in chat.post("carol", "/price H100 rent")
    clock.advance(days=7)
    assert "Nobody has a H100 listing standing in week 2026-W48" in chat.post(
        "carol", "/price H100"
    )


def test_a_withdrawal_by_name_ends_the_listing_and_its_book_offer(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    chat.post("alice", SELL)
    clock.advance(days=1)
    assert chat.post("alice", "H100已出，谢谢各位") == ""  # not an offer, and no reply
    assert ledger.open_offers(now=clock()) == []  # matching no longer offers it
    [row] = ledger.conn.execute("SELECT kind, words, gpu FROM withdrawals").fetchall()
    assert row == ("said", "已出", "H100")
    assert h100(ledger, clock) is not None  # it stood in week 45 until Tuesday
    assert h100(ledger, clock, W45.shifted(1)) is None


def test_a_withdrawal_by_reply_ends_the_listing_of_the_post_it_answers(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    [posted] = [chat.message("alice", SELL)]
    chat.desk.handle(posted)
    clock.advance(days=1)
    chat.post("bob", "Update: fully booked", reply_to_id=posted.message_id)  # not bob's
    assert len(ledger.open_offers(now=clock())) == 1
    chat.post("alice", "Update: fully booked", reply_to_id=posted.message_id)
    assert ledger.open_offers(now=clock()) == []
    clock.advance(days=7)
    assert h100(ledger, clock, W45.shifted(1)) is None


def test_gossip_and_questions_end_nothing(chat: Chat, ledger: Ledger, clock: FakeClock) -> None:
    chat.post("alice", SELL)
    for text in ("听说老王的H100已出了", "H100已出了吗？", "H100还没出"):
        chat.post("alice", text)
    assert ledger.conn.execute("SELECT count(*) FROM withdrawals").fetchone()[0] == 0
    record = ledger.offer(1)
    assert record is not None and record.status == "open"


def test_a_brokers_late_note_on_a_closed_listing_changes_nothing(
    chat: Chat, ledger: Ledger, clock: FakeClock, db_path: Path
) -> None:
    chat.post("alice", SELL)
    clock.advance(hours=2)
    chat.post("bob", SELL_RELAYED)
    clock.advance(days=1)
    chat.post("alice", "H100已出，谢谢各位")
    clock.advance(days=2)
    chat.post("bob", "H100 8卡 10台 北京 租赁 已出")  # names it whole, but it is closed
    out = invoke_explain(db_path, "H100", "rent", "--week", "2026-W45")
    assert "closed by Alice in GPU Traders at 11-03 11:00: “H100已出，谢谢各位”" in out
    assert "Bob in GPU Traders at 11-05" not in out


def test_a_brokers_note_naming_the_lot_whole_ends_it_while_open(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    chat.post("alice", SELL)
    clock.advance(hours=2)
    chat.post("bob", SELL_RELAYED)
    clock.advance(days=1)
    chat.post("bob", "H100已出")  # names no lot: not enough for a broker
    assert len(ledger.open_offers(now=clock())) == 2
    chat.post("bob", "H100 8卡 10台 北京 租赁 已出")
    assert ledger.open_offers(now=clock()) == []


def test_a_post_edited_into_sold_ends_what_it_advertised(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    posted = chat.message("alice", SELL)
    chat.desk.handle(posted)
    clock.advance(days=2)
    edit = chat.message("alice", f"{SELL} 已出", message_id=posted.message_id, edited=True)
    chat.desk.handle(edit)
    row = h100(ledger, clock)
    assert row is not None and row["sellers"] == 1  # it was advertised, until the edit
    assert h100(ledger, clock, W45.shifted(1)) is None


def test_cancel_and_filled_end_the_listing(chat: Chat, ledger: Ledger, clock: FakeClock) -> None:
    chat.post("alice", SELL)
    clock.advance(days=1)
    assert "withdrawn" in chat.post("alice", "/cancel 1")
    [kind] = ledger.conn.execute("SELECT kind FROM withdrawals").fetchone()
    assert kind == "cancel"
    assert h100(ledger, clock, W45.shifted(1)) is None


# -- history and the same figures everywhere -------------------------------------------------


def test_an_imported_past_week_reads_as_its_own_week(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    chat.post("alice", SELL)  # live, week 45
    past = W45.shifted(-5)  # week 40: 28 September to 4 October
    for hours, who, text in ((10, "erin", SELL), (34, "frank", BUY), (60, "erin", SELL_CUT)):
        message = chat.message(who, text, sent_at=past.start + timedelta(hours=hours))
        chat.desk.handle(message.__class__(**{**_fields(message), "announce": False}))
    [w40] = [r for r in rows(ledger, clock, past) if r["gpu"] == "H100"]
    assert (w40["sellers"], w40["buyers"], w40["median_ask"], w40["median_bid"]) == (
        1,
        1,
        Decimal("11.9863"),
        Decimal("10.2740"),
    )
    assert w40["reading"] == "balanced"
    row = h100(ledger, clock)
    assert row is not None and row["sellers"] == 1  # erin's lapsed long ago
    assert "1 sellers · 0 buyers" in chat.post("carol", "/price H100 rent")


def _fields(message: object) -> dict[str, Any]:
    return {name: getattr(message, name) for name in message.__slots__}  # type: ignore[attr-defined]


def test_price_market_digest_and_export_give_the_same_figures(
    chat: Chat, ledger: Ledger, clock: FakeClock, settings: DeskSettings
) -> None:
    chat.post("s1", SELL)
    chat.post("s2", SELL_SHANGHAI)
    chat.post("s3", SELL.replace("10台", "2台"))
    chat.post("b1", BUY)
    clock.advance(days=2)
    chat.post("s1", SELL_CUT)
    row = h100(ledger, clock)
    assert row is not None
    price = chat.post("carol", "/price H100 rent")
    assert f"{row['sellers']} sellers · {row['buyers']} buyers → everyone selling" in price
    assert (row["sellers"], row["buyers"], row["reading"]) == (3, 1, "everyone_selling")
    assert "H100 rent: 3/1 · ¥12.84/GPU-h · ¥10.27/GPU-h · everyone selling" in chat.post(
        "carol", "/market"
    )
    due = occurrence_for_week("2026-W45", (0, 9, 0), ZONE)
    clock.now = due
    start, end = window_ending(due, (0, 9, 0), ZONE)
    digest = load_digest(ledger, settings, ledger.chat("console", "room"), start=start, end=end)
    [model] = [p for p in digest.models if p.gpu == "H100"]
    assert (model.week, model.sellers, model.buyers) == ("2026-W45", row["sellers"], row["buyers"])
    assert model.median_ask is not None
    assert model.median_ask.quantize(Decimal("0.0001")) == row["median_ask"]
    assert model.median_bid is not None
    assert model.median_bid.quantize(Decimal("0.0001")) == row["median_bid"]
    assert (model.sell_posters, model.sell_offers) == (row["sell_posters"], row["sell_messages"])


WEEKS_45_46 = ("--week", "2026-W45", "--week", "2026-W46")
WEEK_45_IN_ROOM2 = ("--week", "2026-W45", "--chat", "console:room2")


def test_the_export_command_prints_one_line_per_week_gpu_and_deal(
    chat: Chat, ledger: Ledger, clock: FakeClock, db_path: Path
) -> None:
    chat.post("alice", SELL)
    chat.post("bob", BUY)
    other_group(chat).post("carol", SELL_SHANGHAI)
    result = CliRunner().invoke(
        export_command,
        ["--db", str(db_path), "--what", "pulse", "--format", "jsonl", *WEEKS_45_46],
        obj=State(None, False),
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["week"], r["gpu"], r["deal"]) for r in lines] == [
        ("2026-W45", "H100", "rent"),
        ("2026-W46", "H100", "rent"),
    ]
    first = lines[0]
    for name in ("week", "gpu", "deal", "sellers", "buyers", "median_ask", "median_bid"):
        assert name in first
    for name in ("p25_ask", "p75_ask", "best_ask", "best_bid", "currency", "unit", "wow_ask"):
        assert name in first
    for name in ("reading", "sell_posters", "buy_posters", "sell_messages", "buy_messages"):
        assert name in first
    assert (first["sellers"], first["buyers"], first["unit"], first["currency"]) == (
        2,
        1,
        "gpu_hour",
        "CNY",
    )
    assert (first["wow_ask"], first["reading"]) == (None, "sellers_outnumber")
    assert lines[1]["wow_ask"] == 0  # the same two asks the week after
    one_group = CliRunner().invoke(
        export_command,
        ["--db", str(db_path), "--what", "pulse", "--format", "jsonl", *WEEK_45_IN_ROOM2],
        obj=State(None, False),
    )
    assert [json.loads(line)["sellers"] for line in one_group.stdout.splitlines()] == [1]
    bad = CliRunner().invoke(
        export_command,
        ["--db", str(db_path), "--what", "pulse", "--week", "2026-W99"],
        obj=State(None, False),
    )
    assert bad.exit_code == 2 and "ISO week" in bad.output


# -- explain -----------------------------------------------------------------------------------


def invoke_explain(db_path: Path, *args: str) -> str:
    result = CliRunner().invoke(
        explain, [*args, "--db", str(db_path), "--lang", "en"], obj=State(None, False)
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_explain_traces_every_figure_to_posts(chat: Chat, clock: FakeClock, db_path: Path) -> None:
    chat.post("alice", SELL)
    other_group(chat).post("alice", SELL)
    clock.advance(days=2)
    chat.post("alice", SELL_CUT)
    chat.post("bob", BUY)
    out = invoke_explain(db_path, "H100", "rent", "--week", "2026-W45")
    assert out.splitlines()[:2] == [
        "H100 rent · week 2026-W45 (11-02 – 11-08)",
        "1 sellers · 1 buyers → balanced",
    ]
    assert "Posts in the week: sell 3 by 1 posters, buy 1 by 1 posters" in out
    assert "1. Alice · 80 GPUs · Beijing · ¥11.99/GPU-h this week" in out
    for line in (
        "11-02 09:00 · GPU Traders · Alice · original: “出 H100 8卡 10台 北京 月租7.5w/台”",
        "11-02 09:00 · GPU现货群 · Alice · cross-post: “出 H100 8卡 10台 北京 月租7.5w/台”",
        "11-04 09:00 · GPU Traders · Alice · price change: “出 H100 8卡 10台 北京 月租7w/台”",
        "lapsed 14 days after its last post",  # `gpudesk explain` reads up to the real now
    ):
        assert line in out


def test_explain_in_chat_is_for_admins_and_speaks_the_groups_language(chat: Chat) -> None:
    chat.post("alice", SELL)
    assert "Only group admins can use /explain" in chat.post("bob", "/explain H100 rent")
    text = chat.post("bob", "/explain H100 rent 2026-W45", sender_is_admin=True)
    assert "1. Alice · 80 GPUs · Beijing · ¥12.84/GPU-h this week" in text
    chat.post("root", "/lang zh")
    assert "首发" in chat.post("root", "解读 H100")
    assert "ISO 周" in chat.post("root", "/explain H100 2026-W60")


# -- the detector ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "gpu", "deal", "place", "gpus"),
    [
        ("已出", None, None, None, None),
        ("已定", None, None, None, None),
        ("出掉了", None, None, None, None),
        ("已租出", None, Deal.RENT, None, None),
        ("sold", None, None, None, None),
        ("fully booked", None, Deal.RENT, None, None),
        ("no longer available", None, None, None, None),
        ("H100已出，谢谢各位", "H100", None, None, None),
        ("Update: fully booked", None, Deal.RENT, None, None),
        ("H100 8卡 10台 北京 租赁 已出", "H100", Deal.RENT, "Beijing", 80),
        ("Sold: 64x H100 Dallas", "H100", None, "Dallas", 64),
    ],
)
def test_withdrawals_are_recognised_with_what_they_name(
    text: str, gpu: str | None, deal: Deal | None, place: str | None, gpus: int | None
) -> None:
    found = detect_withdrawal(text)
    assert found is not None
    assert (found.gpu, found.deal, found.place, found.gpus) == (gpu, deal, place, gpus)


@pytest.mark.parametrize(
    "text",
    [
        "出 H100",
        "听说老王的H100已出了",
        "H100已出了吗？",
        "H100还没出",
        "not sold yet",
        "NVIDIA sold 1M H100s last quarter",
        "价格已定",
        "already booked a meeting",
        "大家早上好",
    ],
)
def test_offers_gossip_questions_and_news_are_not_withdrawals(text: str) -> None:
    assert detect_withdrawal(text) is None


# -- an older ledger -----------------------------------------------------------------------------


def test_a_ledger_from_before_gets_its_posts_and_cancellations(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    chat.post("alice", SELL)
    clock.advance(days=3)
    chat.post("alice", SELL)  # a repost: the book refreshes its offer
    chat.post("bob", BUY)
    clock.advance(hours=1)
    chat.post("bob", "/cancel 2")
    before = rows(ledger, clock, W45, W45.shifted(1))
    with ledger.transaction():  # as if the ledger predated issue 11
        for table in ("adverts", "withdrawals"):
            ledger.conn.execute(f"DELETE FROM {table}")
        _backfill_listing_facts(ledger.db)  # m004_listings
        code_listing_facts(ledger.db)  # m_listing_codes
    assert rows(ledger, clock, W45, W45.shifted(1)) == before
    assert ledger.conn.execute("SELECT count(*) FROM adverts").fetchone()[0] == 3


def test_the_desk_still_reads_offers_only_once(desk: Desk, chat: Chat, ledger: Ledger) -> None:
    message = chat.message("alice", SELL)
    desk.handle(message)
    desk.handle(message)  # re-delivered: a no-op, no second advertisement
    assert ledger.conn.execute("SELECT count(*) FROM adverts").fetchone()[0] == 1


def test_now_is_not_needed_to_read_a_past_week(
    chat: Chat, ledger: Ledger, clock: FakeClock
) -> None:
    chat.post("alice", SELL)
    then = h100(ledger, clock)
    clock.now = datetime(2027, 11, 2, tzinfo=UTC)  # a year later
    assert h100(ledger, clock) == then
