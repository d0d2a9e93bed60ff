"""The desk: one chat message in, the replies to send out, the same on every platform.

`Desk.handle()` is the single entry point for adapters. It stores the raw message first (the
ledger's unique key makes re-delivery a no-op), then either runs the command it carries or reads
its offers into the book, refreshing reposts instead of doubling them, and answers a new offer
with its counterparties. What was stored but not yet read when a crash hit is read by
`recover()` on start.

    desk = Desk(Ledger.open("gpudesk.db"), DeskSettings(language="en"))
    replies = desk.handle(ChatMessage(platform="console", chat_id="room", ...))
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeAlias

from gpudesk.handlers.commands import (
    COMMANDS,
    Command,
    Context,
    DeskSettings,
    UsageError,
    find_command,
    find_counterparties,
    match_text,
    said_by_name,
)
from gpudesk.handlers.texts import say
from gpudesk.handlers.watching import alerts_for
from gpudesk.market.book import PostedOffer
from gpudesk.market.message import ChatMessage, Reply
from gpudesk.market.normalise import gpu_count
from gpudesk.market.offer import Offer
from gpudesk.market.parse import names_foreign_money, parse_offers
from gpudesk.market.withdrawal import Withdrawn, detect_withdrawal
from gpudesk.storage.ledger import Ledger

log = logging.getLogger(__name__)

# Real posts are a few hundred characters; past this a message is stored but not read, so one
# pasted log file cannot stall the desk.
MAX_READ_CHARS = 64 * 1024


class DeskPort(Protocol):
    """What a chat adapter needs from the desk; `Desk` provides it, tests may stub it."""

    def handle(self, message: ChatMessage) -> list[Reply]:
        """Store the message and its offers (committed on return); what to say. Re-delivery
        of the same platform + chat + message id returns []."""
        ...

    def needs_admin(self, text: str) -> bool:
        """Whether answering `text` depends on the sender being a group admin."""
        ...

    def command_menu(self, language: str) -> list[tuple[str, str]]:
        """(command, description) pairs for the command menu in `language` ("en" or "zh")."""
        ...


def system_clock() -> datetime:
    return datetime.now(UTC)


# What the desk reads in a post: its offers and, when it makes none, the deal it ends.
Reading: TypeAlias = tuple[Sequence[Offer], Withdrawn | None]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message of history made ready for `Desk.read_history` without the ledger (so outside
    its write lock): cleaned, and read unless it is a command or too long to read."""

    message: ChatMessage
    reading: Reading | None


class Desk:
    """The trading desk behind every adapter. Synchronous: each call commits before it returns."""

    def __init__(
        self,
        ledger: Ledger,
        settings: DeskSettings | None = None,
        *,
        clock: Callable[[], datetime] = system_clock,
        parse: Callable[[str], Sequence[Offer]] = parse_offers,
    ):
        self.ledger = ledger
        self.settings = settings or DeskSettings()
        self.clock = clock
        self.parse = parse
        self._command_times: dict[tuple[str, str], deque[datetime]] = {}
        # -- outbox (issue 9): platforms whose adapter sends from the ledger's outbox and marks
        # each reply sent (`gpudesk run` sets it); replies to others are only returned.
        self.outbox_platforms: frozenset[str] = frozenset()
        # Messages `handle` could not read (logged, kept unread for `recover()`): an import
        # counts its problems by it, since history gets no error replies.
        self.failed = 0
        # Answers `recover()` owes on platforms without an outbox: the adapter sends them.
        self.recovered_replies: list[Reply] = []

    # -- the entry point --------------------------------------------------------------------

    def handle(self, message: ChatMessage) -> list[Reply]:
        """Store `message`, act on it, and return what to say. Never raises on bad input.

        Inside a caller's transaction (an import batch) it is a savepoint: a message that
        cannot be read rolls back its own writes only, and is kept unread for `recover()`."""
        now = self.clock()
        message = clean(message)
        source = "live" if message.announce else "import"
        try:
            # -- outbox (issue 9): storing, reading and answering a message are one
            # transaction, and the answer is queued in the ledger's outbox within it, so a crash
            # leaves all of it or none of it; the adapter marks each reply sent.
            with self.ledger.transaction():
                # Stored as read: a failure below rolls the mark back with everything else.
                stored = self.ledger.store_message(
                    message, received_at=now, source=source, handled=True
                )
                if not (stored.fresh or stored.changed) and stored.handled:
                    return []  # delivered before: the ledger already has it, and it was answered
                replies = self._act(stored.id, message, now, edited=stored.changed)
                if not stored.handled:  # delivered before, and not read then
                    self.ledger.mark_handled(stored.id)
                return self._queue(stored.id, replies, now)
        except Exception:
            # Rolled back: keep the message in the inbox (unhandled, for recover()), say sorry.
            log.exception("could not handle message %s in %s", message.message_id, message.chat_id)
            self.failed += 1
            self.ledger.store_message(message, received_at=now, source=source)
            if not message.announce:
                return []  # history is answered by no one, not even with an apology
            return [self._reply(message, say(self._lang(message), "error.internal"))]

    def recover(self) -> int:
        """Read what a crash left stored but unread; returns how many messages it read.

        A live message sent at most `settings.recover_reply_window` ago (10 minutes) is read
        as it would have been live: a command is answered, a new offer announced to its
        counterparties and watchers. It keeps what the platform said when it came: its chat,
        group or private, and the admin check made then. A stored positive check is trusted
        (the adapter asked the platform); no check is made now, so recovery never makes anyone
        an admin who was not one when they spoke. Older messages, and imported ones, are read
        silently, as history (their commands are not run). The replies go where live ones go,
        queued in the outbox with the handled mark on `outbox_platforms` (set it before
        calling), else kept in `recovered_replies` for the adapter to send. A message that
        fails again stays unread, logged, and does not stop the start.

        Run on start, it also builds the market state that `/price` and `/market` read
        (`Ledger.week_pulses`): seconds for a million posts, better spent before the first
        question than in answering it."""
        window = self.settings.recover_reply_window
        read = 0
        for message_row, message in self.ledger.unhandled_messages():
            now = self.clock()
            if message.announce and not (window and now - message.sent_at <= window):
                message = replace(message, announce=False)  # too late to answer: history
            try:
                with self.ledger.transaction():
                    replies = self._act(message_row, message, now, edited=message.edited)
                    self.ledger.mark_handled(message_row)
                    replies = self._queue(message_row, replies, now)
            except Exception:
                log.exception(
                    "could not read message %s in %s left by the last run; kept unread",
                    message.message_id,
                    message.chat_id,
                )
                continue
            self.recovered_replies.extend(r for r in replies if r.outbox_id is None)
            read += 1
        self.warm()
        return read

    def take_recovered_replies(self) -> list[Reply]:
        """The replies `recover()` made for platforms without an outbox, handed over once."""
        replies, self.recovered_replies = self.recovered_replies, []
        return replies

    def warm(self) -> None:
        """Build the market state the pulse commands read, if it is not built yet."""
        self.ledger.warm_market(
            now=self.clock(), lifetime=self.settings.offer_lifetime, zone=self.settings.zone
        )

    def read(self, text: str) -> Reading:
        """The offers a post makes and, when it makes none, the deal it ends ("H100已出，谢谢
        各位", issue 11)."""
        offers = self.parse(text)
        if any(o.price is not None and o.currency is None for o in offers) and (
            names_foreign_money(text)
        ):
            # A price in euros or Hong Kong dollars has no contract currency: booked unpriced,
            # rather than read as the group's own money in medians, matches and alerts.
            offers = [
                replace(o, price=None, price_per=None) if o.currency is None else o for o in offers
            ]
        return offers, None if offers else detect_withdrawal(text)

    # -- history in batches (issue 8): `gpudesk import` ---------------------------------------

    def prepare(self, message: ChatMessage) -> Prepared:
        """`message` ready for `read_history`: cleaned, marked as history, and read, all
        without the ledger, so an import does it before it takes the write lock."""
        message = clean(message)
        if message.announce:
            message = replace(message, announce=False)
        text = message.text
        if find_command(text) is not None or len(text) > MAX_READ_CHARS:
            return Prepared(message, None)  # `_act` says what becomes of it
        try:
            return Prepared(message, self.read(text))
        except Exception:
            return Prepared(message, None)  # read again in the batch, which then fails

    def read_history(self, batch: Sequence[Prepared]) -> None:
        """Store and read a batch of history as `handle` stores and reads each message (kept as
        imported, read for offers, reposts and withdrawals, never answered), in the caller's
        transaction and written as one (`Ledger.batched`): no savepoint per message, repost
        checks from memory. A message that cannot be read raises: the caller rolls the batch
        back and hands its messages to `handle`, each its own savepoint (`backfill`)."""
        if not batch:
            return
        ledger = self.ledger
        now = self.clock()  # one time of handling for the batch: it is written at once
        times = [prepared.message.sent_at for prepared in batch]
        with ledger.batched(since=min(times), until=max(times)):
            for prepared in batch:
                message = prepared.message
                stored = ledger.store_message(
                    message, received_at=now, source="import", handled=True
                )
                if not (stored.fresh or stored.changed) and stored.handled:
                    continue  # imported before, or delivered live, and read then
                self._act(stored.id, message, now, edited=stored.changed, reading=prepared.reading)
                if not stored.handled:
                    ledger.mark_handled(stored.id)

    def needs_admin(self, text: str) -> bool:
        """Whether `text` is a group-admin command (the adapter then asks the platform)."""
        found = find_command(text)
        return bool(found and found[0] and found[0].admin)

    def command_menu(self, language: str) -> list[tuple[str, str]]:
        """(command, description) pairs for a platform's command menu, in `language`."""
        return [(command.name, say(language, f"cmd.{command.name}")) for command in COMMANDS]

    # -- inside -------------------------------------------------------------------------------

    def _queue(self, message_row: int, replies: list[Reply], now: datetime) -> list[Reply]:
        """-- outbox (issue 9): the replies on `outbox_platforms`, written to the outbox."""
        durable = [r for r in replies if r.platform in self.outbox_platforms]
        if not durable:
            return replies
        queued = iter(self.ledger.queue_replies(durable, message_row=message_row, at=now))
        return [next(queued) if r.platform in self.outbox_platforms else r for r in replies]

    def _act(
        self,
        message_row: int,
        message: ChatMessage,
        now: datetime,
        *,
        edited: bool,
        reading: Reading | None = None,
    ) -> list[Reply]:
        """Read a stored message (the caller marks it read, in its transaction); `reading`:
        what `read` made of its text already (`prepare`)."""
        found = find_command(message.text)
        if found is not None:
            return self._command(message, found, now) if message.announce else []
        if len(message.text) > MAX_READ_CHARS:
            log.warning(
                "message %s is %d characters: stored, not read",
                message.message_id,
                len(message.text),
            )
            return []
        offers, said = self.read(message.text) if reading is None else reading
        kept = False  # a post edited into "已出" keeps what it advertised, and ends it
        if edited:
            self.ledger.drop_offers_of_message(message_row)
            kept = self.ledger.forget_listing_facts(message_row, keep_adverts=said is not None)
        fresh = [
            posted
            for item, offer in enumerate(offers)
            if (posted := self._book(message_row, item, message, offer)) is not None
        ]
        if said is not None:
            self.ledger.record_withdrawal(
                message_row=message_row,
                message=message,
                said=said,
                at=now if kept else message.sent_at,
                lifetime=self.settings.offer_lifetime,
                reply_to_id=message.message_id if kept else None,
            )
        replies = self._announce(message, fresh, now)
        # -- watches (issue 10): tell the members whose standing orders these offers meet.
        return replies + alerts_for(self.ledger, self.settings, message_row, message, fresh, now)

    def _book(
        self, message_row: int, item: int, message: ChatMessage, offer: Offer
    ) -> PostedOffer | None:
        """Put one offer in the book; None when it is the poster's standing offer again."""
        ledger = self.ledger
        at = message.sent_at
        expires_at = at + self.settings.offer_lifetime
        gpus = gpu_count(offer)
        unit_price = ledger.unit_prices(offer)[2]
        standing = ledger.repost_of(
            message.platform, message.poster_id, offer, gpus=gpus, unit_price=unit_price, at=at
        )
        if standing is not None:
            ledger.refresh_offer(standing, seen_at=at, expires_at=expires_at)
            self._advertised(message_row, item, message, offer, gpus, standing)
            return None
        offer_id = ledger.add_offer(
            message_row=message_row,
            item=item,
            message=message,
            offer=offer,
            gpus=gpus,
            posted_at=at,
            expires_at=expires_at,
        )
        self._advertised(message_row, item, message, offer, gpus, offer_id)
        return PostedOffer(
            id=offer_id,
            offer=offer,
            poster_id=message.poster_id,
            poster_name=message.poster_name,
            platform=message.platform,
            chat_id=message.chat_id,
            chat_title=message.chat_title,
            posted_at=at,
            unit_price=unit_price,
            gpus=gpus,
            message_id=message.message_id,
            link=message.link,
        )

    def _advertised(
        self,
        message_row: int,
        item: int,
        message: ChatMessage,
        offer: Offer,
        gpus: int | None,
        offer_id: int,
    ) -> None:
        """Every offer read is an advertisement, a repost too: the pulse counts listings from
        them (issue 11)."""
        self.ledger.record_advert(
            message_row=message_row,
            item=item,
            message=message,
            offer=offer,
            gpus=gpus,
            offer_id=offer_id,
        )

    def _announce(
        self, message: ChatMessage, fresh: list[PostedOffer], now: datetime
    ) -> list[Reply]:
        if not (fresh and message.announce and self.settings.match_replies):
            return []
        if not self.ledger.chat(message.platform, message.chat_id).match_replies:
            return []
        lang = self._lang(message)
        sections = []
        for posted in fresh:
            matches = find_counterparties(self.ledger, self.settings, posted, now=now)
            if matches:
                for found in matches:  # the weekly digest counts the matches made
                    self.ledger.record_match(
                        posted.id, found.offer.id, matched_at=now, gap=found.gap
                    )
                sections.append(match_text(lang, posted, matches, now))
        if not sections:
            return []  # silence when nothing matches: a busy group must not be spammed
        return [replace(self._reply(message, "\n\n".join(sections)), kind="match")]

    def _command(
        self, message: ChatMessage, found: tuple[Command | None, list[str]], now: datetime
    ) -> list[Reply]:
        command, args = found
        lang = self._lang(message)
        if command is None:
            name = message.text.split()[0]
            return [self._reply(message, say(lang, "error.unknown_command", command=name))]
        limited = self._rate_limited(message, now)
        if limited is not None:
            return limited
        ctx = Context(
            message=message, ledger=self.ledger, settings=self.settings, lang=lang, now=now
        )
        by_name = said_by_name(message.text)
        if command.admin and message.is_group and not (message.sender_is_admin or ctx.is_bot_admin):
            if by_name:
                return []  # "周报什么时候发" from a member: chat, not a refused command
            return [self._reply(message, say(lang, "error.admin_only", command=f"/{command.name}"))]
        try:
            answer = command.run(ctx, args)
        except UsageError as error:
            if by_name and args and not args[0][0].isascii():
                return []  # "价格 太高了": chat that starts with a name, not a bad argument
            answer = str(error)
        if isinstance(answer, str):
            return [self._reply(message, answer)]
        # An answer with a picture (/digest) comes as replies: thread them like any answer.
        here = self._reply(message, "")
        return [replace(r, reply_to_id=here.reply_to_id, private=here.private) for r in answer]

    def _rate_limited(self, message: ChatMessage, now: datetime) -> list[Reply] | None:
        """At most `commands_per_minute` per user; one warning, then silence, past that."""
        key = (message.platform, message.sender_id)
        times = self._command_times.setdefault(key, deque())
        while times and now - times[0] >= timedelta(minutes=1):
            times.popleft()
        times.append(now)
        over = len(times) - self.settings.commands_per_minute
        if over <= 0:
            return None
        if over == 1:
            text = say(self._lang(message), "error.slow_down", name=message.sender_name)
            return [self._reply(message, text)]
        return []

    def _lang(self, message: ChatMessage) -> str:
        return (
            self.ledger.chat(message.platform, message.chat_id).language or self.settings.language
        )

    @staticmethod
    def _reply(message: ChatMessage, text: str) -> Reply:
        return Reply(
            platform=message.platform,
            chat_id=message.chat_id,
            text=text,
            reply_to_id=message.message_id,
            private=not message.is_group,
        )


def clean(message: ChatMessage) -> ChatMessage:
    """Text safe to store and read: no NULs or other control characters, no lone surrogates."""
    fields = {}
    for name in ("text", "sender_name", "origin_sender_name", "chat_title"):
        value = getattr(message, name)
        if value is not None:
            cleaned = _clean_text(value)
            if cleaned is not value:
                fields[name] = cleaned
    return replace(message, **fields) if fields else message


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_UNCLEAN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")  # or lone surrogates


def _clean_text(text: str) -> str:
    """`text` itself when it is clean already (the common case: no copy made)."""
    if _UNCLEAN.search(text) is None:
        return text
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    return _CONTROL.sub("", text)
