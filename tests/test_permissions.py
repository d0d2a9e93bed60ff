"""Guarantee 6, the permission matrix: who may close an offer and who may run a group's admin
commands, through the fake Bot API (getChatMember statuses) with the real desk (issue 9).

Only an offer's poster (by platform user id, never by name) or a bot admin may `/cancel` or
`/filled` it; a group admin, named so by Telegram, or an anonymous admin posting as the group
may `/pause`, `/lang` and `/digest`. A forwarded offer belongs to whoever first posted it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.market.normalise import Valuation
from gpudesk.storage.ledger import Ledger
from tests.fakes.telegram_api import FakeChat, FakeTelegram, FakeUser, SentMessage
from tests.test_telegram import running

ASK = "出 H100 8卡 10台 北京 月租7.5w/台"
ASK_TOO = "出 A100 8卡 4台 上海 月租3w/台"

DONE, NOT_YOURS, ADMINS_ONLY, OK = "done", "not yours", "admins only", "ok"
CLOSERS = ("/cancel", "/filled")
ADMIN_COMMANDS = ("/pause", "/lang en", "/digest")

# actor -> (what /cancel and /filled say, what the admin commands say)
MATRIX = {
    "poster": (DONE, ADMINS_ONLY),
    "other member": (NOT_YOURS, ADMINS_ONLY),
    "namesake of the poster": (NOT_YOURS, ADMINS_ONLY),
    "group admin": (NOT_YOURS, OK),
    "group owner": (NOT_YOURS, OK),
    "anonymous admin": (NOT_YOURS, OK),
    "bot admin": (DONE, OK),
    "restricted member": (NOT_YOURS, ADMINS_ONLY),
}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "ledger.db", Valuation()) as opened:
        yield opened


def verdict(sent: list[SentMessage]) -> str:
    text = "\n".join(s.plain for s in sent)
    if "is not yours" in text:
        return NOT_YOURS
    if "Only group admins" in text:
        return ADMINS_ONLY
    if "withdrawn" in text or "marked as done" in text:
        return DONE
    return OK if sent else "silence"


async def ask_all(
    api: FakeTelegram, group: FakeChat, actor: FakeUser | None, texts: list[str]
) -> list[str]:
    """Post each text as `actor` (None: as the group, an anonymous admin); the verdicts."""
    ids = [
        api.inject_as_chat(group, text) if actor is None else api.inject_message(group, actor, text)
        for text in texts
    ]
    await api.wait_until(
        lambda: all(any(s.reply_to == i for s in api.sent) for i in ids), 10, "every answer"
    )
    return [verdict([s for s in api.sent if s.reply_to == i]) for i in ids]


@pytest.mark.parametrize("actor", list(MATRIX))
async def test_the_permission_matrix(actor: str, ledger: Ledger) -> None:
    """Each actor's /cancel, /filled, /pause, /lang and /digest get the answer the matrix says."""
    async with FakeTelegram() as api:
        group = api.group("GPU Traders")
        poster = api.user("Alice", "Wang")
        someone = {
            "poster": poster,
            "namesake of the poster": api.user("Alice", "Wang"),  # same name, another id
            "anonymous admin": None,
        }.get(actor, api.user(actor.title()))
        status = {"group admin": "administrator", "group owner": "creator"}.get(actor)
        if actor == "restricted member":
            status = "restricted"
        if status and someone is not None:
            api.set_member_status(group, someone, status)
        bot_admins = {("telegram", str(someone.id))} if actor == "bot admin" and someone else set()
        desk = Desk(ledger, DeskSettings(language="en", admins=frozenset(bot_admins)))
        async with running(api, desk):
            api.inject_message(group, poster, ASK)
            api.inject_message(group, poster, ASK_TOO)
            await api.wait_until_confirmed()
            first, second = (
                r.id for r in ledger.poster_offers("telegram", str(poster.id), now=_now())
            )
            closers = [f"/cancel {first}", f"/filled {second}"]
            verdicts = await ask_all(api, group, someone, closers + list(ADMIN_COMMANDS))
    closing, admin = MATRIX[actor]
    assert verdicts == [closing] * 2 + [admin] * 3
    if admin == OK:
        assert any(s.method == "sendPhoto" for s in api.sent)  # the digest and its chart
    asked = [int(call.params["user_id"]) for call in api.calls_to("getChatMember")]
    # Telegram is asked about the sender of each admin command, and only then; an anonymous
    # admin posts as the group, which proves the status without asking.
    assert asked == ([] if someone is None else [someone.id] * len(ADMIN_COMMANDS))


async def test_a_forwarded_offer_belongs_to_its_origin_not_the_forwarder(ledger: Ledger) -> None:
    """Fred forwards Carol's offer: it is Carol's to cancel or fill, not Fred's."""
    async with FakeTelegram() as api:
        group, carol, fred = api.group("GPU Traders"), api.user("Carol"), api.user("Fred")
        desk = Desk(ledger, DeskSettings(language="en"))
        async with running(api, desk):
            api.inject_forward(group, fred, ASK, origin=carol)
            api.inject_forward(group, fred, ASK_TOO, origin=carol)
            await api.wait_until_confirmed()
            offers = ledger.poster_offers("telegram", str(carol.id), now=_now())
            assert [r.posted.poster_name for r in offers] == ["Carol", "Carol"]
            assert ledger.poster_offers("telegram", str(fred.id), now=_now()) == []
            first, second = (r.id for r in offers)
            by_fred = await ask_all(api, group, fred, [f"/cancel {first}", f"/filled {second}"])
            by_carol = await ask_all(api, group, carol, [f"/cancel {first}", f"/filled {second}"])
    assert by_fred == [NOT_YOURS, NOT_YOURS]
    assert by_carol == [DONE, DONE]


def _now() -> datetime:
    return datetime.now(UTC)
