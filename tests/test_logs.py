"""Guarantee 8: no secrets or personal data in logs or digests. The bot token never reaches a
log; phone numbers and WeChat ids are masked in logs, at DEBUG too, and in digests (issue 9).

The token-only checks of the adapter are `tests/test_telegram.py::
test_the_token_never_reaches_a_log_even_at_debug` and `tests/test_run.py`; here a whole
`gpudesk -v run` session is read as an operator would read its log.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpudesk.bot.logs import PrivacyFilter
from gpudesk.bot.wechat import WechatAdapter
from gpudesk.handlers.digest_text import compose
from gpudesk.handlers.message import ChatMessage, Reply
from gpudesk.market.privacy import mask_personal
from tests.conftest import Chat
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.wechat_puppet import FakePuppetService
from tests.processes import start_run, telegram_config
from tests.test_run import wait_until
from tests.test_wechat import ALICE, ROOM, Connect, StubDesk, connect, fake  # noqa: F401

# What a deal post carries, and what must never be written to a log whole.
PHONES = ("13812345678", "138-1234-5678", "13912345678", "+1 415 555 0199")
WECHAT_IDS = ("gpu_boss88", "wxid_k8s7d6f5", "abc123xyz")
POST = (
    "出 H100 8卡 10台 北京 月租7.5w/台 电话 +86 138-1234-5678 或 13812345678,"
    " US +1 415 555 0199, V: gpu_boss88, wxid_k8s7d6f5, 微信：abc123xyz"
)
SECRETS = PHONES + WECHAT_IDS


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("13812345678", "*******5678"),
        ("call 138 1234 5678 now", "call *** **** 5678 now"),
        ("+86 138-1234-5678", "+** ***-****-5678"),
        ("0086 13812345678", "**** *******5678"),
        ("电话13812345678", "电话*******5678"),
        ("+44 20 7946 0958", "+** ** **** 0958"),
        ("+1 (415) 555-0199", "+* (***) ***-0199"),
        ("微信: abc123", "微信: ***"),
        ("微信号：Gpu_Boss-88", "微信号：***"),
        ("加V信 zhang_san88", "加V信 ***"),
        ("vx: abc1234", "vx: ***"),
        ("V: abc123", "V: ***"),
        ("wxid_k8s7d6f5 said", "wxid_*** said"),
    ],
)
def test_phone_numbers_and_wechat_ids_are_masked(text: str, masked: str) -> None:
    assert mask_personal(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "出 H100 8卡 10台 北京 月租7.5w/台",
        "V100 32G 4张 深圳 1.2w/张",  # "V" before a GPU number is not a WeChat label
        "WTS 4x H100 nodes Singapore $12k/node/month, 2026-11-02 10:00",
        "总价 1200000 元, order 20261102123456",  # long numbers that are no phone
        "",
    ],
)
def test_offers_prices_and_dates_are_left_alone(text: str) -> None:
    assert mask_personal(text) == text


def test_a_digest_masks_contact_details_in_names(chat: Chat) -> None:
    """A digest goes to a whole group: a poster who put a phone or a WeChat id in their name
    is shown with it masked."""
    chat.clock.advance(days=2)  # the Wednesday of the week the Monday digest sums up
    chat.post("s1", "出 H100 8卡 10台 北京 月租7.5w/台", sender_name="王老板 13812345678")
    chat.post("s2", "出 A100 8卡 4台 上海 月租3w/台", sender_name="Li V: gpu_boss88")
    chat.post("b1", "收 H100 8卡 5台 北京 月租8w/台以内", sender_name="微信 abc123xyz")
    chat.clock.advance(days=5)
    [digest] = compose(chat.desk.ledger, chat.desk.settings, "console", "room", now=chat.clock())
    assert "H100" in digest.text
    assert leaks(digest.text) == []
    assert "王老板 *******5678" in digest.text


async def test_a_debug_session_of_gpudesk_run_logs_no_token_and_no_contact_details(
    tmp_path: Path,
) -> None:
    """`gpudesk -v run` against the fake Bot API, posts and names full of phone numbers and
    WeChat ids, a match sent back and a 429 waited out: its whole log (python-telegram-bot's
    DEBUG payloads included) holds no token and none of them whole."""
    db = tmp_path / "desk.db"
    async with FakeTelegram() as api:
        config = telegram_config(tmp_path, api, db)
        process = await start_run(config, "-v", cwd=tmp_path)
        try:
            await wait_until(lambda: api.polling, 20, "the bot to poll")
            group = api.group("GPU 13912345678 群")
            seller, buyer = api.user("王老板", "13912345678"), api.user("Bob V: gpu_boss88")
            api.fail_next("sendMessage", retry_after=1)
            api.inject_message(group, seller, POST)
            api.inject_message(group, buyer, "收 H100 8卡 5台 北京 月租8w/台以内 wxid_k8s7d6f5")
            [match] = await api.wait_for_sent(1, timeout=15)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 20)
    log = stderr.decode()
    assert process.returncode == 0, log
    assert "13912345678" in match.plain  # the chat itself gets what it was told...
    assert "DEBUG telegram" in log and "sendMessage" in log  # ...the log saw it all at DEBUG,
    assert leaks(log) == []  # ...masked
    assert "*******5678" in log and "V: ***" in log
    assert api.token.split(":", 1)[1] not in log


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """The root logger at DEBUG into a buffer through a `PrivacyFilter`, as `gpudesk run`
    sets it up (`app.configure_logging`)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(PrivacyFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_debug_session_of_the_wechat_adapter_logs_no_contact_details(
    fake: FakePuppetService,  # noqa: F811
    connect: Connect,  # noqa: F811
    debug_log: io.StringIO,
) -> None:
    """The WeChat adapter and the wechaty SDK at DEBUG, a post full of contact details, a
    reply that fails to send (its text is logged): the log holds none of them whole."""

    def answer(message: ChatMessage) -> list[Reply]:
        return [Reply("wechat", ROOM, f"seen {n}: {message.text}") for n in (1, 2)]

    desk = StubDesk(answer)
    adapter: WechatAdapter = await connect(desk, min_seconds_between_messages=0.5)
    fake.post(ROOM, ALICE, POST)
    await wait_until(lambda: bool(fake.texts(ROOM)), 5, "the first reply")
    fake.freeze(events=False)  # the second reply's send hangs, times out and is logged
    await wait_until(lambda: "could not send" in debug_log.getvalue(), 10, "the failed send")
    fake.thaw()
    await adapter.stop()
    log = debug_log.getvalue()
    assert "DEBUG" in log and "WeChat" in log
    assert leaks(log) == []
    assert "wxid_alice" not in log and "wxid_***" in log
    assert "local-test-token" not in log
