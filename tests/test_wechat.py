"""End-to-end tests of the WeChat adapter through the real python-wechaty SDK.

Each test runs the fake puppet service (`tests/fakes/wechat_puppet.py`, a real gRPC server on
127.0.0.1) and a `WechatAdapter` connected to it through wechaty 0.10.7 and
wechaty-puppet-service. Most tests use a stub desk that records what it is handed; the last
ones use the real `Desk` on a real ledger file. The fake fails the test (via `unexpected`) on
any RPC it was not written to serve.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from pyee import asyncio as pyee_asyncio

from gpudesk.bot.wechat import AT_SEPARATOR, DeskPort, WechatAdapter
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.message import ChatMessage, Reply
from gpudesk.market.normalise import Valuation
from gpudesk.storage.ledger import Ledger
from tests.fakes.wechat_puppet import FakePuppetService

ROOM = "20001@chatroom"
OTHER_ROOM = "20002@chatroom"
ALICE = "wxid_alice"
BOB = "wxid_bob"

Answer = Callable[[ChatMessage], list[Reply]]
Connect = Callable[..., Awaitable[WechatAdapter]]  # connect(desk, **adapter_options)


def echo_answer(message: ChatMessage) -> list[Reply]:
    """Reply to everything in its chat, mentioning the poster."""
    return [
        Reply(
            platform="wechat",
            chat_id=message.chat_id,
            text=f"ok: {message.text}",
            mention_ids=(message.sender_id,),
        )
    ]


class StubDesk:
    """Records every message; dedupes on (platform, chat, message id) as the ledger does."""

    def __init__(self, answer: Answer = echo_answer) -> None:
        self.answer = answer
        self.messages: list[ChatMessage] = []
        self._seen: set[tuple[str, str, str]] = set()

    def handle(self, message: ChatMessage) -> list[Reply]:
        self.messages.append(message)
        key = (message.platform, message.chat_id, message.message_id)
        if key in self._seen:
            return []
        self._seen.add(key)
        return self.answer(message)

    def needs_admin(self, text: str) -> bool:
        return text.startswith("/cancel")

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.messages]


@pytest.fixture
async def fake() -> AsyncIterator[FakePuppetService]:
    service = FakePuppetService()
    service.add_contact(ALICE, "Alice")
    service.add_contact(BOB, "老王")
    service.add_room(ROOM, "GPU 现货群", [ALICE, BOB], owner_id=BOB)
    service.add_room(OTHER_ROOM, "算力租赁", [ALICE, BOB])
    await service.start()
    yield service
    await service.stop()
    assert service.unexpected == [], (
        f"the bot made calls the fake did not expect: {service.unexpected}"
    )


@pytest.fixture
async def connect(
    fake: FakePuppetService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Connect]:
    """`await connect(desk, **options)`: a started adapter, logged in; stopped at teardown."""
    monkeypatch.setenv("CACHE_DIR", str(tmp_path))  # restored after the test
    adapters: list[WechatAdapter] = []

    async def make(desk: DeskPort, *, wait: bool = True, **options: Any) -> WechatAdapter:
        settings: dict[str, Any] = {
            "endpoint": fake.endpoint,
            "token": "local-test-token",
            "min_seconds_between_messages": 0,
            "cache_dir": tmp_path / "wechaty",
            "reconnect_initial_seconds": 0.05,
            "reconnect_max_seconds": 0.4,
            "rpc_timeout_seconds": 2.0,
            "liveness_seconds": None,
        }
        settings.update(options)
        adapter = WechatAdapter(desk=desk, **settings)
        adapters.append(adapter)
        await adapter.start()
        if wait:
            await adapter.wait_ready(timeout=5)
        return adapter

    yield make
    for adapter in adapters:
        await adapter.stop()


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_an_offer_posted_in_a_room_reaches_the_desk_translated(
    fake: FakePuppetService, connect: Connect
) -> None:
    desk = StubDesk(answer=lambda m: [])
    await connect(desk)

    fake.post(
        ROOM, ALICE, "出 H100 SXM 8卡 2.1/卡时", message_id="m-100", timestamp=1_700_000_000_000
    )
    await eventually(lambda: len(desk.messages) == 1)

    assert desk.messages[0] == ChatMessage(
        platform="wechat",
        chat_id=ROOM,
        chat_title="GPU 现货群",
        sender_id=ALICE,
        sender_name="Alice",
        text="出 H100 SXM 8卡 2.1/卡时",
        sent_at=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        message_id="m-100",
        is_group=True,
        sender_is_admin=False,
    )


async def test_a_reply_is_sent_in_that_room_mentioning_the_poster(
    fake: FakePuppetService, connect: Connect
) -> None:
    desk = StubDesk()
    await connect(desk)

    fake.post(ROOM, BOB, "收 A100 80G 4卡")
    await eventually(lambda: len(fake.texts()) == 1)
    # The reply comes back as an event (WeChat echoes our own messages): let it be handled.
    await eventually(lambda: fake.calls.count("MessagePayload") == 2)
    await asyncio.sleep(0.05)

    [sent] = fake.texts()
    assert sent.conversation_id == ROOM
    assert sent.text == "@老王 ok: 收 A100 80G 4卡"
    assert sent.mention_ids == (BOB,)
    assert desk.texts == ["收 A100 80G 4卡"]  # the echo of our own reply is not the desk's


async def test_commands_are_answered_as_plain_text_and_when_the_bot_is_mentioned(
    fake: FakePuppetService, connect: Connect
) -> None:
    fake.rooms[OTHER_ROOM].aliases[fake.bot_id] = "报价助手"  # the bot's nickname in that room
    desk = StubDesk()
    await connect(desk)

    fake.post(ROOM, ALICE, "/price H100")
    fake.post(ROOM, ALICE, f"@GPU Desk{AT_SEPARATOR}查价 H100", mention_ids=[fake.bot_id])
    fake.post(OTHER_ROOM, BOB, "@报价助手 /book", mention_ids=[fake.bot_id])
    await eventually(lambda: len(fake.texts()) == 3)

    assert desk.texts == ["/price H100", "查价 H100", "/book"]
    assert [(s.conversation_id, s.text) for s in fake.texts()] == [
        (ROOM, "@Alice ok: /price H100"),
        (ROOM, "@Alice ok: 查价 H100"),
        (OTHER_ROOM, "@老王 ok: /book"),
    ]


async def test_a_redelivered_message_goes_to_the_desk_again_and_is_answered_once(
    fake: FakePuppetService, connect: Connect
) -> None:
    desk = StubDesk()
    await connect(desk)

    fake.post(ROOM, ALICE, "出 4090 24G 20台", message_id="dup-1")
    fake.redeliver("dup-1")
    await eventually(lambda: len(desk.messages) == 2)
    await asyncio.sleep(0.2)  # time for a second send, if there were to be one

    assert [m.message_id for m in desk.messages] == ["dup-1", "dup-1"]
    assert len(fake.texts()) == 1


async def test_a_dropped_event_stream_is_reconnected(
    fake: FakePuppetService, connect: Connect
) -> None:
    desk = StubDesk()
    adapter = await connect(desk)

    fake.drop_stream()
    await eventually(lambda: fake.calls.count("Event") == 2 and fake.open_streams == 1)
    fake.post(ROOM, ALICE, "after the drop")
    await eventually(lambda: len(fake.texts()) == 1)

    assert desk.texts == ["after the drop"]
    assert adapter.connections == 2


async def test_a_restarting_service_is_retried_with_backoff_until_it_is_back(
    fake: FakePuppetService, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    desk = StubDesk()
    adapter = await connect(desk)

    with caplog.at_level(logging.WARNING, logger="gpudesk.bot.wechat"):
        await fake.stop()
        await asyncio.sleep(1.0)
        attempts_while_down = adapter.connections - 1
        await fake.start()
        await adapter.wait_ready(timeout=5)

    # Backoff 0.05 s doubling to 0.4 s: a handful of tries in a second, not a busy loop.
    assert 3 <= attempts_while_down <= 7
    assert "lost or refused" in caplog.text
    assert "reconnecting to" in caplog.text
    fake.post(ROOM, ALICE, "back again")
    await eventually(lambda: len(fake.texts()) == 1)


async def test_a_service_down_at_start_is_waited_for(
    fake: FakePuppetService, connect: Connect
) -> None:
    await fake.stop()  # the port is known but refuses connections
    desk = StubDesk()
    adapter = await connect(desk, wait=False)

    await eventually(lambda: adapter.connections >= 2)
    assert not adapter.ready
    await fake.start()
    await adapter.wait_ready(timeout=5)
    fake.post(ROOM, ALICE, "hello")
    await eventually(lambda: len(fake.texts()) == 1)


async def test_a_silently_dead_connection_is_noticed_by_the_liveness_probe(
    fake: FakePuppetService, connect: Connect
) -> None:
    desk = StubDesk()
    adapter = await connect(desk, liveness_seconds=0.1, rpc_timeout_seconds=0.3)
    await eventually(lambda: "Ding" in fake.calls)

    fake.freeze()  # connections stay open, nothing is answered, no event arrives
    await eventually(lambda: not adapter.ready)
    fake.thaw()
    await adapter.wait_ready(timeout=5)

    assert adapter.connections >= 2
    fake.post(ROOM, ALICE, "still there?")
    await eventually(lambda: len(fake.texts()) == 1)


async def test_a_message_caught_in_a_hang_is_read_again_after_reconnecting(
    fake: FakePuppetService, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    desk = StubDesk()
    adapter = await connect(desk, liveness_seconds=0.1, rpc_timeout_seconds=0.3)

    with caplog.at_level(logging.WARNING, logger="gpudesk.bot.wechat"):
        fake.freeze(events=False)  # the event arrives, but its payload look-up hangs
        message_id = fake.post(ROOM, ALICE, "出 A800 16台")
        await eventually(lambda: not adapter.ready)
        fake.thaw()
        await eventually(lambda: len(fake.texts()) == 1)

    assert [(m.message_id, m.text) for m in desk.messages] == [(message_id, "出 A800 16台")]
    assert f"message {message_id}" in caplog.text and "will retry" in caplog.text


async def test_a_burst_of_fifty_is_paced_per_room_and_capped_per_day(
    fake: FakePuppetService, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    desk = StubDesk()
    adapter = await connect(
        desk, min_seconds_between_messages=0.04, jitter_ratio=0.25, daily_cap=20
    )

    with caplog.at_level(logging.WARNING, logger="gpudesk.bot.wechat"):
        for n in range(50):
            fake.post(ROOM, ALICE, f"出 H100 第{n}批")
        await eventually(lambda: len(desk.messages) == 50)
        fake.post(OTHER_ROOM, BOB, "another room is not held up")
        await eventually(lambda: len(fake.texts(OTHER_ROOM)) == 1)
        await eventually(lambda: len(fake.texts(ROOM)) == 20)
        await asyncio.sleep(0.3)

    in_room = fake.texts(ROOM)
    assert len(in_room) == 20  # the daily cap
    assert [s.text for s in in_room] == [f"@Alice ok: 出 H100 第{n}批" for n in range(20)]
    gaps = [later.at - earlier.at for earlier, later in pairwise(in_room)]
    assert min(gaps) >= 0.04 - 0.002  # never closer than the minimum (jitter only adds)
    assert fake.texts(OTHER_ROOM)[0].at < in_room[-1].at  # paced per room, not globally
    assert caplog.text.count("daily cap of 20 messages reached") == 1
    assert len(adapter.outbox.unsent_replies("wechat")) == 30  # held for tomorrow, not dropped


async def test_match_replies_are_batched_into_one_message_per_room(
    fake: FakePuppetService, connect: Connect
) -> None:
    def answer(message: ChatMessage) -> list[Reply]:
        kind = "answer" if message.text.startswith("/") else "match"
        text = f"配对 {message.text}"
        return [Reply("wechat", message.chat_id, text, mention_ids=(message.sender_id,), kind=kind)]

    desk = StubDesk(answer)
    await connect(desk, batch_seconds=0.3)

    fake.post(ROOM, ALICE, "出 H100")
    fake.post(ROOM, BOB, "收 H100")
    fake.post(ROOM, ALICE, "/help")
    await eventually(lambda: len(fake.texts()) == 1)
    assert fake.texts()[0].text == "@Alice 配对 /help"  # an answer is not held back
    await eventually(lambda: len(fake.texts()) == 2)

    batch = fake.texts()[1]
    assert batch.mention_ids == (ALICE, BOB)
    assert batch.text == f"@Alice{AT_SEPARATOR}@老王 配对 出 H100\n\n配对 收 H100"


async def test_group_admin_status_is_read_only_when_the_desk_needs_it(
    fake: FakePuppetService, connect: Connect
) -> None:
    desk = StubDesk(answer=lambda m: [])
    await connect(desk)

    fake.post(ROOM, ALICE, "出 L40S")
    fake.post(ROOM, ALICE, "/cancel 7")
    fake.post(ROOM, BOB, "/cancel 7")  # Bob owns the room
    await eventually(lambda: len(desk.messages) == 3)

    assert [m.sender_is_admin for m in desk.messages] == [False, False, True]
    # One RoomPayload when the room was first seen, then one fresh read per admin question.
    assert fake.calls.count("RoomPayload") == 3


# FileBox (wechaty-puppet) calls the deprecated logger.warn() when it serialises itself.
@pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")
async def test_private_replies_go_to_the_contact_and_images_are_sent_as_files(
    fake: FakePuppetService, connect: Connect
) -> None:
    png = b"\x89PNG\r\n\x1a\nchart"

    def answer(message: ChatMessage) -> list[Reply]:
        return [
            Reply("wechat", message.sender_id, "你的挂单：无", private=True, mention_ids=(ALICE,)),
            Reply("wechat", message.chat_id, "本周行情", image=png, kind="digest"),
            Reply("telegram", "-100123", "not ours"),
        ]

    desk = StubDesk(answer)
    await connect(desk)

    fake.post(ROOM, ALICE, "/mine")
    await eventually(lambda: len(fake.sent) == 3)

    private, text, image = sorted(fake.sent, key=lambda s: (s.filebox is not None, s.text))
    assert (private.conversation_id, private.text, private.mention_ids) == (
        ALICE,
        "你的挂单：无",
        (),
    )
    assert (text.conversation_id, text.text) == (ROOM, "本周行情")
    assert image.conversation_id == ROOM
    assert image.filebox is not None
    assert base64.b64decode(json.loads(image.filebox)["base64"]) == png


async def test_an_exception_in_the_desk_is_logged_and_the_bot_carries_on(
    fake: FakePuppetService, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    def answer(message: ChatMessage) -> list[Reply]:
        if "boom" in message.text:
            raise RuntimeError("ledger is on fire")
        return echo_answer(message)

    desk = StubDesk(answer)
    await connect(desk)

    with caplog.at_level(logging.ERROR, logger="gpudesk.bot.wechat"):
        boom = fake.post(ROOM, ALICE, "boom")
        fake.post(ROOM, ALICE, "after")
        await eventually(lambda: len(fake.texts()) == 1)

    assert fake.texts()[0].text == "@Alice ok: after"
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert boom in record.getMessage()
    assert record.exc_info is not None and "ledger is on fire" in str(record.exc_info[1])


async def test_stop_is_clean_and_tells_the_service(
    fake: FakePuppetService, connect: Connect
) -> None:
    desk = StubDesk()
    adapter = await connect(desk, min_seconds_between_messages=60)
    fake.post(ROOM, ALICE, "one")
    fake.post(ROOM, ALICE, "two")  # waits 60 s for its turn: stop() must not wait for it
    await eventually(lambda: len(fake.texts()) == 1 and len(desk.messages) == 2)
    stops_before = fake.calls.count("Stop")

    async with asyncio.timeout(3):
        await adapter.stop()

    assert fake.calls.count("Stop") == stops_before + 1
    assert not adapter.ready
    await eventually(lambda: fake.open_streams == 0, timeout=1)
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("wechat-")]
    assert leftover == []


async def test_the_compat_shims_stand_in_for_what_newer_libraries_dropped(
    fake: FakePuppetService,
) -> None:
    import pyee
    import urllib3
    from wechaty_puppet.schemas.puppet import PuppetOptions

    from gpudesk.bot import wechat_compat

    wechat_compat.apply()  # idempotent
    assert pyee.AsyncIOEventEmitter is pyee_asyncio.AsyncIOEventEmitter
    assert urllib3.get_host("https://api.example.com:8443/x") == ("https", "api.example.com", 8443)
    assert urllib3.get_host("example.com") == ("http", "example.com", None)
    assert PuppetOptions.__hash__ is not None  # so WechatyOptions may default to one

    # The telnetlib stand-in for Python 3.13: connects where something listens, else OSError.
    probe = wechat_compat._Telnet()
    probe.open("127.0.0.1", fake.port, timeout=1)
    probe.close()
    await fake.stop()
    with pytest.raises(OSError):
        probe.open("127.0.0.1", fake.port, timeout=1)


# -- with the real desk and a real ledger ---------------------------------------------------

SELL = "出 H100 8卡 10台 北京 月租7.5w/台"
BUY = "收 H100 8卡 2台 北京 月租8w/台"  # bids above the ask: a match


@pytest.fixture
def real_desk(tmp_path: Path) -> Iterator[Desk]:
    with Ledger.open(tmp_path / "ledger.db", Valuation()) as ledger:
        yield Desk(ledger, DeskSettings(language="en"))


async def test_real_desk_offers_match_in_the_room_and_a_redelivery_changes_nothing(
    fake: FakePuppetService, connect: Connect, real_desk: Desk
) -> None:
    await connect(real_desk)

    fake.post(ROOM, ALICE, SELL)
    buy = fake.post(ROOM, BOB, BUY)
    await eventually(lambda: len(fake.texts()) == 1)
    fake.redeliver(buy)
    await asyncio.sleep(0.3)  # time for the redelivery to be read (and, wrongly, answered)

    [match] = fake.texts()
    assert match.conversation_id == ROOM
    assert "Alice" in match.text and "GPU 现货群" in match.text
    assert real_desk.ledger.message_count() == 2  # our own echoed reply is not stored
    assert len(real_desk.ledger.open_offers(now=datetime.now(UTC))) == 2


async def test_real_desk_answers_commands_plain_mentioned_and_admin_gated(
    fake: FakePuppetService, connect: Connect, real_desk: Desk
) -> None:
    await connect(real_desk)

    fake.post(ROOM, ALICE, SELL)
    fake.post(ROOM, BOB, "/price H100")
    fake.post(ROOM, ALICE, f"@GPU Desk{AT_SEPARATOR}/help", mention_ids=[fake.bot_id])
    fake.post(ROOM, ALICE, "/pause")  # Alice is a member, not an admin
    fake.post(ROOM, BOB, "/pause")  # Bob owns the room
    await eventually(lambda: len(fake.texts()) == 4)

    price, help_, refused, paused = (s.text for s in fake.texts())
    assert "H100" in price
    assert "/price" in help_
    assert "Only group admins can use /pause" in refused
    assert "Only group admins" not in paused
