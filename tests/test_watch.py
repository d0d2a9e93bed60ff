"""Watchlists and alerts (issue 10): reading watches, matching them, and alerting through the desk.

The first part is the pure core (`gpudesk.market.watch`); the rest drives a real desk on a real
ledger file with a clock that moves only when told, so expiry, reminders and digests are tested
without waiting.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpudesk.bot.config import load_settings
from gpudesk.bot.console import ConsoleChat
from gpudesk.handlers.commands import DeskSettings, find_command
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.message import Reply
from gpudesk.handlers.watching import Outgoing, due_alerts, error_text, mark_sent
from gpudesk.market.book import PostedOffer
from gpudesk.market.normalise import Valuation, gpu_count
from gpudesk.market.offer import Currency, Deal, Offer, PricePer, QuantityUnit, Side
from gpudesk.market.watch import (
    Delivery,
    WatchBook,
    WatchError,
    WatchPolicy,
    digest_due,
    parse_watch,
    watch_matches,
)
from gpudesk.storage.ledger import Ledger
from tests.conftest import START, Chat, FakeClock

CNY = Valuation()  # the desk counts in yuan at 7.2 to the dollar
SHANGHAI = ZoneInfo("Asia/Shanghai")

WATCH_EN = "/watch H100 rent <= 1.6 USD/GPU-hr in Beijing >= 32 GPUs"
CHEAP = "出 H100 8卡 4台 北京 月租5.5w/台"  # ¥9.42/GPU-h, 32 GPUs, Beijing
DEAR = "出 H100 8卡 4台 北京 月租8.5w/台"  # ¥14.55/GPU-h: above ¥11.52
ELSEWHERE = "出 H100 8卡 4台 上海 月租5.5w/台"
TOO_FEW = "出 H100 8卡 2台 北京 月租5.5w/台"  # 16 GPUs
HOW_MANY = "出 H100 北京 月租5.5w/台"  # no quantity
A_BUYER = "收 H100 8卡 4台 北京 月租5.5w/台"


# -- reading watches ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "side", "deal", "limit", "place", "min_gpus"),
    [
        (
            "H100 rent <= 1.6 USD/GPU-hr in Beijing >= 32 GPUs",
            Side.SELL,
            Deal.RENT,
            Decimal("11.52"),
            "Beijing",
            32,
        ),
        (
            "H100 月租 6w/台以下 北京",
            Side.SELL,
            Deal.RENT,
            Decimal(60000) / 730 / 8,
            "Beijing",
            None,
        ),
        ("sell H100 rent >= 2.2 USD/GPU-hr", Side.BUY, Deal.RENT, Decimal("15.84"), None, None),
        ("出租 H100 月租 7w/台以上", Side.BUY, Deal.RENT, Decimal(70000) / 730 / 8, None, None),
        ("4090 租 1.5以下 4台以上", Side.SELL, Deal.RENT, Decimal("1.5"), None, 32),
        ("H100 sale <= 22w/卡", Side.SELL, Deal.SALE, Decimal(220000), None, None),
        ("buy H100 <= $25k/GPU", Side.SELL, Deal.SALE, Decimal(180000), None, None),
        ("A100 租 每卡每月 8000以内", Side.SELL, Deal.RENT, Decimal(8000) / 730, None, None),
        (
            "H100 at least 4 servers rent max 2 usd/gpu-hr",
            Side.SELL,
            Deal.RENT,
            Decimal("14.4"),
            None,
            32,
        ),
        ("H100 32+ GPUs", Side.SELL, None, None, None, 32),
        ("H100", Side.SELL, None, None, None, None),
        ("盯 sell H100 rent", Side.BUY, Deal.RENT, None, None, None),
    ],
)
def test_a_watch_is_read_in_either_language_and_any_unit(
    text: str,
    side: Side,
    deal: Deal | None,
    limit: Decimal | None,
    place: str | None,
    min_gpus: int | None,
) -> None:
    watch = parse_watch(text.removeprefix("盯 "), CNY)
    assert (watch.side, watch.deal, watch.limit, watch.place, watch.min_gpus) == (
        side,
        deal,
        limit,
        place,
        min_gpus,
    )
    assert watch.currency is Currency.CNY and watch.scope is None


@pytest.mark.parametrize(
    "text",
    [
        "H100 rent <= 1.6 USD/GPU-hr",
        "H100 rent under $1.60/gpu/hr",
        "H100 rent 1.6 usd/gpu-hr max",
        "H100 rent <= 11.52 CNY/GPU-hr",
        "H100 租 11.52元/卡时以下",
        "H100 rent <= 8409.6 CNY per GPU per month",
        "H100 rent <= $1,168 per GPU per month",
        "H100 rent <= 1.168k USD/GPU/month",
        "H100 月租 67276.8元/台以下",
        "H100 月租 6.72768w/台以下",
        "H100 月租 6.72768万/台以下",
        "H100 年租 80.73216万/台以下",
    ],
)
def test_every_unit_comes_to_the_same_limit(text: str) -> None:
    """Per GPU-hour, per GPU-month, per server-month or -year, w/万/k, CNY or USD: one yardstick."""
    assert parse_watch(text, CNY).limit == Decimal("11.52")


def test_the_limit_is_kept_in_the_desks_currency() -> None:
    watch = parse_watch("H100 月租 6w/台以下", Valuation(Currency.USD, Decimal(8)))
    assert watch.currency is Currency.USD and watch.limit == Decimal(60000) / 730 / 8 / 8


@pytest.mark.parametrize(
    ("text", "delivery"),
    [
        ("H100 rent digest hourly", Delivery.HOURLY),
        ("H100 rent hourly digest", Delivery.HOURLY),
        ("H100 rent digest daily", Delivery.DAILY),
        ("H100 rent digest", Delivery.DAILY),
        ("H100 月租 6w/台以下 每小时汇总", Delivery.HOURLY),
        ("H100 月租 6w/台以下 每日汇总", Delivery.DAILY),
        ("H100 rent <= 1.6 usd/gpu-hr", Delivery.EACH),
    ],
)
def test_a_digest_is_asked_for_in_words(text: str, delivery: Delivery) -> None:
    watch = parse_watch(text, CNY)
    assert watch.delivery is delivery and watch.gpu == "H100" and watch.deal is Deal.RENT


def test_hourly_as_a_price_unit_is_not_a_digest() -> None:
    watch = parse_watch("H100 <= 1.6 usd hourly", CNY)
    assert watch.delivery is Delivery.EACH and watch.limit == Decimal("11.52")


@pytest.mark.parametrize("word", ["here", "only here", "this group", "本群", "仅本群"])
def test_here_scopes_a_watch_to_the_group_it_is_set_in(word: str) -> None:
    watch = parse_watch(f"H100 rent {word}", CNY, here=("telegram", "-100"))
    assert watch.scope == ("telegram", "-100")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("rent <= 1.6 usd/gpu-hr", "no_model"),
        ("something cheap", "no_model"),
        ("H100 or H200 rent", "two_models"),
        ("H100 <= 1.6", "no_deal"),
        ("出租 H100 月租 7w/台以下", "side_conflict"),
        ("sell H100 rent <= 2 usd/gpu-hr", "side_conflict"),
        ("H100 <= 16 GPUs", "max_count"),
        ("H100 rent max", "no_price"),
        ("H100 rent >= 1 <= 2", "two_limits"),
        ("H100 rent here", "here_private"),
        ("H100 rent " + ">= 1 GPUs " * 40, "too_long"),
    ],
)
def test_a_watch_that_cannot_be_read_says_why(text: str, reason: str) -> None:
    with pytest.raises(WatchError) as raised:
        parse_watch(text, CNY)
    assert raised.value.reason == reason


# -- matching -------------------------------------------------------------------------------------


def posted(
    *,
    side: Side = Side.SELL,
    price: Decimal | None = Decimal("1.5"),
    quantity: int | None = 32,
    location: str | None = "Beijing",
    variant: str | None = None,
    poster: str = "alice",
    chat: str = "room",
    deal: Deal = Deal.RENT,
) -> PostedOffer:
    offer = Offer(
        side=side,
        deal=deal,
        gpu="H100",
        variant=variant,
        quantity=quantity,
        quantity_unit=QuantityUnit.GPU if quantity else None,
        price=price,
        currency=Currency.USD if price is not None else None,
        price_per=PricePer.GPU_HOUR if price is not None else None,
        location=location,
    )
    return PostedOffer(
        id=1,
        offer=offer,
        poster_id=poster,
        poster_name=poster.title(),
        platform="console",
        chat_id=chat,
        chat_title="Room",
        posted_at=START,
        unit_price=CNY.unit_price(offer),
        gpus=gpu_count(offer),
        message_id="7",
    )


BOB_WATCH = replace(
    parse_watch("H100 SXM rent <= 1.6 USD/GPU-hr in Beijing >= 32 GPUs", CNY),
    owner=("console", "bob"),
)


@pytest.mark.parametrize(
    ("offer", "meets"),
    [
        (posted(), True),
        (posted(price=Decimal("1.6")), True),  # at the limit
        (posted(price=Decimal("1.61")), False),
        (posted(price=None), False),  # a limit needs a price
        (posted(location="Shanghai"), False),
        (posted(location=None), False),
        (posted(quantity=16), False),
        (posted(quantity=64), True),
        (posted(quantity=None), False),  # "at least 32" needs a number
        (posted(variant="PCIe"), False),
        (posted(variant="SXM"), True),
        (posted(side=Side.BUY), False),  # a buyer is no use to a buyer
        (posted(deal=Deal.SALE, price=None), False),
        (posted(poster="bob"), False),  # never the member's own offer
    ],
)
def test_a_watch_meets_only_what_it_asks_for(offer: PostedOffer, meets: bool) -> None:
    assert watch_matches(BOB_WATCH, offer) is meets


@pytest.mark.parametrize(
    ("area", "location", "meets"),
    [
        ("Inner Mongolia", "Ulanqab", True),  # a city in the region
        ("Inner Mongolia", "Hohhot", True),
        ("Inner Mongolia", "Inner Mongolia", True),
        ("Inner Mongolia", "Ningxia", False),
        ("Inner Mongolia", None, False),  # no place stated: not known to be there
        ("Texas", "Dallas", True),
        ("Texas", "Los Angeles", False),
        ("Ulanqab", "Inner Mongolia", False),  # somewhere in the region is not the city
    ],
)
def test_a_watch_on_a_region_meets_offers_in_its_cities(
    area: str, location: str | None, meets: bool
) -> None:
    watch = replace(parse_watch(f"H100 rent in {area}", CNY), owner=("console", "bob"))
    assert watch.place == area
    assert watch_matches(watch, posted(location=location)) is meets


def test_a_scoped_watch_meets_offers_of_its_group_only() -> None:
    scoped = replace(BOB_WATCH, scope=("console", "room"))
    assert watch_matches(scoped, posted(chat="room"))
    assert not watch_matches(scoped, posted(chat="other"))
    assert watch_matches(BOB_WATCH, posted(chat="other"))


def test_a_watch_for_buyers_takes_a_floor() -> None:
    floor = replace(parse_watch("sell H100 rent >= 2 usd/gpu-hr", CNY), owner=("console", "bob"))
    assert watch_matches(floor, posted(side=Side.BUY, price=Decimal("2.1")))
    assert not watch_matches(floor, posted(side=Side.BUY, price=Decimal("1.9")))
    assert not watch_matches(floor, posted(side=Side.SELL, price=Decimal("2.1")))


@settings(max_examples=60, deadline=None)
@given(
    limit=st.decimals("0.50", "9.99", places=2),
    ask=st.decimals("0.50", "9.99", places=2),
)
def test_a_ceiling_meets_an_ask_exactly_when_the_ask_is_not_above_it(
    limit: Decimal, ask: Decimal
) -> None:
    """The watch and the post go through the same normalisation, to the cent."""
    watch = parse_watch(f"H100 rent <= {limit} USD/GPU-hr", CNY)
    assert watch_matches(watch, posted(price=ask)) is (ask <= limit)


def test_the_book_finds_what_watch_matches_finds() -> None:
    """The in-memory index only narrows the search: it answers as `watch_matches` would."""
    texts = [
        "H100 rent <= 1.4 usd/gpu-hr",
        "H100 rent <= 1.6 usd/gpu-hr in Beijing",
        "H100 rent <= 2 usd/gpu-hr in Shanghai",
        "H100 rent in Inner Mongolia",
        "H100 rent >= 32 GPUs",
        "H100",
        "H100 sale <= 30w/卡",
        "sell H100 rent >= 1 usd/gpu-hr",
        "H200 rent",
    ]
    watches = [
        replace(parse_watch(text, CNY), id=n, owner=("console", f"m{n}"))
        for n, text in enumerate(texts, start=1)
    ]
    book: WatchBook[int] = WatchBook()
    for watch in watches:
        book.add(watch, START + timedelta(days=30), watch.id)
    offers = [
        posted(price=price, location=place, quantity=quantity, side=side)
        for price in (None, Decimal("1.3"), Decimal("1.4"), Decimal("1.5"), Decimal("3"))
        for place in (None, "Beijing", "Shanghai", "Ulanqab", "Inner Mongolia", "Ningxia")
        for quantity in (None, 8, 64)
        for side in (Side.SELL, Side.BUY)
    ]
    for offer in offers:
        expected = [w.id for w in watches if watch_matches(w, offer)]
        assert book.meeting(offer, START) == expected, offer
    assert book.meeting(posted(), START + timedelta(days=30)) == []  # lapsed
    book.discard(2)
    book.add(replace(watches[0], limit=Decimal(1)), START + timedelta(days=30), 1)  # replaced
    assert len(book) == 8 and 2 not in book
    assert book.meeting(posted(price=Decimal("1.5")), START) == [5, 6]


def test_digests_fall_due_on_the_hour_and_at_the_digest_hour() -> None:
    now = datetime(2026, 11, 2, 1, 20, tzinfo=UTC)  # 09:20 in Shanghai
    assert digest_due(Delivery.HOURLY, now, SHANGHAI, 9) == datetime(2026, 11, 2, 2, tzinfo=UTC)
    assert digest_due(Delivery.DAILY, now, SHANGHAI, 9) == datetime(2026, 11, 3, 1, tzinfo=UTC)
    assert digest_due(Delivery.DAILY, now, SHANGHAI, 18) == datetime(2026, 11, 2, 10, tzinfo=UTC)
    assert digest_due(Delivery.EACH, now, SHANGHAI, 9) == now


# -- through the desk -----------------------------------------------------------------------------


def make_desk(ledger: Ledger, clock: FakeClock, **policy: int) -> Desk:
    desk_settings = DeskSettings(
        language="en",
        commands_per_minute=1000,
        watch=WatchPolicy(**policy),
    )
    return Desk(ledger, desk_settings, clock=clock)


@pytest.fixture
def room(ledger: Ledger, clock: FakeClock) -> Chat:
    return Chat(make_desk(ledger, clock), clock)


def alerts(replies: list[Reply]) -> list[Reply]:
    return [reply for reply in replies if reply.kind == "alert"]


def due(chat: Chat, platforms: tuple[str, ...] = ("console",)) -> list[Outgoing]:
    return due_alerts(chat.desk.ledger, chat.desk.settings, chat.clock(), platforms=platforms)


def test_a_matching_offer_is_told_privately_with_where_and_who(room: Chat) -> None:
    assert "Watch #1 set" in room.post("bob", WATCH_EN)
    replies = room.send("alice", CHEAP)
    [alert] = alerts(replies)
    assert alert.private and alert.chat_id == "bob" and alert.platform == "console"
    assert alert.fallback_chat_id == "room"  # set in this group: the mention goes here
    assert "watch #1" in alert.text and "sell H100 rent" in alert.text
    assert "Alice in GPU Traders" in alert.text and "post 2 in GPU Traders" in alert.text
    assert "¥9.42/GPU-h" in alert.text


def test_a_link_to_the_post_is_given_when_the_platform_has_one(room: Chat) -> None:
    room.post("bob", WATCH_EN)
    [alert] = alerts(room.send("alice", CHEAP, link="https://t.me/gpu/2"))
    assert "https://t.me/gpu/2" in alert.text


@pytest.mark.parametrize("text", [DEAR, ELSEWHERE, TOO_FEW, HOW_MANY, A_BUYER])
def test_offers_that_miss_the_watch_tell_no_one(room: Chat, text: str) -> None:
    room.post("bob", WATCH_EN)
    assert alerts(room.send("alice", text)) == []


def test_the_members_own_offers_never_alert_them(room: Chat) -> None:
    room.post("bob", WATCH_EN)
    assert alerts(room.send("bob", CHEAP)) == []


def test_a_watch_hears_every_group_unless_scoped(ledger: Ledger, clock: FakeClock) -> None:
    desk = make_desk(ledger, clock)
    here = Chat(desk, clock, chat_id="here", chat_title="Here")
    there = Chat(desk, clock, chat_id="there", chat_title="There")
    here.post("bob", WATCH_EN)
    here.post("carol", WATCH_EN + " here")
    [alert] = alerts(there.send("alice", CHEAP))
    assert alert.chat_id == "bob" and "Alice in There" in alert.text
    told = {reply.chat_id for reply in alerts(here.send("dave", CHEAP))}
    assert told == {"bob", "carol"}


def test_an_offer_is_told_once_however_often_it_comes(room: Chat) -> None:
    room.post("bob", WATCH_EN)
    first = room.message("alice", CHEAP)
    assert alerts(room.desk.handle(first))
    assert room.desk.handle(first) == []  # delivered twice
    assert alerts(room.send("alice", CHEAP)) == []  # the poster says it again: a repost
    edited = replace(first, text=CHEAP + " 现货", edited=True)
    assert alerts(room.desk.handle(edited)) == []  # an edit is the same post


def test_the_alert_is_recorded_before_it_goes_out(room: Chat) -> None:
    room.post("bob", WATCH_EN)
    room.send("alice", CHEAP)
    rows = room.desk.ledger.conn.execute("SELECT watch, via, status FROM alerts").fetchall()
    assert rows == [(1, "direct", "sent")]


def test_no_alert_twice_across_a_restart(db_path: Path, clock: FakeClock) -> None:
    with Ledger.open(db_path) as ledger:
        chat = Chat(make_desk(ledger, clock), clock)
        chat.post("bob", WATCH_EN)
        chat.post("carol", WATCH_EN + " digest hourly")
        post = chat.message("alice", CHEAP)
        assert alerts(chat.desk.handle(post))
        clock.advance(hours=1)
        [claimed] = due(chat)  # carol's digest is claimed... and the process dies unsent
        assert claimed.reply.chat_id == "carol"
    with Ledger.open(db_path) as ledger:  # the restart
        chat = Chat(make_desk(ledger, clock), clock)
        assert chat.desk.handle(post) == []  # Telegram delivers the post again
        assert chat.desk.recover() == 0
        assert due(chat) == []  # claimed before the crash: never sent twice
        assert "hits: 1" in chat.post("bob", "/watches", message_id="after-restart")


def test_the_limit_per_member(ledger: Ledger, clock: FakeClock) -> None:
    chat = Chat(make_desk(ledger, clock, max_per_member=2), clock)
    assert "#1 set" in chat.post("bob", "/watch H100 rent")
    assert "#2 set" in chat.post("bob", "/watch H200 rent")
    assert "You already have 2 watches" in chat.post("bob", "/watch B200 rent")
    assert "#3 set" in chat.post("carol", "/watch B200 rent")  # the limit is per member
    chat.post("bob", "/unwatch 1")
    assert "#4 set" in chat.post("bob", "/watch B200 rent")


def test_watches_lists_mine_with_what_they_found(room: Chat) -> None:
    room.post("bob", WATCH_EN)
    room.post("bob", "/watch A100")
    room.post("carol", "/watch H200 rent")
    room.send("alice", CHEAP)
    listing = room.post("bob", "/watches")
    assert "Your watches (2 of 10)" in listing
    assert "#1 sellers of H100 rent · ≤ ¥11.52/GPU-h · Beijing · ≥ 32 GPUs · hits: 1" in listing
    assert "latest: sell H100 rent · 4×8-GPU servers" in listing
    assert "#2 sellers of A100 rent or sale" in listing and "H200" not in listing


def test_unwatch_stops_only_my_own(room: Chat) -> None:
    room.post("bob", WATCH_EN)
    assert "no running watch #1" in room.post("carol", "/unwatch 1")
    assert "Which watch?" in room.post("bob", "/unwatch")
    assert "Which watch?" in room.post("bob", "/unwatch ²")
    assert "Which watch?" in room.post("bob", "/unwatch " + "9" * 40)
    assert "Watch #1 stopped" in room.post("bob", "/unwatch #1")
    assert alerts(room.send("alice", CHEAP)) == []
    assert "You have no watches" in room.post("bob", "/watches")


def test_the_chinese_names_of_the_commands(ledger: Ledger, clock: FakeClock) -> None:
    desk = make_desk(ledger, clock)
    room = Chat(desk, clock)
    ledger.update_chat("console", "room", language="zh")
    assert "已设置盯盘 #1" in room.post("bob", "盯 H100 月租 6w/台以下 北京")
    assert "已设置盯盘 #2" in room.post("bob", "盯盘 H200 租")
    [alert] = alerts(room.send("alice", CHEAP))
    assert "你的盯盘 #1" in alert.text and "Alice（GPU Traders" in alert.text
    assert "你的盯盘（2/10）" in room.post("bob", "我的盯盘")
    assert "你目前没有有效信息" in room.post("bob", "我的")  # /mine keeps its own name
    assert "盯盘 #2 已取消" in room.post("bob", "取消盯盘 2")
    assert "例如" in room.post("bob", "盯 便宜的")


def test_longest_chinese_name_wins() -> None:
    assert find_command("我的盯盘")[0].name == "watches"  # type: ignore[index,union-attr]
    assert find_command("盯盘 H100")[0].name == "watch"  # type: ignore[index,union-attr]
    assert find_command("盯盘 H100")[1] == ["H100"]  # type: ignore[index]
    assert find_command("我的")[0].name == "mine"  # type: ignore[index,union-attr]


def test_a_bad_watch_is_explained(room: Chat) -> None:
    assert "Which GPU" in room.post("bob", "/watch something cheap")
    assert "To rent or to buy outright?" in room.post("bob", "/watch H100 <= 1.6")
    assert "/watch sell H100 rent >= 2.2" in room.post("bob", "/watch sell H100 rent <= 2")
    assert "only works in a group" in room.post("bob", "/watch H100 here", is_group=False)
    assert "Tell me what to watch for" in room.post("bob", "/watch")


def test_watches_expire_with_one_reminder_first(room: Chat, clock: FakeClock) -> None:
    room.post("bob", WATCH_EN)
    clock.advance(days=27, hours=23)
    assert due(room) == []
    clock.advance(hours=1, minutes=1)  # two days before the end
    [reminder] = due(room)
    assert reminder.reply.private and reminder.reply.chat_id == "bob"
    assert "ends 12-02 09:00" in reminder.reply.text and "/watch renew 1" in reminder.reply.text
    assert due(room) == []  # once
    clock.advance(days=2)
    assert due(room) == []
    assert alerts(room.send("alice", CHEAP)) == []  # lapsed
    assert "You have no watches" in room.post("bob", "/watches")


def test_a_renewed_watch_runs_on_and_is_reminded_again(room: Chat, clock: FakeClock) -> None:
    room.post("bob", WATCH_EN)
    clock.advance(days=29)
    assert len(due(room)) == 1  # the reminder
    assert "renewed until 12-31" in room.post("bob", "/watch renew 1")
    clock.advance(days=2)
    assert alerts(room.send("alice", CHEAP))
    clock.advance(days=26)
    assert [o.reply.text[:13] for o in due(room)] == ["Your watch #1"]


def test_a_digest_instead_of_one_message_each(room: Chat, clock: FakeClock) -> None:
    room.post("bob", WATCH_EN + " digest hourly")  # set at 09:00 Shanghai
    clock.advance(minutes=10)
    assert alerts(room.send("alice", CHEAP)) == []
    assert alerts(room.send("erin", CHEAP)) == []
    assert due(room) == []  # not yet 10:00
    clock.advance(minutes=50)
    [digest] = due(room)
    assert digest.reply.private and digest.reply.chat_id == "bob"
    assert "Watch digest since 11-02 09:10 (2 new)" in digest.reply.text
    assert "Alice in GPU Traders" in digest.reply.text and "Erin" in digest.reply.text
    mark_sent(room.desk.ledger, digest, clock())
    assert due(room) == []
    statuses = room.desk.ledger.conn.execute("SELECT DISTINCT status FROM alerts").fetchall()
    assert statuses == [("sent",)]


def test_a_daily_digest_comes_at_the_digest_hour(ledger: Ledger, clock: FakeClock) -> None:
    chat = Chat(make_desk(ledger, clock, digest_hour=18), clock)
    chat.post("bob", "/watch H100 rent digest daily")
    chat.send("alice", CHEAP)
    clock.advance(hours=8, minutes=59)  # 17:59 in Shanghai
    assert due(chat) == []
    clock.advance(minutes=1)
    [digest] = due(chat)
    assert "(1 new)" in digest.reply.text


def test_a_digest_leaves_out_offers_closed_meanwhile(room: Chat, clock: FakeClock) -> None:
    room.post("bob", WATCH_EN + " digest hourly")
    room.send("alice", CHEAP)
    room.send("erin", CHEAP)
    assert "withdrawn" in room.post("erin", "/cancel 2")
    clock.advance(hours=1)
    [digest] = due(room)
    assert "Alice" in digest.reply.text and "Erin" not in digest.reply.text
    assert digest.alert_ids == (1,)


def test_a_busy_market_does_not_flood_a_member(ledger: Ledger, clock: FakeClock) -> None:
    chat = Chat(make_desk(ledger, clock, alerts_per_hour=2), clock)
    chat.post("bob", WATCH_EN)
    told = []
    for seller in ("s1", "s2", "s3", "s4", "s5"):
        clock.advance(minutes=5)
        told += alerts(chat.send(seller, CHEAP))
    assert len(told) == 2
    assert due(chat) == []
    clock.advance(hours=1)
    [summary] = due(chat)
    assert "…and 3 more offers for your watches since 11-02 09:15" in summary.reply.text
    assert "S3" in summary.reply.text and "S5" in summary.reply.text
    clock.advance(minutes=1)  # a new hour: one by one again
    assert alerts(chat.send("s6", CHEAP))


def test_a_long_digest_counts_what_it_does_not_list(ledger: Ledger, clock: FakeClock) -> None:
    chat = Chat(make_desk(ledger, clock, digest_lines=2), clock)
    chat.post("bob", "/watch H100 rent digest hourly")
    for seller in ("s1", "s2", "s3", "s4"):
        chat.send(seller, CHEAP)
    clock.advance(hours=1)
    [digest] = due(chat)
    assert "…and 2 more." in digest.reply.text and len(digest.alert_ids) == 4


def test_a_member_on_another_platform_hears_on_the_next_run(
    ledger: Ledger, clock: FakeClock
) -> None:
    desk = make_desk(ledger, clock)
    telegram = Chat(desk, clock, platform="telegram", chat_id="-100", chat_title="TG")
    console = Chat(desk, clock)
    telegram.post("42", WATCH_EN)
    assert alerts(console.send("alice", CHEAP)) == []  # the console cannot reach Telegram
    assert due(console, ("console",)) == []
    [alert] = due(console, ("telegram",))
    assert alert.reply.platform == "telegram" and alert.reply.chat_id == "42"
    assert alert.reply.fallback_chat_id == "-100" and "Alice in GPU Traders" in alert.reply.text


def test_history_alerts_no_one(room: Chat) -> None:
    room.post("bob", WATCH_EN)
    assert room.send("alice", CHEAP, announce=False) == []
    assert due(room) == []


def test_the_console_prints_an_alert_like_any_reply(ledger: Ledger, clock: FakeClock) -> None:
    out = io.StringIO()
    console = ConsoleChat(make_desk(ledger, clock), chat_id="room", chat_title="room", output=out)
    console.run(["bob: " + WATCH_EN, "alice: " + CHEAP], interactive=False)
    printed = out.getvalue()
    assert "Watch #1 set" in printed
    assert "Your watch #1 (sellers of H100 rent" in printed and "alice in room" in printed


def test_reminders_are_not_sent_for_a_watch_shorter_than_the_notice(
    ledger: Ledger, clock: FakeClock
) -> None:
    chat = Chat(make_desk(ledger, clock, days=1, remind_days=2), clock)
    chat.post("bob", "/watch H100 rent")
    assert due(chat) == []
    clock.advance(days=1)
    assert due(chat) == [] and "no watches" in chat.post("bob", "/watches")


def test_a_watch_in_another_currency_is_compared_at_todays_rate(db_path: Path) -> None:
    clock = FakeClock(START)
    with Ledger.open(db_path, Valuation(Currency.USD, Decimal("7.2"))) as ledger:
        chat = Chat(make_desk(ledger, clock), clock)
        chat.post("bob", "/watch H100 rent <= 1.4 USD/GPU-hr")
    with Ledger.open(db_path, Valuation(Currency.CNY, Decimal("7.2"))) as ledger:
        chat = Chat(make_desk(ledger, clock), clock, chat_id="later")
        assert alerts(chat.send("alice", CHEAP))  # ¥9.42 ≤ $1.40 = ¥10.08
        assert alerts(chat.send("erin", DEAR)) == []


def test_the_time_the_watch_is_set_is_shown_in_the_desks_zone(room: Chat) -> None:
    answer = room.post("bob", WATCH_EN)
    expected = (START + timedelta(days=30)).astimezone(SHANGHAI).strftime("%m-%d %H:%M")
    assert f"until {expected}" in answer


def test_a_watch_set_by_another_process_is_heard(db_path: Path, clock: FakeClock) -> None:
    with Ledger.open(db_path) as bot, Ledger.open(db_path) as other:
        chat = Chat(make_desk(bot, clock), clock)
        chat.post("bob", WATCH_EN)
        assert alerts(chat.send("alice", CHEAP))  # the bot's book is loaded now
        Chat(make_desk(other, clock), clock, chat_id="elsewhere").post("carol", WATCH_EN)
        told = alerts(chat.send("erin", CHEAP))
        assert {reply.chat_id for reply in told} == {"bob", "carol"}
        Chat(make_desk(other, clock), clock, chat_id="again").post("carol", "/unwatch 2")
        assert [reply.chat_id for reply in alerts(chat.send("fay", CHEAP))] == ["bob"]


def test_a_watch_rolled_back_is_not_heard(room: Chat) -> None:
    ledger = room.desk.ledger
    room.post("bob", WATCH_EN)
    watch = replace(parse_watch("H100 rent", CNY), owner=("console", "carol"))
    with pytest.raises(RuntimeError), ledger.transaction():
        ledger.add_watch(
            watch,
            name="Carol",
            chat_id="room",
            in_group=True,
            lang="en",
            stated="H100 rent",
            created_at=START,
            expires_at=START + timedelta(days=30),
            most=10,
        )
        raise RuntimeError("the message could not be handled")
    assert [reply.chat_id for reply in alerts(room.send("alice", CHEAP))] == ["bob"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "H100",
                "4090",
                "rent",
                "租",
                "月租",
                "sell",
                "出租",
                "<=",
                ">=",
                "以下",
                "以上",
                "max",
                "min",
                "1.6",
                "6w",
                "/台",
                "/GPU-hr",
                "USD",
                "32",
                "GPUs",
                "台",
                "卡",
                "+",
                "北京",
                "in",
                "Beijing",
                "here",
                "本群",
                "digest",
                "hourly",
                "每日汇总",
                "$",
                "¥",
                "?",
                "或",
            ]
        )
        | st.text(max_size=6),
        max_size=12,
    )
)
def test_any_words_give_a_watch_or_a_reason(words: list[str]) -> None:
    try:
        watch = parse_watch(" ".join(words), CNY, here=("console", "room"))
    except WatchError as error:
        assert error.reason in REASONS
    else:
        assert watch.gpu and (watch.limit is None or watch.deal is not None)


REASONS = {
    "no_model",
    "two_models",
    "no_deal",
    "no_price",
    "side_conflict",
    "max_count",
    "two_limits",
    "bad_unit",
    "here_private",
    "unreadable",
    "too_long",
}


@pytest.mark.parametrize("reason", sorted(REASONS))
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_reason_is_worded_in_both_languages(reason: str, lang: str) -> None:
    values = {"query": "x", "gpus": "H100, H200", "word": "max", "limit": "300"}
    text = error_text(WatchError(reason, **values), lang)
    assert text.strip() and "{" not in text


def test_the_watch_section_of_the_config_becomes_the_desks_policy(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[watch]\ndays = 7\nmax_per_member = 3\ndigest_hour = 20\n", encoding="utf-8")
    policy = load_settings(path).watch.policy()
    assert (policy.days, policy.max_per_member, policy.digest_hour) == (7, 3, 20)
    assert load_settings(None).watch.policy() == WatchPolicy()
