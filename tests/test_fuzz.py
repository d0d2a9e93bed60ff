"""Guarantee 5, safe replies: arbitrary text, names and commands through the real desk and
ledger never raise, never trip the desk's own "something went wrong", and every reply renders
through the Telegram adapter's HTML escaping and the fake Bot API's parser of Telegram HTML
(issue 9). Names and posts full of `<`, `>`, `&`, Markdown characters and right-to-left marks
included.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpudesk.bot.telegram import _html, split_text, utf16_len
from gpudesk.handlers.commands import COMMANDS, DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.message import ChatMessage, Reply
from gpudesk.handlers.texts import say
from gpudesk.storage.ledger import Ledger
from tests.conftest import START, FakeClock
from tests.fakes.telegram_api import CAPTION_LIMIT, MESSAGE_LIMIT, FakeTelegram, parse_html
from tests.test_telegram import running

NASTY = "<>&\"'*_`[]()~#+-=|{}.!\\/@\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2069"
SORRY = {say(lang, "error.internal") for lang in ("en", "zh")}

nasty_text = st.text(alphabet=st.sampled_from(NASTY) | st.characters(), max_size=80)
names = st.one_of(nasty_text, st.sampled_from(["<b>Bob</b>", "&amp; Co", "\u202eevilname", "**"]))
words = st.one_of(
    nasty_text,
    st.sampled_from(["H100", "A100", "4090", "rent", "sale", "zh", "en", "group", "all", "#1"]),
    st.integers(min_value=-3, max_value=40).map(str),
)
commands = st.builds(
    lambda name, args: " ".join([name, *args]),
    st.sampled_from([f"/{c.name}" for c in COMMANDS] + [a for c in COMMANDS for a in c.aliases]),
    st.lists(words, max_size=3),
)
offers = st.builds(
    lambda head, junk: f"{head} {junk}",
    st.sampled_from(
        [
            "出 H100 8卡 10台 北京 月租7.5w/台",
            "收 H100 8卡 5台 北京 月租8w/台以内",
            "WTS 4x H100 nodes Singapore $12k/node/month",
            "出 4090 100张 深圳 1.6w/张",
        ]
    ),
    nasty_text,
)
posts = st.tuples(
    st.integers(min_value=0, max_value=3),  # who
    names,
    st.one_of(commands, offers, nasty_text),
    st.booleans(),  # a group admin
    st.booleans(),  # in a group (else in private)
)


def assert_renders(reply: Reply) -> None:
    """What the adapter would send parses as Telegram HTML back to the reply's own text."""
    if reply.image is not None and utf16_len(reply.text) <= CAPTION_LIMIT:
        assert parse_html(_html(reply.text)) == reply.text
        return
    for piece in split_text(reply.text):
        plain = parse_html(_html(piece))
        assert plain == piece
        assert utf16_len(plain) <= MESSAGE_LIMIT


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(posts, min_size=1, max_size=12), names)
def test_anything_posted_is_answered_safely_or_not_at_all(
    batch: list[tuple[int, str, str, bool, bool]], title: str
) -> None:
    """No exception escapes `Desk.handle`, the desk never had to apologise, and every reply
    is valid Telegram HTML that reads back as the reply's own text."""
    clock = FakeClock(START)
    ids = itertools.count(1)
    with (
        Ledger.open(":memory:") as ledger,
        mock.patch("gpudesk.handlers.digest_text.render_chart", return_value=b"\x89PNG"),
    ):
        desk = Desk(ledger, DeskSettings(language="en"), clock=clock)
        for who, name, text, admin, in_group in batch:
            clock.now += timedelta(seconds=20)  # under the command limit: answers, not warnings
            message = ChatMessage(
                platform="telegram",
                chat_id="-1001" if in_group else str(100 + who),
                chat_title=title if in_group else None,
                is_group=in_group,
                sender_id=str(100 + who),
                sender_name=name,
                text=text,
                sent_at=clock.now,
                message_id=str(next(ids)),
                sender_is_admin=admin,
            )
            for reply in desk.handle(message):
                assert reply.text not in SORRY, f"the desk failed on {text!r}"
                assert_renders(reply)


@pytest.mark.slow
async def test_nasty_names_and_posts_reach_the_group_intact(tmp_path: object) -> None:
    """End to end through the fake Bot API: a seller and a group named in HTML, Markdown and
    right-to-left marks, matched and answered; every send is accepted and reads as written."""
    async with FakeTelegram() as api:
        group = api.group("<b>GPU</b> & *Deals* \u202eevil")
        seller = api.user("<i>Seller", "& Sons</i> **\u202e\u200f")
        buyer = api.user("[Buyer](tg://user?id=1) `x`")
        with Ledger.open(":memory:") as ledger:
            desk = Desk(ledger, DeskSettings(language="en"))
            async with running(api, desk):
                api.inject_message(group, seller, "出 H100 8卡 10台 北京 月租7.5w/台 <script>&amp;")
                api.inject_message(group, buyer, "收 H100 8卡 5台 北京 月租8w/台以内 </b>")
                api.inject_message(group, buyer, "/book H100 <rent>")
                api.inject_message(group, seller, "/mine &lt;")
                [*sent] = await api.wait_for_sent(3, timeout=10)
                await api.wait_until_confirmed()
    assert all(call.status == 200 for call in api.calls_to("sendMessage"))
    match = next(s for s in sent if "Counterparties" in s.plain)
    assert "<i>Seller & Sons</i> **\u202e\u200f" in match.plain
    assert "<b>GPU</b> & *Deals* \u202eevil" in match.plain
