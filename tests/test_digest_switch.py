"""A group's weekly digest switch: `/digest off` and `/digest on` (`周报 关`, `周报 开`), group
admins only, kept in the ledger's chats table, shown with the group's settings in `/help`.
`/pause` holds match replies only, never the digest. The scheduler's side is in
tests/test_scheduler.py."""

from __future__ import annotations

from pathlib import Path

from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.texts import say
from gpudesk.market.normalise import Valuation
from gpudesk.storage.ledger import Ledger
from tests.conftest import Chat, FakeClock

SETTINGS = DeskSettings(language="en", admins=frozenset({("console", "root")}))


def digest_on(chat: Chat) -> bool:
    return chat.desk.ledger.chat(chat.platform, chat.chat_id).weekly_digest


def test_digest_off_and_on_switch_the_groups_weekly_digest(chat: Chat) -> None:
    assert digest_on(chat)  # on by default
    assert chat.post("root", "/digest off") == say("en", "digest.switch.off")
    assert not digest_on(chat)
    assert "weekly digest off" in chat.post("alice", "/help")
    assert chat.post("root", "/digest ON") == say("en", "digest.switch.on")
    assert digest_on(chat)
    assert "weekly digest on" in chat.post("alice", "/help")


def test_the_switch_in_chinese(chat: Chat) -> None:
    chat.post("root", "/lang zh")
    assert chat.post("root", "周报 关") == say("zh", "digest.switch.off")
    assert not digest_on(chat)
    assert chat.post("root", "周报开") == say("zh", "digest.switch.on")  # no space, as typed
    assert digest_on(chat)
    assert "每周周报 开" in chat.post("alice", "帮助")


def test_only_group_admins_may_switch_it(chat: Chat) -> None:
    refused = chat.post("alice", "/digest off")
    assert refused == say("en", "error.admin_only", command="/digest")
    assert digest_on(chat)
    assert chat.post("bob", "/digest off", sender_is_admin=True) == say("en", "digest.switch.off")
    assert not digest_on(chat)


def test_an_unknown_argument_explains_the_forms(chat: Chat) -> None:
    assert chat.post("root", "/digest maybe") == say("en", "error.bad_digest")
    assert chat.post("root", "/digest off now") == say("en", "error.bad_digest")
    assert digest_on(chat)


def test_digest_without_an_argument_still_sends_it_now(chat: Chat) -> None:
    chat.post("root", "/digest off")
    replies = chat.send("root", "/digest")  # off for the schedule, not for the asking
    assert replies and all(reply.kind == "digest" for reply in replies)


def test_pause_holds_match_replies_not_the_digest(chat: Chat) -> None:
    paused = chat.post("root", "/pause")
    assert "/digest off" in paused  # says so
    assert digest_on(chat)
    assert "match replies off" in chat.post("alice", "/help")
    chat.post("root", "/resume")
    assert "match replies on" in chat.post("alice", "/help")


def test_the_switch_survives_a_restart(db_path: Path, clock: FakeClock) -> None:
    with Ledger.open(db_path, Valuation()) as ledger:
        chat = Chat(Desk(ledger, SETTINGS, clock=clock), clock)
        chat.post("root", "/digest off")
    with Ledger.open(db_path, Valuation()) as ledger:  # a new process on the same file
        chat = Chat(Desk(ledger, SETTINGS, clock=clock), clock, _ids=iter(range(100, 200)))
        assert not digest_on(chat)
        assert "weekly digest off" in chat.post("alice", "/help")
        assert [c.weekly_digest for c in ledger.chats()] == [False]


def test_the_digest_is_a_group_setting(ledger: Ledger, clock: FakeClock) -> None:
    here = Chat(Desk(ledger, SETTINGS, clock=clock), clock, chat_id="room")
    there = Chat(here.desk, clock, chat_id="other", _ids=iter(range(100, 200)))
    here.post("root", "/digest off")
    assert not digest_on(here)
    assert digest_on(there)
