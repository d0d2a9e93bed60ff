"""The desk through its one entry point: offers booked, matched, reposted, commanded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.storage.ledger import Ledger
from tests.conftest import Chat, FakeClock

SELL = "出 H100 8卡 10台 北京 月租7.5w/台"
BUY_CHEAP = "收 H100 8卡 2台 北京 月租8w/台"  # bids above the ask: a match
BUY_LOW = "收 H100 8卡 2台 北京 月租3w/台"  # bids far below the ask: no match


def open_ids(ledger: Ledger, chat: Chat) -> list[int]:
    return [r.id for r in ledger.open_offers(now=chat.clock())]


def test_an_offer_is_stored_and_silence_when_nothing_matches(chat: Chat, ledger: Ledger) -> None:
    assert chat.post("alice", SELL) == ""
    [record] = ledger.open_offers(now=chat.clock())
    assert record.posted.offer.gpu == "H100"
    assert record.posted.poster_id == "alice"
    assert record.posted.gpus == 80


def test_a_matching_offer_from_another_member_gets_a_threaded_reply(chat: Chat) -> None:
    chat.post("alice", SELL)
    chat.clock.advance(hours=2)
    [reply] = chat.send("bob", BUY_CHEAP)
    assert reply.kind == "match"
    assert reply.reply_to_id == "2"  # threaded under bob's post
    assert "Alice" in reply.text and "GPU Traders" in reply.text
    assert "2 h ago" in reply.text


def test_places_read_in_the_groups_language(chat: Chat) -> None:
    chat.post("alice", SELL)
    [english] = chat.send("bob", BUY_CHEAP)
    assert "Beijing" in english.text
    chat.post("admin", "/lang zh", sender_is_admin=True)
    chat.post("carol", "出 H100 8卡 3台 北京 月租7w/台")
    [chinese] = chat.send("dave", "收 H100 8卡 2台 乌兰察布 月租8w/台")
    assert "北京" in chinese.text and "乌兰察布" in chinese.text and "Beijing" not in chinese.text


@pytest.mark.parametrize(
    "text",
    ["WTS 16x H100 SXM Frankfurt €1.85/GPU/hr", "出 H100 8卡 2台 香港 月租 HK$ 6万/台"],
)
def test_a_price_in_another_currency_is_booked_unpriced(
    chat: Chat, ledger: Ledger, text: str
) -> None:
    """Read as yuan, €1.85 an hour would be the cheapest H100 in the market."""
    chat.post("alice", text)
    [record] = ledger.open_offers(now=chat.clock())
    assert record.posted.offer.gpu == "H100" and record.posted.offer.price is None
    assert record.posted.unit_price is None
    assert "1.85" not in chat.post("bob", "/book H100 rent")


def test_price_incompatible_offers_do_not_match(chat: Chat) -> None:
    chat.post("alice", SELL)
    assert chat.post("bob", BUY_LOW) == ""


def test_the_same_poster_never_matches_themself(chat: Chat) -> None:
    chat.post("alice", SELL)
    assert chat.post("alice", BUY_CHEAP) == ""


def test_a_repost_refreshes_the_offer_instead_of_doubling_it(chat: Chat, ledger: Ledger) -> None:
    chat.post("alice", SELL)
    chat.clock.advance(days=10)
    chat.post("alice", SELL)
    [record] = ledger.open_offers(now=chat.clock())
    assert record.seen_count == 2
    # the lifetime runs from the repost: still open 13 days after it
    chat.clock.advance(days=13)
    assert open_ids(ledger, chat) == [record.id]


def test_a_repost_at_another_price_is_a_new_offer(chat: Chat, ledger: Ledger) -> None:
    chat.post("alice", SELL)
    chat.post("alice", SELL.replace("7.5w", "7w"))
    assert len(ledger.open_offers(now=chat.clock())) == 2


def test_offers_expire_after_the_offer_lifetime(chat: Chat, ledger: Ledger) -> None:
    chat.post("alice", SELL)
    chat.clock.advance(days=14)
    assert ledger.open_offers(now=chat.clock()) == []
    assert chat.post("bob", BUY_CHEAP) == ""  # nothing left to match


def test_a_redelivered_message_is_a_no_op(chat: Chat, ledger: Ledger) -> None:
    message = chat.message("alice", SELL)
    chat.desk.handle(message)
    assert chat.desk.handle(message) == []
    assert ledger.message_count() == 1
    assert len(ledger.open_offers(now=chat.clock())) == 1


def test_an_edited_message_updates_its_offers_in_place(chat: Chat, ledger: Ledger) -> None:
    message = chat.message("alice", SELL)
    chat.desk.handle(message)
    edited = chat.message(
        "alice", SELL.replace("H100", "H200"), message_id=message.message_id, edited=True
    )
    chat.desk.handle(edited)
    [record] = ledger.open_offers(now=chat.clock())
    assert record.posted.offer.gpu == "H200"
    assert ledger.message_count() == 1


def test_chatter_and_questions_book_nothing(chat: Chat, ledger: Ledger) -> None:
    for text in ("大家早上好", "H100现在什么价？", "anyone know a good IDC in Wuhu?"):
        assert chat.post("carol", text) == ""
    assert ledger.open_offers(now=chat.clock()) == []
    assert ledger.message_count() == 3  # every message is kept all the same


def test_history_is_booked_but_never_announced(chat: Chat) -> None:
    chat.post("alice", SELL)
    assert chat.post("bob", BUY_CHEAP, announce=False) == ""


def test_a_group_can_pause_match_replies(chat: Chat) -> None:
    assert "off" in chat.post("root", "/pause")
    chat.post("alice", SELL)
    assert chat.post("bob", BUY_CHEAP) == ""
    chat.post("root", "/resume")
    assert "Alice" in chat.post("dave", BUY_CHEAP)


# -- commands -------------------------------------------------------------------------------


def test_help_lists_every_command_in_the_group_language(chat: Chat) -> None:
    text = chat.post("alice", "/help")
    for name in ("/price", "/market", "/book", "/match", "/mine", "/cancel", "/filled", "/lang"):
        assert name in text
    chat.post("root", "/lang zh")
    assert "命令" in chat.post("alice", "帮助")


def test_price_reports_parties_reading_and_normalised_medians(chat: Chat) -> None:
    # Three sellers with lots of their own (identical lots would read as one lot reposted).
    for seller, servers in (("s1", 10), ("s2", 4), ("s3", 6)):
        chat.post(seller, SELL.replace("10台", f"{servers}台"))
    chat.post("b1", BUY_LOW)
    text = chat.post("carol", "/price H100 rent")
    assert "3 sellers · 1 buyers → everyone selling, few buying" in text
    # 75000 per 8-GPU server-month = 75000 / 8 / 730 = 12.84 per GPU-hour
    assert "median ¥12.84/GPU-h" in text
    assert "160 GPUs offered" in text


def test_price_in_chinese_via_the_alias_and_catalog_aliases(chat: Chat) -> None:
    chat.post("root", "/lang zh")
    chat.post("alice", "出 4090 48G 100张 2.1w/张 深圳")
    text = chat.post("bob", "查价 4090")
    assert "RTX 4090" in text and "卖方 1 家" in text and "¥21,000/卡" in text


@pytest.mark.parametrize(
    "text",
    [
        "价格太高了吧",
        "我的天",
        "行情不太好",
        "价格 太高了",
        "成交了吗",
        "帮助一下",
        "周报什么时候发",
    ],
)
def test_chat_that_starts_like_a_chinese_command_name_gets_no_answer(chat: Chat, text: str) -> None:
    assert chat.send("bob", text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("查价H100", "H100"),
        ("查价昇腾910B", "Ascend 910B"),
        ("盘口 4090", "RTX 4090"),
        ("撤单 99", "#99"),  # a number is plainly meant for the command: the error is said
    ],
)
def test_chinese_command_names_take_glued_or_spaced_arguments(
    chat: Chat, text: str, expected: str
) -> None:
    chat.post("root", "/lang zh")
    assert expected in chat.post("bob", text)


def test_market_is_one_line_per_active_model(chat: Chat) -> None:
    chat.post("alice", SELL)
    chat.post("bob", "收 4090 100张 2w/张")
    lines = chat.post("carol", "/market").splitlines()
    assert len(lines) == 3
    assert any(line.startswith("H100 rent: 1/0") for line in lines)
    assert any(line.startswith("RTX 4090 sale: 0/1") for line in lines)


def test_book_lists_asks_lowest_first_and_bids_highest_first(chat: Chat) -> None:
    chat.post("alice", SELL)
    chat.post("bob", SELL.replace("7.5w", "6.5w"))
    chat.post("carol", BUY_LOW)
    text = chat.post("dave", "/book H100")
    asks = text.split("Asks")[1].split("Bids")[0]
    assert asks.index("Bob") < asks.index("Alice")
    assert "Carol" in text.split("Bids")[1]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/price", "Which GPU?"),
        ("/price Z9000", "I don't know the GPU “Z9000”"),
        ("/cancel", "Which offer?"),
        ("/cancel abc", "Which offer?"),
        ("/cancel 999", "There is no open offer #999"),
        ("/frobnicate", "Unknown command /frobnicate"),
    ],
)
def test_bad_commands_get_a_short_answer_that_says_what_works(
    chat: Chat, command: str, expected: str
) -> None:
    assert expected in chat.post("alice", command)


def test_mine_lists_my_open_offers_in_the_group_time_zone(chat: Chat) -> None:
    chat.post("alice", SELL)
    text = chat.post("alice", "/mine")
    assert "#1" in text and "H100" in text
    assert "11-02 09:00" in text  # 01:00 UTC shown in Asia/Shanghai
    assert "no open offers" in chat.post("bob", "/mine")


def test_match_finds_counterparties_for_my_offers(chat: Chat) -> None:
    chat.post("alice", SELL)
    chat.post("bob", BUY_CHEAP)
    assert "Bob" in chat.post("alice", "/match")
    assert "No counterparties" in chat.post("carol", "/match")


def test_only_the_poster_or_a_bot_admin_can_cancel(chat: Chat, ledger: Ledger) -> None:
    chat.post("alice", SELL)
    chat.post("alice", "收 A100 10张")
    assert "not yours" in chat.post("bob", "/cancel 1")
    assert "withdrawn" in chat.post("alice", "/cancel 1")
    assert "marked as done" in chat.post("root", "/filled 2")  # root is a bot admin
    assert ledger.open_offers(now=chat.clock()) == []


def test_a_cancelled_offer_no_longer_matches(chat: Chat) -> None:
    chat.post("alice", SELL)
    chat.post("alice", "/cancel 1")
    assert chat.post("bob", BUY_CHEAP) == ""


def test_admin_commands_need_a_group_admin(chat: Chat) -> None:
    assert "Only group admins" in chat.post("bob", "/lang zh")
    assert "中文" in chat.post("bob", "/lang zh", sender_is_admin=True)


def test_commands_are_rate_limited_per_member(desk: Desk, clock: FakeClock) -> None:
    chat = Chat(desk, clock)
    answers = [chat.post("spammer", "/market") for _ in range(8)]
    assert "Too many commands" in answers[5]
    assert answers[6:] == ["", ""]
    assert chat.post("someone_else", "/market")  # others are still answered
    clock.advance(minutes=1)
    assert "Too many" not in chat.post("spammer", "/market")


def test_scope_group_counts_only_this_groups_offers(desk: Desk, clock: FakeClock) -> None:
    here, there = Chat(desk, clock, chat_id="here"), Chat(desk, clock, chat_id="there")
    there.post("alice", SELL)
    here.post("bob", SELL.replace("10台", "3台"))
    assert "2 sellers" in here.post("carol", "/price H100 rent")
    here.post("root", "/scope group")
    assert "1 sellers" in here.post("carol", "/price H100 rent")


def test_readings_follow_configured_thresholds(ledger: Ledger, clock: FakeClock) -> None:
    from fractions import Fraction

    from gpudesk.market.pulse import ReadingThresholds

    strict = DeskSettings(language="en", thresholds=ReadingThresholds(Fraction(5), Fraction(4)))
    chat = Chat(Desk(ledger, strict, clock=clock), clock)
    for seller, servers in (("s1", 10), ("s2", 4), ("s3", 6)):
        chat.post(seller, SELL.replace("10台", f"{servers}台"))
    chat.post("b1", BUY_LOW)
    assert "→ balanced" in chat.post("carol", "/price H100 rent")  # 3:1 is under 4:1


def test_week_on_week_move_of_the_median_ask(chat: Chat) -> None:
    chat.post("s1", SELL)  # ¥12.84/GPU-h, standing for 14 days
    chat.clock.advance(days=7)
    chat.post("s2", SELL.replace("7.5w", "6w"))  # ¥10.27/GPU-h
    # this week both stand: the median of 12.84 and 10.27 is 11.56, 10% under last week's
    assert "Median ask -10% week on week" in chat.post("carol", "/price H100 rent")


def test_recover_reads_what_a_crash_left_in_the_inbox(
    ledger: Ledger, settings: DeskSettings, clock: FakeClock
) -> None:
    chat = Chat(Desk(ledger, settings, clock=clock), clock)
    # Simulate a crash after the message was stored but before it was read.
    ledger.store_message(chat.message("alice", SELL), received_at=clock())
    assert ledger.open_offers(now=clock()) == []
    desk = Desk(ledger, settings, clock=clock)
    assert desk.recover() == 1
    assert len(ledger.open_offers(now=clock())) == 1
    assert desk.recover() == 0


def test_lifetime_is_configurable(ledger: Ledger, clock: FakeClock) -> None:
    chat = Chat(Desk(ledger, DeskSettings(offer_days=2), clock=clock), clock)
    chat.post("alice", SELL)
    clock.advance(days=2, seconds=1)
    assert ledger.open_offers(now=clock()) == []
    assert timedelta(days=2) == DeskSettings(offer_days=2).offer_lifetime
