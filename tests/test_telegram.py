"""The Telegram adapter end to end: real python-telegram-bot against the fake Bot API server.

Every test runs PTB's HTTP stack against `tests.fakes.telegram_api.FakeTelegram` on 127.0.0.1;
nothing leaves the machine. Most tests use a stub desk that records what it is handed and
answers as told; the last ones wire the real `Desk` on a real ledger file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from telegram.error import InvalidToken

from gpudesk.bot.telegram import DeskPort, TelegramAdapter, split_text, utf16_len
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.message import ChatMessage, Reply
from gpudesk.market.normalise import Valuation
from gpudesk.storage.ledger import Ledger
from tests.fakes.telegram_api import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    EntityParseError,
    FakeTelegram,
    parse_html,
)

# A 429 must be waited out, never surface as PTB's deprecation warning about int retry_after.
pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")

LOG = logging.getLogger("tests.telegram")
OFFER = "出 H100 8卡 10台 北京 月租7.5w/台"
SELL = OFFER
BUY = "收 H100 8卡 5台 北京 月租8w/台以内"  # bids above the ask: the real desk matches them

# Fast pacing for tests that are not about pacing.
FAST = {
    "group_messages_per_minute": 60_000,
    "group_burst": 100,
    "private_messages_per_second": 1_000,
    "messages_per_second": 1_000,
    "drain_timeout": 3.0,
}


class StubDesk:
    """A desk that records every message and answers with `answer(message)`.

    Like the real desk, a re-delivered (platform, chat, message id) that is not an edit is
    recorded in `deliveries` but answered with nothing.
    """

    def __init__(self, answer: Callable[[ChatMessage], list[Reply]] | None = None) -> None:
        self.answer = answer or (lambda message: [])
        self.messages: list[ChatMessage] = []
        self.deliveries: Counter[tuple[str, str, str]] = Counter()
        self.admin_commands = {"/pause", "/resume", "暂停"}

    def handle(self, message: ChatMessage) -> list[Reply]:
        key = (message.platform, message.chat_id, message.message_id)
        self.deliveries[key] += 1
        if self.deliveries[key] > 1 and not message.edited:
            return []
        self.messages.append(message)
        return self.answer(message)

    def needs_admin(self, text: str) -> bool:
        words = text.split()
        return bool(words) and words[0] in self.admin_commands

    def command_menu(self, language: str) -> list[tuple[str, str]]:
        if language == "zh":
            return [("price", "某型号行情"), ("pause", "暂停撮合回复")]
        return [("price", "market pulse of a GPU"), ("pause", "pause match replies")]


def echo(message: ChatMessage) -> list[Reply]:
    """Answer every message with "<sender name>: <text>", threaded under it."""
    return [
        Reply(
            platform="telegram",
            chat_id=message.chat_id,
            text=f"{message.sender_name}: {message.text}",
            reply_to_id=message.message_id,
            private=not message.is_group,
        )
    ]


def answering(text: str, **extra: Any) -> Callable[[ChatMessage], list[Reply]]:
    def answer(message: ChatMessage) -> list[Reply]:
        reply = Reply("telegram", message.chat_id, text, reply_to_id=message.message_id)
        return [replace(reply, **extra)]

    return answer


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@contextlib.asynccontextmanager
async def running(
    api: FakeTelegram, desk: DeskPort, **options: Any
) -> AsyncIterator[TelegramAdapter]:
    adapter = TelegramAdapter(
        api.token, desk, logger=LOG, base_url=api.base_url, **{**FAST, **options}
    )
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.stop()


# --- the fake itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("<b>H100</b> &lt;8&gt; &amp; more", "H100 <8> & more"),
        ("a & b, &nbsp; &#65;&#x42;", "a & b, &nbsp; AB"),  # a lone & stays, as on Telegram
        ('<a href="https://t.me/x/1">post</a> <span class="tg-spoiler">s</span>', "post s"),
        ("<pre><code class='language-py'>x</code></pre>", "x"),
    ],
)
def test_fake_parses_html_like_telegram(text: str, plain: str) -> None:
    assert parse_html(text) == plain


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("H100 <8 cards>", 'Unsupported start tag "8"'),
        ("<script>x</script>", 'Unsupported start tag "script"'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x</b>", "Unexpected end tag"),
        ("<b><i>x</b></i>", 'expected "</i>", found "</b>"'),
        ("a <", "Unexpected end of name token"),
        ("<span>x</span>", 'must have class "tg-spoiler"'),
    ],
)
def test_fake_rejects_malformed_html(text: str, error: str) -> None:
    with pytest.raises(EntityParseError, match=error):
        parse_html(text)


async def test_fake_fails_the_test_on_an_unknown_method() -> None:
    fake = FakeTelegram()
    with pytest.raises(AssertionError, match="unknown Bot API method 'setChatTitle'"):
        async with fake, aiohttp.ClientSession() as session:
            url = f"{fake.base_url}{fake.token}/setChatTitle"
            async with session.post(url, data={"chat_id": "1"}) as response:
                assert response.status == 404


async def test_fake_long_poll_wakes_on_inject_and_on_stop() -> None:
    fake = FakeTelegram()
    async with fake, aiohttp.ClientSession() as session:
        group, user = fake.group("G"), fake.user("U")
        url = f"{fake.base_url}{fake.token}/getUpdates"

        async def poll(offset: int = 0) -> dict[str, Any]:
            async with session.post(url, data={"timeout": "30", "offset": str(offset)}) as r:
                return await r.json()  # type: ignore[no-any-return]

        started = time.monotonic()
        waiting = asyncio.create_task(poll())
        await asyncio.sleep(0.1)
        fake.inject_message(group, user, "hello")
        [update] = (await waiting)["result"]
        assert update["message"]["text"] == "hello"

        waiting = asyncio.create_task(poll(update["update_id"] + 1))  # confirms it
        await asyncio.sleep(0.1)
        assert fake.pending_update_ids == []
        await fake.stop()
        assert (await waiting)["result"] == []
        assert time.monotonic() - started < 2


# --- reading -----------------------------------------------------------------------------


async def test_an_offer_reaches_the_desk_and_the_reply_comes_back_threaded(
    api: FakeTelegram,
) -> None:
    group = api.group("GPU 交易群", username="gpu_deals")
    alice = api.user("Alice", "Wang", username="alice")
    desk = StubDesk(answering("Matched: bob sells H100"))
    async with running(api, desk):
        message_id = api.inject_message(group, alice, OFFER)
        [sent] = await api.wait_for_sent(1)

    [message] = desk.messages
    assert message == ChatMessage(
        platform="telegram",
        chat_id=str(group.id),
        sender_id=str(alice.id),
        sender_name="Alice Wang",
        text=OFFER,
        sent_at=message.sent_at,
        message_id=str(message_id),
        chat_title="GPU 交易群",
        is_group=True,
        link=f"https://t.me/gpu_deals/{message_id}",
    )
    assert message.sent_at.utcoffset() == timedelta(0)
    assert abs(message.sent_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert sent.chat_id == group.id and sent.plain == "Matched: bob sells H100"
    assert sent.reply_to == message_id
    assert sent.params["reply_parameters"]["message_id"] == message_id
    assert not sent.used_legacy_reply
    assert sent.parse_mode == "HTML"


async def test_updates_sent_while_the_bot_was_down_are_read_on_start(api: FakeTelegram) -> None:
    group, bob = api.group("G"), api.user("Bob")
    ids = [api.inject_message(group, bob, f"{OFFER} #{n}") for n in range(5)]
    desk = StubDesk()
    async with running(api, desk):
        await eventually(lambda: len(desk.messages) == 5)
    assert [m.message_id for m in desk.messages] == [str(i) for i in ids]
    [delete] = api.calls_to("deleteWebhook")
    assert delete.params.get("drop_pending_updates") in (None, "false", "False")
    assert api.pending_update_ids == []


async def test_an_edited_message_reaches_the_desk_as_edited(api: FakeTelegram) -> None:
    group, alice = api.group("G"), api.user("Alice")
    desk = StubDesk()
    async with running(api, desk):
        message_id = api.inject_message(group, alice, "出 H100 8卡 月租7.5w")
        api.inject_edit(group, message_id, "出 H100 8卡 月租7w")
        await eventually(lambda: len(desk.messages) == 2)
    first, edit = desk.messages
    assert (first.edited, edit.edited) == (False, True)
    assert edit.message_id == first.message_id == str(message_id)
    assert edit.text == "出 H100 8卡 月租7w"


async def test_a_forward_is_attributed_to_whoever_posted_it_first(api: FakeTelegram) -> None:
    group, alice, carol = api.group("G"), api.user("Alice"), api.user("Carol", "Li")
    channel = api.group("H100 Channel", username="h100_channel", type="channel")
    desk = StubDesk()
    async with running(api, desk):
        api.inject_forward(group, alice, OFFER, origin=carol)
        api.inject_forward(group, alice, OFFER, origin="Hidden Harry")
        api.inject_forward(group, alice, OFFER, origin=channel)
        await eventually(lambda: len(desk.messages) == 3)
    from_user, from_hidden, from_channel = desk.messages
    assert (from_user.origin_sender_id, from_user.origin_sender_name) == (str(carol.id), "Carol Li")
    assert from_user.poster_id == str(carol.id) and from_user.sender_id == str(alice.id)
    # A hidden account has no id to contact: the offer stays with whoever forwarded it.
    assert (from_hidden.origin_sender_id, from_hidden.poster_id) == (None, str(alice.id))
    assert from_channel.origin_sender_id == str(channel.id)
    assert from_channel.origin_sender_name == "H100 Channel"


async def test_admin_commands_check_the_sender_with_get_chat_member(api: FakeTelegram) -> None:
    group = api.group("G")
    member, admin, owner = api.user("Member"), api.user("Admin"), api.user("Owner")
    api.set_member_status(group, admin, "administrator")
    api.set_member_status(group, owner, "creator")
    desk = StubDesk()
    async with running(api, desk):
        api.inject_as_chat(group, "/pause")  # an anonymous admin, posting as the group
        api.inject_message(group, member, "/pause")
        api.inject_message(group, admin, "/pause")
        api.inject_message(group, owner, "暂停")
        api.inject_message(group, member, "/price H100")  # not an admin command: no lookup
        await eventually(lambda: len(desk.messages) == 5)

    anonymous, by_member, by_admin, by_owner, price = desk.messages
    assert anonymous.sender_is_admin and anonymous.sender_id == str(group.id)
    assert anonymous.sender_name == "G"
    assert not by_member.sender_is_admin
    assert by_admin.sender_is_admin and by_owner.sender_is_admin
    assert not price.sender_is_admin
    asked = [int(call.params["user_id"]) for call in api.calls_to("getChatMember")]
    assert asked == [member.id, admin.id, owner.id]


async def test_privacy_mode_is_warned_about_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeTelegram(can_read_all_group_messages=False) as api:
        with caplog.at_level(logging.WARNING, logger=LOG.name):
            async with running(api, StubDesk()):
                pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("privacy mode is on" in w and "/setprivacy" in w for w in warnings), warnings


async def test_no_privacy_warning_when_the_bot_reads_everything(
    api: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        async with running(api, StubDesk()):
            pass
    assert not any("privacy" in r.getMessage() for r in caplog.records)


async def test_command_menus_are_set_in_english_and_chinese(api: FakeTelegram) -> None:
    async with running(api, StubDesk()):
        pass
    assert api.commands == {
        "": [("price", "market pulse of a GPU"), ("pause", "pause match replies")],
        "zh": [("price", "某型号行情"), ("pause", "暂停撮合回复")],
    }


async def test_chats_are_filtered_and_commands_for_other_bots_skipped(api: FakeTelegram) -> None:
    served, other = api.group("Served"), api.group("Other")
    dave = api.user("Dave")
    desk = StubDesk(echo)
    async with running(api, desk, allowed_chat_ids=[served.id]):
        api.inject_message(other, dave, OFFER)  # not a chat we serve
        api.inject_message(served, dave, "/help@someone_elses_bot")  # not ours to answer
        api.inject_message(served, dave, "/price@gpudesk_test_bot H100")
        api.inject_private(dave, "/mine")
        await eventually(lambda: len(desk.messages) == 2)
        await api.wait_for_sent(2)
        await api.wait_until_confirmed()

    command, private = desk.messages
    assert command.chat_id == str(served.id) and command.text == "/price H100"
    assert private.chat_id == str(dave.id) and not private.is_group
    assert private.chat_title is None and private.link is None
    assert {sent.chat_id for sent in api.sent} == {served.id, dave.id}


# --- restarts and failures ---------------------------------------------------------------


async def test_a_restart_mid_stream_neither_loses_nor_repeats_updates(api: FakeTelegram) -> None:
    group, eve = api.group("G"), api.user("Eve")
    ids = [api.inject_message(group, eve, f"{OFFER} #{n}") for n in range(40)]
    first: TelegramAdapter | None = None

    def stop_after_15(message: ChatMessage) -> list[Reply]:
        if len(desk.messages) == 15:
            assert first is not None
            first.request_stop()  # mid-batch: the other 25 are in the same getUpdates answer
        return []

    desk = StubDesk(stop_after_15)
    first = TelegramAdapter(api.token, desk, logger=LOG, base_url=api.base_url, **FAST)
    await first.run_until_stopped()
    assert len(desk.messages) == 15
    assert len(api.pending_update_ids) == 25  # confirmed exactly what was handled

    more = [api.inject_message(group, eve, f"{OFFER} #{n}") for n in range(40, 50)]
    async with running(api, desk):
        await eventually(lambda: len(desk.messages) == 50)
        await api.wait_until_confirmed()
    assert [m.message_id for m in desk.messages] == [str(i) for i in ids + more]
    assert set(desk.deliveries.values()) == {1}


async def test_a_failing_desk_call_is_retried_before_the_offset_moves(
    api: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    group, frank = api.group("G"), api.user("Frank")
    failures = iter([True])

    class FlakyDesk(StubDesk):
        def handle(self, message: ChatMessage) -> list[Reply]:
            if message.text == "second" and next(failures, False):
                raise RuntimeError("database is locked")  # nothing committed
            return super().handle(message)

    desk = FlakyDesk()
    async with running(api, desk):
        for text in ("first", "second", "third"):
            api.inject_message(group, frank, text)
        await eventually(lambda: len(desk.messages) == 3)
    assert [m.text for m in desk.messages] == ["first", "second", "third"]
    assert "database is locked" in caplog.text


async def test_stop_is_prompt_while_a_long_poll_waits(api: FakeTelegram) -> None:
    adapter = TelegramAdapter(
        api.token, StubDesk(), logger=LOG, base_url=api.base_url, poll_timeout=30, **FAST
    )
    await adapter.start()
    await api.wait_for_poll()
    started = time.monotonic()
    await adapter.stop()
    assert time.monotonic() - started < 2


async def test_a_refused_token_ends_run_until_stopped(api: FakeTelegram) -> None:
    group, pat = api.group("G"), api.user("Pat")
    desk = StubDesk()
    adapter = TelegramAdapter(api.token, desk, logger=LOG, base_url=api.base_url, **FAST)
    runner = asyncio.create_task(adapter.run_until_stopped())
    await api.wait_for_poll()
    api.token = "424242:revoked"  # the fake now answers 401, as Telegram does for a revoked one
    api.inject_message(group, pat, OFFER)  # wakes the pending poll; the next one is refused
    with pytest.raises(InvalidToken):
        await asyncio.wait_for(runner, timeout=5)
    assert [m.text for m in desk.messages] == [OFFER]


# --- sending -----------------------------------------------------------------------------


async def test_a_429_is_waited_out_and_the_reply_still_arrives(api: FakeTelegram) -> None:
    group, gina = api.group("G"), api.user("Gina")
    api.fail_next("sendMessage", retry_after=1)
    async with running(api, StubDesk(answering("your match"))):
        api.inject_message(group, gina, OFFER)
        [sent] = await api.wait_for_sent(1, timeout=10)
    [limited] = [call for call in api.calls_to("sendMessage") if call.status == 429]
    assert sent.plain == "your match"
    assert sent.at - limited.at >= 1.0


async def test_html_in_names_and_text_never_breaks_a_reply(api: FakeTelegram) -> None:
    group = api.group("<b>Deals & Co</b>")
    hacker = api.user("<i>Bob", "& Co</i>")
    texts = ["H100 <8 cards> & more", "a < b > c &amp; d &lt;", "</b><script>x</script>"]
    desk = StubDesk(echo)
    async with running(api, desk):
        for text in texts:
            api.inject_message(group, hacker, text)
        sent = await api.wait_for_sent(3)
    assert [s.plain for s in sent] == [f"<i>Bob & Co</i>: {text}" for text in texts]
    assert all(call.status == 200 for call in api.calls_to("sendMessage"))
    assert desk.messages[0].chat_title == "<b>Deals & Co</b>"


async def test_a_long_reply_is_split_under_telegrams_limit(api: FakeTelegram) -> None:
    group, ivan = api.group("G"), api.user("Ivan")
    lines = [f"{n:04d} 🚀 H100 SXM5 8卡 北京 月租7.5w/台 <best> & cheapest" for n in range(300)]
    long_text = "\n".join(lines)
    pieces = math.ceil(utf16_len(long_text) / MESSAGE_LIMIT)
    assert pieces == 4
    async with running(api, StubDesk(answering(long_text))):
        message_id = api.inject_message(group, ivan, "/book H100")
        await api.wait_for_calls("sendMessage", count=pieces)
        await asyncio.sleep(0.1)
    sent = api.sent
    assert len(sent) == pieces  # no piece wasted: each is filled up to the last line break
    assert all(utf16_len(s.plain) <= MESSAGE_LIMIT for s in sent)
    assert all(s.reply_to == message_id for s in sent)
    assert "\n".join(s.plain for s in sent) == long_text  # cut at line breaks, nothing lost


def test_split_text_counts_utf16_and_prefers_line_breaks() -> None:
    assert split_text("short") == ["short"]
    assert split_text("aaaa\nbbbb\ncc", limit=9) == ["aaaa\nbbbb", "cc"]
    assert split_text("🚀" * 5, limit=4) == ["🚀🚀", "🚀🚀", "🚀"]
    assert split_text("x" * 10, limit=4) == ["xxxx", "xxxx", "xx"]
    assert split_text("  \n  ") == []


async def test_image_replies_go_as_photos_with_a_caption_that_fits(api: FakeTelegram) -> None:
    group, judy = api.group("G"), api.user("Judy")
    png = b"\x89PNG\r\n\x1a\nchart"
    long_caption = "weekly digest <H100> & co\n" * 60
    assert utf16_len(long_caption) > CAPTION_LIMIT

    def digest(message: ChatMessage) -> list[Reply]:
        text = "H100 rent <up> 3% & sale flat" if message.text == "/digest" else long_caption
        return [
            Reply("telegram", message.chat_id, text, message.message_id, image=png, kind="digest")
        ]

    async with running(api, StubDesk(digest)):
        first = api.inject_message(group, judy, "/digest")
        second = api.inject_message(group, judy, "/digest long")
        sent = await api.wait_for_sent(3)
    short, photo, text = sent
    assert short.method == "sendPhoto" and short.photo == png
    assert short.plain == "H100 rent <up> 3% & sale flat" and short.reply_to == first
    assert photo.method == "sendPhoto" and photo.plain == "" and photo.reply_to == second
    assert text.method == "sendMessage" and text.plain == long_caption
    assert text.reply_to == second


async def test_a_reply_to_a_user_who_never_wrote_is_logged_not_fatal(
    api: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    group, kim, stranger = api.group("G"), api.user("Kim"), api.user("Stranger")

    def alert_stranger(message: ChatMessage) -> list[Reply]:
        return [
            Reply("telegram", str(stranger.id), "price alert", message.message_id, private=True),
            Reply("telegram", message.chat_id, "noted", message.message_id),
        ]

    async with running(api, StubDesk(alert_stranger)):
        api.inject_message(group, kim, OFFER)
        [sent] = await api.wait_for_sent(1)
        await api.wait_for_calls("sendMessage", count=2)
    assert sent.plain == "noted"
    assert "bot can't initiate conversation" in caplog.text


async def test_mentions_lead_the_reply_as_text_mentions(api: FakeTelegram) -> None:
    group, lee, mia = api.group("G"), api.user("Lee"), api.user("Mia <3")

    def mention(message: ChatMessage) -> list[Reply]:
        if message.sender_id != str(lee.id):
            return []
        reply = Reply("telegram", message.chat_id, "you two match", message.message_id)
        return [replace(reply, mention_ids=(str(mia.id), str(lee.id), "999"))]

    async with running(api, StubDesk(mention)):
        api.inject_message(group, mia, OFFER)
        api.inject_message(group, lee, "收 H100 8卡")
        [sent] = await api.wait_for_sent(1)
    assert sent.plain == "Mia <3 Lee you two match"
    assert f'<a href="tg://user?id={mia.id}">Mia &lt;3</a>' in sent.raw


async def test_a_burst_is_read_at_once_while_replies_are_paced(api: FakeTelegram) -> None:
    group, nina = api.group("Busy"), api.user("Nina")
    for n in range(300):
        api.inject_message(group, nina, f"{OFFER} #{n}")
    desk = StubDesk(answering("matched"))
    adapter = TelegramAdapter(
        api.token,
        desk,
        logger=LOG,
        base_url=api.base_url,
        group_messages_per_minute=20,
        group_burst=3,
        drain_timeout=0.2,
    )
    started = time.monotonic()
    await adapter.start()
    try:
        await eventually(lambda: len(desk.messages) == 300, timeout=10)
        read_in = time.monotonic() - started
        await api.wait_until_confirmed()
        await api.wait_for_sent(3)
        await asyncio.sleep(0.5)
        sent_so_far = len(api.sent)
    finally:
        await adapter.stop()
    assert read_in < 5  # all 300 read and committed; sending them takes over a quarter hour
    assert sent_so_far == 3  # the burst; the next of the group's 20 a minute is 10 s away


async def test_the_token_never_reaches_a_log_even_at_debug(
    api: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    group, olga = api.group("G"), api.user("Olga")
    api.fail_next("sendMessage", retry_after=1)
    with caplog.at_level(logging.DEBUG):
        async with running(api, StubDesk(echo)):
            api.inject_message(group, olga, "/pause")
            api.inject_message(group, olga, OFFER)
            await api.wait_for_sent(2, timeout=10)
    assert any(r.name.startswith("telegram") for r in caplog.records)  # PTB did log
    secret = api.token.split(":", 1)[1]
    for record in caplog.records:
        assert secret not in record.getMessage(), record.name
        assert secret not in (record.exc_text or ""), record.name
    assert secret not in caplog.text


# --- with the real desk ------------------------------------------------------------------


@pytest.fixture
def real_desk(tmp_path: Path) -> Any:
    with Ledger.open(tmp_path / "ledger.db", Valuation()) as ledger:
        yield Desk(ledger, DeskSettings(language="en"))


async def test_end_to_end_with_the_real_desk(api: FakeTelegram, real_desk: Desk) -> None:
    group = api.group("GPU <Traders> & Co", username="gpu_traders")
    seller, buyer, member = api.user("Seller & Sons"), api.user("Buyer"), api.user("Member")
    async with running(api, real_desk):
        api.inject_message(group, seller, SELL)
        wanted = api.inject_message(group, buyer, BUY)
        help_id = api.inject_message(group, member, "/help")
        refused = api.inject_message(group, member, "/pause")
        paused = api.inject_as_chat(group, "/pause")
        api.inject_private(member, "查价 H100")  # a command by its Chinese name, in private
        await api.wait_until_confirmed()
        await api.wait_for_sent(5, timeout=10)
        await asyncio.sleep(0.2)
    stored = real_desk.ledger.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    assert stored == 6
    by_reply = {s.reply_to: s for s in api.sent if s.chat_id == group.id}
    assert set(by_reply) == {wanted, help_id, refused, paused}
    assert "Seller & Sons in GPU <Traders> & Co" in by_reply[wanted].plain  # escaped, intact
    assert "/price" in by_reply[help_id].plain
    assert "admins" in by_reply[refused].plain
    assert "admins" not in by_reply[paused].plain  # the anonymous admin may pause
    [private] = api.sent_to(member)
    assert "H100" in private.plain
    assert all(s.parse_mode == "HTML" and not s.used_legacy_reply for s in api.sent)
    assert api.commands[""] and api.commands["zh"]


async def test_a_crash_after_the_commit_redelivers_and_the_ledger_ignores_it(
    api: FakeTelegram, real_desk: Desk
) -> None:
    group, seller, buyer = api.group("G"), api.user("Seller"), api.user("Buyer")
    crashed = False

    class CrashingDesk:
        """The real desk, but the process "dies" right after the seller's offer is committed."""

        def handle(self, message: ChatMessage) -> list[Reply]:
            nonlocal crashed
            replies = real_desk.handle(message)
            if message.text == SELL and not crashed:
                crashed = True
                raise asyncio.CancelledError  # before the offset moves past it
            return replies

        def needs_admin(self, text: str) -> bool:
            return real_desk.needs_admin(text)

        def command_menu(self, language: str) -> list[tuple[str, str]]:
            return real_desk.command_menu(language)

    seller_post = api.inject_message(group, seller, SELL)
    first = TelegramAdapter(api.token, CrashingDesk(), logger=LOG, base_url=api.base_url, **FAST)
    await first.run_until_stopped()  # reading ended with the "crash"
    assert crashed and api.pending_update_ids  # the seller's post is not confirmed

    wanted = api.inject_message(group, buyer, BUY)
    async with running(api, real_desk):
        await api.wait_until_confirmed()
        [match] = await api.wait_for_sent(1)
        await asyncio.sleep(0.2)
    assert api.delivered[min(api.delivered)] == 2  # the seller's post came twice...
    assert len(real_desk.ledger.open_offers(now=datetime.now(UTC))) == 2  # ...booked once
    assert match.reply_to == wanted and "Seller" in match.plain
    assert len(api.sent) == 1 and seller_post not in {s.reply_to for s in api.sent}
