"""The Telegram adapter: group messages from the Bot API in, the desk's replies out.

It only translates. A message (or edited message) in a group, supergroup or private chat becomes
a `ChatMessage` — chat and user ids as strings, the sender's full name (or the chat's title when
an anonymous admin posts as the group), a UTC-aware time, the original poster of a forward, a
t.me link for public groups, the bot's own `@username` stripped from a command — and goes to
`DeskPort.handle`. The `Reply` objects that come back are sent threaded under the original with
`reply_parameters`, in HTML parse mode with every user string escaped, split to Telegram's
limits. What is an offer, a command or a duplicate is the desk's call, not ours.

What the adapter adds around python-telegram-bot (22.x):

- Its own getUpdates loop. PTB's `Updater` confirms a batch to Telegram before the handlers
  run, so a crash loses it. Here the offset moves past an update only after `desk.handle()` has
  committed it to the ledger; at worst an update is delivered twice, and the ledger's unique
  key makes the second delivery a no-op. Updates that arrived while the bot was down are read
  on start (the webhook is deleted without dropping them).
- Reading never waits on sending: replies go to one outbox queue per chat, drained by their
  own tasks, so a burst of hundreds of offers is taken in at once while replies are paced out.
- Pacing by PTB's `AIORateLimiter`, narrowed to the send methods (a getChatMember for an admin
  check must not queue behind a group's replies), at ≤20 messages a minute per group with small
  bursts, about one a second per private chat and under 30 a second overall, and retrying after
  a 429 instead of dropping the reply (PTB's default is no retry).
- The token never reaches a log: httpx logs request URLs at INFO (silenced) and PTB logs its
  base URL at DEBUG (redacted by a filter).

Usage::

    adapter = TelegramAdapter(token, desk, logger=log, allowed_chat_ids=[-1001234567890])
    await adapter.run_until_stopped()    # until adapter.request_stop(), e.g. from SIGTERM

or `await adapter.start()` ... `await adapter.stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import re
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiolimiter import AsyncLimiter
from telegram import (
    BotCommand,
    LinkPreviewOptions,
    Message,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginUser,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, MessageLimit, ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ExtBot

from gpudesk.bot.outbox import AT_MOST_ONCE, OutboxPolicy, ReplyOutbox, expire_stale
from gpudesk.handlers.desk import DeskPort
from gpudesk.handlers.message import ChatMessage, Reply

__all__ = ["PLATFORM", "DeskPort", "TelegramAdapter", "split_text", "to_chat_message"]

PLATFORM = "telegram"

# Only these update types carry what the desk reads; Telegram remembers the list per bot.
ALLOWED_UPDATES = (Update.MESSAGE, Update.EDITED_MESSAGE)
# Endpoints that post into a chat: the only ones paced and retried on 429.
_PACED_ENDPOINTS = frozenset({"sendMessage", "sendPhoto"})
_ADMIN_STATUSES = frozenset({ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR})
_GROUP_TYPES = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})
_COMMAND_RE = re.compile(r"^(/[A-Za-z0-9_]+)@([A-Za-z0-9_]+)(?=\s|$)")
_DESK_ATTEMPTS = 3  # a desk error is retried this often before the update is skipped
_SEND_ATTEMPTS = 3  # a send that hits a network error (not a 429: the limiter retries those)
_OVERALL_BURST = 4  # sends at once after a quiet spell; no second holds more than the cap
_NAMES_REMEMBERED = 10_000  # user id -> display name, for @-mentions in replies
_NAMELESS = "👤"  # shown for a mentioned member whose name we have not seen (issue 10)


# --------------------------------------------------------------------------------------------
# Translation: pure functions, no I/O


def to_chat_message(
    update: Update,
    *,
    bot_username: str | None,
    allowed_chat_ids: Collection[str] = (),
) -> ChatMessage | None:
    """The desk's view of `update`, or None when there is nothing for the desk in it.

    Kept: text (or a caption) in a group or supergroup (only those in `allowed_chat_ids`, when
    given) and in a private chat. Not kept: channels, service messages, stickers and the like,
    and commands addressed to another bot (`/help@other_bot`). `sender_is_admin` is only set
    here for an anonymous admin (posting as the group); the adapter asks Telegram otherwise.
    """
    message = update.message or update.edited_message
    if message is None:
        return None
    chat = message.chat
    text = message.text or message.caption
    if not text:
        return None
    if chat.type in _GROUP_TYPES:
        if allowed_chat_ids and str(chat.id) not in allowed_chat_ids:
            return None
        is_group = True
    elif chat.type == ChatType.PRIVATE:
        is_group = False
    else:
        return None
    text = _own_command(text, bot_username)
    if text is None:
        return None

    anonymous_admin = False
    if message.sender_chat is not None:
        # Posted as a chat: an anonymous admin as the group itself, or a linked channel.
        sender_id = str(message.sender_chat.id)
        sender_name = message.sender_chat.effective_name or sender_id
        anonymous_admin = message.sender_chat.id == chat.id
    elif message.from_user is not None:
        sender_id = str(message.from_user.id)
        sender_name = message.from_user.full_name
    else:
        return None

    origin_id, origin_name = _forward_origin(message)
    return ChatMessage(
        platform=PLATFORM,
        chat_id=str(chat.id),
        sender_id=sender_id,
        sender_name=sender_name,
        text=text,
        sent_at=message.date.astimezone(UTC),
        message_id=str(message.message_id),
        chat_title=chat.title if is_group else None,
        is_group=is_group,
        reply_to_id=_replied_id(message),
        edited=update.edited_message is not None,
        sender_is_admin=anonymous_admin,
        origin_sender_id=origin_id,
        origin_sender_name=origin_name,
        link=f"https://t.me/{chat.username}/{message.message_id}"
        if is_group and chat.username
        else None,
    )


def _own_command(text: str, bot_username: str | None) -> str | None:
    """`text` with `@<our username>` dropped from a leading command; None when the command is
    addressed to another bot (in a group with several bots, it is not ours to answer)."""
    match = _COMMAND_RE.match(text)
    if match is None:
        return text
    if bot_username is None or match.group(2).lower() != bot_username.lower():
        return None
    return match.group(1) + text[match.end() :]


def _forward_origin(message: Message) -> tuple[str | None, str | None]:
    """Who first posted a forwarded message, when Telegram tells us (not for hidden users)."""
    origin = message.forward_origin
    if isinstance(origin, MessageOriginUser):
        return str(origin.sender_user.id), origin.sender_user.full_name
    if isinstance(origin, MessageOriginChat):
        return str(origin.sender_chat.id), origin.sender_chat.effective_name
    if isinstance(origin, MessageOriginChannel):
        return str(origin.chat.id), origin.chat.effective_name
    return None, None


def _replied_id(message: Message) -> str | None:
    replied = message.reply_to_message
    if replied is None:
        return None
    # In a forum topic every message "replies" to the topic's first message: not a real reply.
    if message.is_topic_message and replied.message_id == message.message_thread_id:
        return None
    return str(replied.message_id)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """`text` cut into pieces of at most `limit` UTF-16 units (how Telegram counts), at a line
    break if there is one in the second half of the piece, else at a space, else anywhere.
    The break it cuts at is dropped; blank pieces are dropped."""
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        fit = max(_fitting_prefix(rest, limit), 1)  # always progress, even at a tiny limit
        # A break right after the piece counts too: it is dropped, so it needs no room.
        cut = rest.rfind("\n", 0, fit + 1)
        if cut < fit // 2:
            cut = rest.rfind(" ", 0, fit + 1)
        if cut < fit // 2:
            pieces.append(rest[:fit])
            rest = rest[fit:]
        else:
            pieces.append(rest[:cut])
            rest = rest[cut + 1 :]
    pieces.append(rest)
    return [piece for piece in pieces if piece.strip()]


def _fitting_prefix(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


# --------------------------------------------------------------------------------------------
# Pacing


class _SendRateLimiter(AIORateLimiter):
    """PTB's AIORateLimiter for the send methods only, plus a limit per private chat.

    AIORateLimiter paces every request that names a chat; a getChatMember for an admin check
    would then wait behind that group's queued replies, and reading must not wait on sending.
    """

    def __init__(
        self,
        *,
        overall_per_second: float,
        group_per_minute: float,
        group_burst: int,
        private_per_second: float,
        max_retries: int,
    ) -> None:
        # AsyncLimiter is a leaky bucket: `max_rate` at once, then refilled steadily. Sized so
        # that no minute (per group) or second (overall) ever holds more than the cap: a group
        # gets a burst of `group_burst` (a split reply goes out at once), then the rest of its
        # minute's cap spread out; overall, a small burst (so a quiet bot answers at once, not
        # a pacing interval later) and the rest of each second's cap spread out.
        overall_burst = _OVERALL_BURST if overall_per_second > 2 * _OVERALL_BURST else 1
        super().__init__(
            overall_max_rate=overall_burst,
            overall_time_period=overall_burst / (overall_per_second - overall_burst)
            if overall_burst > 1
            else 1 / overall_per_second,
            group_max_rate=group_burst,
            group_time_period=60 * group_burst / (group_per_minute - group_burst),
            max_retries=max_retries,
        )
        self._private_per_second = private_per_second
        self._private_limiters: OrderedDict[int, AsyncLimiter] = OrderedDict()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if endpoint not in _PACED_ENDPOINTS:
            return await callback(*args, **kwargs)
        limiter = self._private_limiter(data.get("chat_id"))
        async with limiter if limiter is not None else contextlib.nullcontext():
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )

    def _private_limiter(self, chat_id: object) -> AsyncLimiter | None:
        try:
            numeric = int(chat_id)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return None
        if numeric <= 0:
            return None  # groups and channels have negative ids; AIORateLimiter paces them
        limiter = self._private_limiters.pop(numeric, None)
        if limiter is None:
            limiter = AsyncLimiter(1, 1 / self._private_per_second)
        self._private_limiters[numeric] = limiter  # most recently used last
        while len(self._private_limiters) > 1024:
            self._private_limiters.popitem(last=False)
        return limiter


class _TokenRedactor(logging.Filter):
    """Replaces the bot token in log records (PTB logs its base URL, token included, at DEBUG)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as it always does
            return True
        if self._token in message:
            record.msg = message.replace(self._token, "<token>")
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self._token in record.exc_text:
            record.exc_text = record.exc_text.replace(self._token, "<token>")
        return True


# --------------------------------------------------------------------------------------------
# The adapter


@dataclass(frozen=True, slots=True)
class _Outgoing:
    reply: Reply
    thread: bool  # whether reply_to_id is a message in the reply's own chat


class TelegramAdapter:
    """One Telegram bot serving the desk. Construct, then `start()`/`stop()` or
    `run_until_stopped()`; all on one event loop.

    `base_url` is PTB's: the token is appended to it (None: Telegram's own servers).
    `allowed_chat_ids`: the groups served (empty: every group the bot is in); private chats
    always reach the desk. The rest is for tests and tuning: `poll_timeout` is the long poll's
    seconds; `max_retries` how often a send is retried after a 429; a group gets at most
    `group_messages_per_minute` in any minute, `group_burst` of them at once; a private chat
    about `private_messages_per_second`; all chats together at most `messages_per_second`;
    `stop()` waits up to `drain_timeout` seconds for queued replies. `outbox`: the ledger,
    when replies are queued there (issue 9); `policy` says how late a reply left queued may
    still go on the next start (`OutboxPolicy`; older ones are marked expired).
    """

    def __init__(
        self,
        token: str,
        desk: DeskPort,
        *,
        logger: logging.Logger,
        base_url: str | None = None,
        allowed_chat_ids: Collection[int | str] = (),
        poll_timeout: float = 30.0,
        max_retries: int = 3,
        group_messages_per_minute: float = 20,
        group_burst: int = 3,
        private_messages_per_second: float = 1,
        messages_per_second: float = 25,
        drain_timeout: float = 10.0,
        outbox: ReplyOutbox | None = None,
        policy: OutboxPolicy | None = None,
    ) -> None:
        if not token:
            raise ValueError("a Telegram bot token is required")
        if max_retries < 1:
            raise ValueError("max_retries must be at least 1, or a 429 drops the reply")
        if not 1 <= group_burst < group_messages_per_minute:
            raise ValueError("group_burst must be at least 1 and below group_messages_per_minute")
        if messages_per_second <= 0 or private_messages_per_second <= 0:
            raise ValueError("message rates must be positive")
        self._token = token
        self._desk = desk
        self._log = logger
        self._allowed_chat_ids = frozenset(str(chat_id) for chat_id in allowed_chat_ids)
        self._poll_timeout = poll_timeout
        self._drain_timeout = drain_timeout
        self._outbox = outbox  # -- outbox (issue 9): the ledger, when replies are queued there
        self._policy = policy or OutboxPolicy()
        self._quiet_libraries()

        builder = (
            ApplicationBuilder()
            .token(token)
            .updater(None)  # we poll ourselves: see the module docstring
            .rate_limiter(
                _SendRateLimiter(
                    overall_per_second=messages_per_second,
                    group_per_minute=group_messages_per_minute,
                    group_burst=group_burst,
                    private_per_second=private_messages_per_second,
                    max_retries=max_retries,
                )
            )
        )
        if base_url is not None:
            builder = builder.base_url(base_url)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()

        self._offset: int | None = None
        self._bot_username: str | None = None
        self._names: OrderedDict[str, str] = OrderedDict()
        self._outboxes: dict[str, deque[_Outgoing]] = {}
        self._senders: set[asyncio.Task[None]] = set()
        self._poll_task: asyncio.Task[None] | None = None
        self._stop_requested = asyncio.Event()
        self._started = False
        self._fatal: BaseException | None = None

    @property
    def bot(self) -> ExtBot[Any]:
        return self.application.bot

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, announce the command menu, and start reading in the background."""
        if self._started:
            raise RuntimeError("TelegramAdapter already started")
        self._stop_requested.clear()
        self._fatal = None
        try:
            await self.application.initialize()  # also calls getMe
            # Without dropping pending updates: what arrived while we were down is still read.
            await self.bot.delete_webhook(drop_pending_updates=False)
            me = await self.bot.get_me()
            self._bot_username = me.username
            if not me.can_read_all_group_messages:
                self._log.warning(
                    "Telegram: privacy mode is on for @%s, so in groups it only sees commands "
                    "and replies to it, not offers. Turn it off with @BotFather (/setprivacy → "
                    "Disable), then remove and re-add the bot to each group.",
                    me.username,
                )
            await self._publish_command_menu()
            await self.application.start()
        except BaseException:
            await self._close()
            raise
        self._started = True
        self._resend_unsent()
        self._poll_task = asyncio.create_task(self._poll_loop(), name="telegram-poll")
        # If reading ever ends on its own (a refused token), run_until_stopped() must return.
        self._poll_task.add_done_callback(lambda _: self._stop_requested.set())
        self._log.info("Telegram: polling as @%s", self._bot_username)

    def request_stop(self) -> None:
        """Ask `run_until_stopped()` to return; safe from a signal handler on the loop."""
        self._stop_requested.set()

    async def stop(self) -> None:
        """Stop reading, send what is queued (up to `drain_timeout`), confirm the offset."""
        self._stop_requested.set()
        if not self._started:
            return
        try:
            if self._poll_task is not None:
                # Cancellation lands only where no update is half handled (see _take).
                self._poll_task.cancel()
                try:
                    await self._poll_task
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise  # stop() itself is being cancelled, not just the poll
                self._poll_task = None
            await self._drain_outboxes()
            await self._confirm_offset()
        finally:
            await self._close()

    async def wait_finished(self) -> None:
        """Return once a stop is requested or reading ends on its own; re-raise a fatal error
        (a revoked token) so the caller ends with it."""
        await self._stop_requested.wait()
        if self._fatal is not None:
            raise self._fatal

    async def run_until_stopped(self) -> None:
        """`start()`, serve until `request_stop()` (or a fatal error, re-raised), `stop()`."""
        await self.start()
        try:
            await self._stop_requested.wait()
        finally:
            await self.stop()
        if self._fatal is not None:
            raise self._fatal

    async def _close(self) -> None:
        self._started = False
        try:
            if self.application.running:
                await self.application.stop()
        finally:
            await self.application.shutdown()

    async def _publish_command_menu(self) -> None:
        # English is the default for every language but Chinese.
        for language, code in (("en", None), ("zh", "zh")):
            commands = [
                BotCommand(name.lstrip("/"), description)
                for name, description in self._desk.command_menu(language)
            ]
            try:
                await self.bot.set_my_commands(commands, language_code=code)
            except TelegramError as error:  # a menu is a nicety, not a reason to stay down
                self._log.error("Telegram: could not set the %s command menu: %s", language, error)

    async def _confirm_offset(self) -> None:
        """Tell Telegram what we handled, so a restart does not see it again (best effort)."""
        if self._offset is None:
            return
        try:
            # An update is confirmed by a getUpdates with an offset past it; asking for one
            # update with timeout 0 confirms the handled ones and hands nothing out for good.
            await self.bot.get_updates(offset=self._offset, limit=1, timeout=0)
        except TelegramError as error:
            self._log.warning(
                "Telegram: could not confirm updates before %s (they will come again and be "
                "ignored): %s",
                self._offset,
                error,
            )

    def _quiet_libraries(self) -> None:
        # RetryAfter.retry_after as a timedelta: without this, PTB 22 warns on every 429.
        os.environ["PTB_TIMEDELTA"] = "1"
        # httpx logs each request URL at INFO, and the URL carries the token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        redactor = _TokenRedactor(self._token)
        names = ["httpx", "httpcore", self._log.name]
        names += [name for name in logging.root.manager.loggerDict if name.startswith("telegram")]
        for name in names:
            logger = logging.getLogger(name)
            if not any(
                isinstance(f, _TokenRedactor) and f._token == self._token for f in logger.filters
            ):
                logger.addFilter(redactor)

    # --- reading -------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        failures = 0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=self._offset,
                    timeout=self._poll_timeout,
                    allowed_updates=ALLOWED_UPDATES,
                )
            except InvalidToken as error:
                self._log.critical("Telegram: the bot token was refused (%s); stopping", error)
                self._fatal = error
                self._stop_requested.set()
                return
            except RetryAfter as error:
                await asyncio.sleep(_seconds(error.retry_after))
                continue
            except Conflict as error:
                failures += 1
                self._log.error(
                    "Telegram: another process polls with this token (%s); retrying", error
                )
                await asyncio.sleep(_backoff(failures))
                continue
            except TelegramError as error:  # network trouble, Telegram hiccups
                failures += 1
                self._log.warning("Telegram: getUpdates failed (%s); retrying", error)
                await asyncio.sleep(_backoff(failures))
                continue
            except Exception:  # e.g. an update PTB cannot parse: log it, never stop reading
                failures += 1
                self._log.exception("Telegram: getUpdates failed unexpectedly; retrying")
                await asyncio.sleep(_backoff(failures))
                continue
            failures = 0
            for update in updates:
                if self._stop_requested.is_set():
                    return  # the rest stays unconfirmed and comes again on the next start
                await self._take(update)

    async def _take(self, update: Update) -> None:
        """Hand one update to the desk, then move the offset past it and queue the replies.

        The desk call, the offset move and the queueing have no await between them, so a
        cancelled poll task never leaves an update handled but unconfirmed in our books.
        """
        source = update.effective_message
        replies: list[Reply] = []
        for attempt in range(1, _DESK_ATTEMPTS + 1):
            try:
                message = await self._translate(update)
                replies = self._desk.handle(message) if message is not None else []
                break
            except Exception:
                if attempt == _DESK_ATTEMPTS:
                    self._log.exception(
                        "Telegram: skipping update %s after %d failed attempts",
                        update.update_id,
                        attempt,
                    )
                    replies = []
                    break
                self._log.exception(
                    "Telegram: update %s failed (attempt %d); retrying", update.update_id, attempt
                )
                await asyncio.sleep(0.5 * attempt)
        self._offset = update.update_id + 1
        source_chat = str(source.chat.id) if source is not None else None
        for reply in replies:
            self._enqueue(reply, source_chat)

    async def _translate(self, update: Update) -> ChatMessage | None:
        message = to_chat_message(
            update, bot_username=self._bot_username, allowed_chat_ids=self._allowed_chat_ids
        )
        if message is None:
            return None
        self._remember_name(message.sender_id, message.sender_name)
        if (
            message.is_group
            and not message.sender_is_admin
            and update.effective_message is not None
            and update.effective_message.sender_chat is None
            and self._desk.needs_admin(message.text)
        ):
            message = replace(message, sender_is_admin=await self._is_admin(message))
        return message

    async def _is_admin(self, message: ChatMessage) -> bool:
        try:
            member = await self.bot.get_chat_member(int(message.chat_id), int(message.sender_id))
        except TelegramError as error:
            self._log.warning(
                "Telegram: could not check whether %s is an admin of %s (%s); assuming not",
                message.sender_id,
                message.chat_id,
                error,
            )
            return False
        return member.status in _ADMIN_STATUSES

    def _remember_name(self, user_id: str, name: str) -> None:
        self._names.pop(user_id, None)
        self._names[user_id] = name
        while len(self._names) > _NAMES_REMEMBERED:
            self._names.popitem(last=False)

    # --- sending -------------------------------------------------------------------------

    async def send(self, reply: Reply) -> None:
        """Queue a reply the desk did not answer a message with (a digest, an alert), paced
        like every other; in the outbox first, when there is one, so a crash does not lose it."""
        if self._outbox is not None and reply.outbox_id is None and reply.platform == PLATFORM:
            [reply] = self._outbox.queue_replies([reply], message_row=None, at=datetime.now(UTC))
        self._enqueue(reply, None)

    def _enqueue(self, reply: Reply, source_chat: str | None) -> None:
        if reply.platform != PLATFORM:
            self._log.warning("Telegram: dropping a reply for platform %r", reply.platform)
            return
        # A private answer to a group message cannot quote it: thread only within one chat.
        thread = reply.reply_to_id is not None and (
            not reply.private or reply.chat_id == source_chat
        )
        outbox = self._outboxes.get(reply.chat_id)
        if outbox is None:
            outbox = self._outboxes[reply.chat_id] = deque()
            task = asyncio.create_task(self._drain(reply.chat_id, outbox), name="telegram-send")
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)
        outbox.append(_Outgoing(reply, thread))

    async def _drain(self, chat_id: str, outbox: deque[_Outgoing]) -> None:
        """Send one chat's replies in order; the task ends when the chat's outbox is empty."""
        try:
            while outbox:
                sent: bool | None = None
                self._begin(outbox[0].reply)
                try:
                    sent = await self._send(outbox[0])
                except Exception:  # a bug, not Telegram's no (_send logs those): keep going
                    self._log.exception("Telegram: could not send a reply to %s", chat_id)
                self._finish(outbox[0].reply, sent)
                outbox.popleft()
        finally:
            if self._outboxes.get(chat_id) is outbox:
                del self._outboxes[chat_id]

    async def _drain_outboxes(self) -> None:
        if not self._senders:
            return
        _, pending = await asyncio.wait(set(self._senders), timeout=self._drain_timeout)
        if pending:
            unsent = sum(len(outbox) for outbox in self._outboxes.values())
            self._log.warning(
                "Telegram: stopping with %d repl%s unsent after %.1f s",
                unsent,
                "y" if unsent == 1 else "ies",
                self._drain_timeout,
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- outbox (issue 9): replies queued in the ledger are marked once sent, and what a crash
    # or a stop left queued is sent again on start (at least once: see gpudesk.bot.outbox).

    def _resend_unsent(self) -> None:
        if self._outbox is None:
            return
        # Too late to be of use after a long outage: marked expired (and logged), not sent.
        unsent = expire_stale(
            self._outbox,
            self._outbox.queued_replies(PLATFORM),
            now=datetime.now(UTC),
            policy=self._policy,
            where="Telegram",
            logger=self._log,
        )
        if unsent:
            self._log.info("Telegram: sending %d repl%s left queued", len(unsent), _ies(unsent))
        for queued in unsent:
            # The ledger dropped reply_to_id where it names a message of another chat.
            self._enqueue(queued.reply, queued.reply.chat_id)

    def _begin(self, reply: Reply) -> None:
        """Alerts and digests go at most once (issues 10, 7): marked before the send, never
        resent."""
        if self._outbox is not None and reply.outbox_id is not None and reply.kind in AT_MOST_ONCE:
            self._outbox.begin_reply(reply.outbox_id, at=datetime.now(UTC))

    def _finish(self, reply: Reply, sent: bool | None) -> None:
        """Mark a queued reply sent or refused; one that could not be sent now stays queued."""
        if self._outbox is None or reply.outbox_id is None or sent is None:
            return
        try:
            self._outbox.finish_reply(
                reply.outbox_id,
                at=datetime.now(UTC),
                status="sent" if sent else "failed",
                note=None if sent else "refused by Telegram",
            )
        except Exception:  # the reply is out; at worst it goes again after a restart
            self._log.exception("Telegram: could not mark reply %s sent", reply.outbox_id)

    async def _send(self, item: _Outgoing) -> bool | None:
        """Send one reply: True once sent; False when Telegram refuses it for good, None when
        it could not be sent now (both logged). The desk's record survives either way."""
        reply = item.reply
        chat_id: int | str = int(reply.chat_id) if _is_int(reply.chat_id) else reply.chat_id
        reply_parameters = (
            ReplyParameters(message_id=int(reply.reply_to_id), allow_sending_without_reply=True)
            if item.thread and reply.reply_to_id is not None and _is_int(reply.reply_to_id)
            else None
        )
        image = reply.image
        # @-mentions lead the first message; there is no one to mention in a private chat.
        mentions = "" if reply.private else self._mentions(reply.mention_ids)
        room = utf16_len(_plain(mentions)) + 1 if mentions else 0
        try:
            if image is not None:
                fits = room + utf16_len(reply.text) <= MessageLimit.CAPTION_LENGTH
                caption = reply.text if fits and reply.text.strip() else None
                await self._call(
                    lambda: self.bot.send_photo(
                        chat_id,
                        photo=image,
                        caption=_html(caption, mentions) if caption is not None else None,
                        parse_mode=ParseMode.HTML,
                        reply_parameters=reply_parameters,
                    )
                )
                if caption is not None or not reply.text.strip():
                    return True
            limit = MessageLimit.MAX_TEXT_LENGTH - room
            for index, piece in enumerate(split_text(reply.text, limit)):
                text = _html(piece, mentions if index == 0 else "")
                await self._call(
                    lambda text=text: self.bot.send_message(
                        chat_id,
                        text,
                        parse_mode=ParseMode.HTML,
                        reply_parameters=reply_parameters,
                        link_preview_options=LinkPreviewOptions(is_disabled=True),
                    )
                )
        except (Forbidden, BadRequest) as error:
            if isinstance(error, Forbidden) and self._fall_back(reply):
                return True
            self._log.warning("Telegram: could not send to %s: %s", reply.chat_id, error)
            return False
        except TelegramError as error:  # including a 429 still there after every retry
            self._log.error("Telegram: gave up sending to %s: %s", reply.chat_id, error)
            return None
        return True

    async def _call(self, send: Callable[[], Awaitable[Message]]) -> Message:
        """`send()`, again after a network error (the rate limiter already retries 429s).

        A timed-out send may have arrived after all: a rare duplicate beats a lost reply.
        """
        for attempt in range(1, _SEND_ATTEMPTS + 1):
            try:
                return await send()
            except (BadRequest, Forbidden):
                raise  # Telegram's answer, not the network's: trying again changes nothing
            except NetworkError as error:
                if attempt == _SEND_ATTEMPTS:
                    raise
                self._log.warning("Telegram: send failed (%s); trying again", error)
                await asyncio.sleep(_backoff(attempt))
        raise AssertionError("unreachable")

    def _fall_back(self, reply: Reply) -> bool:
        """-- watches (issue 10): a private alert Telegram refused (the member never started
        the bot, or blocked it) goes to the group where they set the watch, as a mention,
        queued like any reply there. False when the reply names no such group."""
        if not reply.private or reply.fallback_chat_id is None:
            return False
        member = reply.chat_id
        if member not in self._names:  # a mention must show a name; theirs is not known yet
            self._remember_name(member, _NAMELESS)
        self._log.info(
            "Telegram: %s cannot be messaged privately; mentioning them in %s",
            member,
            reply.fallback_chat_id,
        )
        in_group = replace(
            reply,
            chat_id=reply.fallback_chat_id,
            private=False,
            reply_to_id=None,
            mention_ids=(member,),
            fallback_chat_id=None,
            outbox_id=None,  # the private reply's outbox row is the one marked done
        )
        self._enqueue(in_group, None)
        return True

    def _mentions(self, user_ids: Collection[str]) -> str:
        """HTML mentions of the users whose names we have seen (a mention needs a name to
        show; the others are left out), separated by spaces."""
        return " ".join(
            f'<a href="tg://user?id={user_id}">{html.escape(self._names[user_id], quote=False)}</a>'
            for user_id in user_ids
            if _is_int(user_id) and int(user_id) > 0 and user_id in self._names
        )


def _html(text: str, mentions: str = "") -> str:
    """Plain `text` for HTML parse mode: every character escaped, after the mention links."""
    escaped = html.escape(text, quote=False)
    return f"{mentions} {escaped}" if mentions else escaped


def _plain(mentions: str) -> str:
    """What the reader sees of the mention links: the names."""
    return html.unescape(re.sub(r"<[^>]+>", "", mentions))


def _ies(items: Collection[object]) -> str:
    return "y" if len(items) == 1 else "ies"


def _is_int(value: str) -> bool:
    return value.lstrip("-").isdigit()


def _seconds(period: timedelta | float) -> float:
    return period.total_seconds() if isinstance(period, timedelta) else float(period)


def _backoff(failures: int) -> float:
    return min(30.0, 0.5 * 2 ** (failures - 1))
