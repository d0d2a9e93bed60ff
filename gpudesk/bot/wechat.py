"""The WeChat adapter: room messages from a wechaty puppet service in, the desk's replies out.

It only translates. A text message in a WeChat room becomes a `ChatMessage` (room id as
`chat_id`, room topic as `chat_title`, sender contact id and name, the platform's message id,
a UTC-aware time, the bot's own @-mention stripped from the text) and goes to `DeskPort.handle`;
the `Reply` objects that come back are sent in their conversation, @-mentioning `mention_ids`.
Deciding what is an offer, a command or a duplicate is the desk's job: every delivery is
handed over, re-deliveries included, and the ledger's unique key makes them no-ops.

What the adapter adds around the SDK (python-wechaty 0.10.7 over wechaty-puppet-service):

- Its own connection loop. `Wechaty.start()` is not used: on a network error it sleeps a
  fixed 60 s, on a puppet error it *stops the event loop*, and its message bridge drops
  repeated message ids in a process-wide cache (the ledger must decide that, not the SDK).
  We drive the same pieces (`init_puppet()`, `puppet.start()`) and listen to the puppet's
  events directly; when the event stream ends or the service cannot be reached we log it and
  reconnect with exponential backoff, forever, until `stop()`.
- Durable replies (issue 9). Replies wait in an outbox (`gpudesk.bot.outbox`): the ledger,
  where the desk queues them in the transaction that stores the message they answer, so a
  crash or a stop loses none; what is left queued is sent after a restart. One sender task per
  conversation reads its queue from there and sends, oldest first:
  - paced: a minimum gap between two messages, stretched by random jitter;
  - within a daily cap per conversation, counted from the outbox's sent rows of the day in the
    desk's time zone, so a restart does not reset it; what is over the cap waits for the next
    day, never dropped;
  - with `batch_seconds`, the "match" replies to a room gathered for that long (from the oldest)
    and sent as one message, all their outbox rows marked sent in one transaction;
  - never stale: a reply queued longer ago than the policy allows (after an outage) is marked
    `expired` and logged, not sent (`gpudesk.bot.outbox.expire_stale`).
  Delivery is at least once (a crash between a send and its mark sends it again), except
  alerts and digests, which are marked before they go and never sent twice.
- Every handler catches and logs its own exceptions; the SDK would only log them itself.

One adapter per process: the SDK keeps process-wide caches of contacts and rooms, which the
adapter clears on every (re)connection.

Usage::

    adapter = WechatAdapter(endpoint="127.0.0.1:8788", token="...", desk=desk)
    await adapter.start()        # returns at once; connects and reconnects in the background
    ...
    await adapter.stop()
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Self

from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from gpudesk.bot import wechat_compat
from gpudesk.bot.outbox import (
    AT_MOST_ONCE,
    MemoryOutbox,
    OutboxPolicy,
    QueuedReply,
    ReplyOutbox,
    expire_stale,
)
from gpudesk.handlers.desk import DeskPort
from gpudesk.handlers.message import ChatMessage, Reply

if TYPE_CHECKING:
    from wechaty import Wechaty
    from wechaty.user import Message, Room
    from wechaty_puppet import (
        EventErrorPayload,
        EventLoginPayload,
        EventLogoutPayload,
        EventMessagePayload,
        EventScanPayload,
    )
    from wechaty_puppet_service import PuppetService

__all__ = ["PLATFORM", "DeskPort", "WechatAdapter", "clear_sdk_caches"]

PLATFORM = "wechat"
AT_SEPARATOR = "\u2005"  # WeChat puts this (a four-per-em space) after an @name
_MILLISECOND_TIMESTAMPS = 2_145_888_000  # above this a puppet timestamp is in ms (SDK's rule)
_MESSAGE_ATTEMPTS = 3  # tries to read one incoming message before giving up on it
_SEND_ATTEMPTS = 5  # tries to send one reply (while logged in) before marking it failed

log = logging.getLogger(__name__)

# How a connection to the puppet service ends in practice: refused or reset (OSError), no
# answer (TimeoutError), the gRPC stream cut or failed. These are logged in one line;
# anything else also gets its traceback.
_CONNECTION_ERRORS = (OSError, TimeoutError, GRPCError, ProtocolError, StreamTerminatedError)


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """One WeChat message to send: text (with @-mentions) or a PNG."""

    conversation_id: str
    text: str = ""
    mention_ids: tuple[str, ...] = ()
    image: bytes | None = None


def _load_sdk(cache_dir: Path) -> ModuleType:
    """Import wechaty with its cache dir set: it creates `CACHE_DIR` (default `.wechaty/` in
    the working directory) as a side effect of being imported."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["CACHE_DIR"] = str(cache_dir)
    wechat_compat.apply()
    import wechaty

    return wechaty


def clear_sdk_caches() -> None:
    """Forget the SDK's process-wide state: its contact/room/tag pools (entries stay bound to
    the puppet of the connection that made them) and its seen-message-id set."""
    if "wechaty" not in sys.modules:  # nothing cached before the SDK is imported
        return
    from wechaty.user import Contact, Room, Tag
    from wechaty.utils.async_helper import SingleIdContainer

    Contact._pool.clear()
    Room._pool.clear()
    Tag._pool.clear()
    SingleIdContainer._instance = None


class _RedactToken(logging.Filter):
    """PuppetService logs the token in clear at every connection, and at DEBUG the HTTP/2
    header encoder (hpack) logs it as the `:authority` header (issue 9); hide it."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()  # hpack passes the header in the record's args
        except Exception:  # a malformed record: let logging report it as it always does
            return True
        if self._token in message:
            record.msg = message.replace(self._token, "<token>")
            record.args = None
        return True


# The loggers that write the token (hpack's: header by header, at DEBUG).
_TOKEN_LOGGERS = ("PuppetService", "hpack.hpack", "hpack.table")


class WechatAdapter:
    """Connects one WeChat account (through a puppet service) to the desk.

    endpoint: the puppet service as "host:port" (plain gRPC, no TLS in this SDK). Always
        given: without it the SDK looks the token up online and retries that every 60 s.
    token: the puppet service token; any non-empty string for a local service.
    desk: anything with `handle()` and `needs_admin()`.
    min_seconds_between_messages: least time between two sends in one conversation; each gap
        is stretched by a random 0..`jitter_ratio` of itself. 0 disables pacing (tests).
    daily_cap: most messages sent per conversation per day (midnight to midnight in `zone`),
        counted in the outbox; the rest wait for the next day, logged once.
    batch_seconds: when > 0, "match" replies to a room are gathered for this long and sent
        as one message (mentions merged); other replies are never delayed.
    outbox: where replies wait: the ledger (durable; pass the desk's when it queues "wechat"
        replies, `Desk.outbox_platforms`), else a `MemoryOutbox` (a stop loses what waits).
    policy: how late a queued reply may still go (`OutboxPolicy`); past it, it is expired.
    zone: the time zone of the daily cap's day (the desk's); clock: now, as an aware datetime
        (tests fake it): the cap's day, batch windows and ages read it; pacing runs on the
        event loop's clock.
    recheck_seconds: how often a sender held by the daily cap or a batch window looks again.
    cache_dir: where the SDK may write (it insists on a directory); default under the
        system temp dir, never the working directory.
    reconnect_initial_seconds, reconnect_max_seconds: backoff after a failed or lost
        connection: doubles from initial up to max, reset by a successful login.
    rpc_timeout_seconds: bound on handling one message, sending one reply, or a ding.
    liveness_seconds: how often to ding the service to prove the connection is alive (a
        dead TCP connection is otherwise never noticed); None disables it.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        token: str,
        desk: DeskPort,
        min_seconds_between_messages: float = 10.0,
        jitter_ratio: float = 0.3,
        daily_cap: int = 200,
        batch_seconds: float = 0.0,
        cache_dir: Path | str | None = None,
        reconnect_initial_seconds: float = 2.0,
        reconnect_max_seconds: float = 120.0,
        rpc_timeout_seconds: float = 30.0,
        liveness_seconds: float | None = 60.0,
        rng: random.Random | None = None,
        outbox: ReplyOutbox | None = None,
        policy: OutboxPolicy | None = None,
        zone: tzinfo = UTC,
        clock: Callable[[], datetime] | None = None,
        recheck_seconds: float = 60.0,
    ) -> None:
        host, sep, port = endpoint.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"endpoint {endpoint!r} must be host:port, e.g. '127.0.0.1:8788'")
        if not token:
            raise ValueError("token must be a non-empty string (any string for a local service)")
        if min_seconds_between_messages < 0 or jitter_ratio < 0 or batch_seconds < 0:
            raise ValueError("pacing, jitter and batching must not be negative")
        if daily_cap < 1:
            raise ValueError("daily_cap must be at least 1")
        if liveness_seconds is not None and liveness_seconds <= 0:
            raise ValueError("liveness_seconds must be positive (or None to disable)")
        if not 0 < reconnect_initial_seconds <= reconnect_max_seconds:
            raise ValueError("need 0 < reconnect_initial_seconds <= reconnect_max_seconds")
        if recheck_seconds <= 0:
            raise ValueError("recheck_seconds must be positive")

        self._endpoint = endpoint
        self._host, self._port = host, int(port)
        self._token = token
        self._desk = desk
        self._min_gap = min_seconds_between_messages
        self._jitter = jitter_ratio
        self._daily_cap = daily_cap
        self._batch_seconds = batch_seconds
        self._cache_dir = Path(cache_dir or Path(tempfile.gettempdir()) / "gpudesk-wechaty")
        self._backoff_initial = reconnect_initial_seconds
        self._backoff_max = reconnect_max_seconds
        self._rpc_timeout = rpc_timeout_seconds
        self._liveness_seconds = liveness_seconds
        self._rng = rng or random.Random()

        self._bot: Wechaty | None = None
        self._self_id: str | None = None
        self._self_name: str = ""
        self._logged_in = asyncio.Event()
        # (message id, attempt), in arrival order
        self._inbox: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        # -- outbox (issue 9): replies wait there; one sender task per conversation
        self._outbox: ReplyOutbox = outbox if outbox is not None else MemoryOutbox()
        self._policy = policy or OutboxPolicy()
        self._zone = zone
        self._clock = clock or _utc_now
        self._recheck = recheck_seconds
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._next_send_at: dict[str, float] = {}
        self._failures: dict[int, int] = {}  # outbox id -> failed sends
        self._cap_warned: set[tuple[str, date]] = set()
        self._connections = 0
        self._redact = _RedactToken(token)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Connected and logged in: messages are being received and replies sent."""
        return self._logged_in.is_set()

    @property
    def outbox(self) -> ReplyOutbox:
        """Where the replies wait (the ledger, or a `MemoryOutbox`)."""
        return self._outbox

    @property
    def connections(self) -> int:
        """How many times a connection has been attempted (1 after the first)."""
        return self._connections

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait for the puppet service to report the account logged in."""
        async with asyncio.timeout(timeout):
            await self._logged_in.wait()

    async def start(self) -> None:
        """Start connecting in the background and return at once."""
        if self._supervisor is not None:
            raise RuntimeError("WechatAdapter already started")
        for name in _TOKEN_LOGGERS:
            logging.getLogger(name).addFilter(self._redact)
        self._supervisor = self._spawn(self._supervise(), "wechat-connection")
        self._spawn(self._consume(), "wechat-inbox")
        self._resume_queued()

    async def stop(self) -> None:
        """Stop receiving and sending; close the connection. Replies not yet sent stay queued
        in the outbox, for the next start (lost only with a `MemoryOutbox`)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._supervisor = None
        self._senders.clear()
        self._wakeups.clear()
        try:
            unsent = len(self._outbox.unsent_replies(PLATFORM))
        except Exception as error:  # a ledger closed first: nothing to count, nothing lost
            log.debug("WeChat: could not count unsent replies: %r", error)
            unsent = 0
        if unsent:
            durable = not isinstance(self._outbox, MemoryOutbox)
            fate = "kept for the next start" if durable else "dropped"
            log.warning("WeChat: stopping with %d unsent repl%s, %s", unsent, _ies(unsent), fate)
        await self._close_session()
        for name in _TOKEN_LOGGERS:
            logging.getLogger(name).removeFilter(self._redact)
        log.info("WeChat: stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- connection -----------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Connect, read events until the stream ends, reconnect with backoff; never returns."""
        failures = 0
        while True:
            try:
                await self._run_session()
                log.warning("WeChat: the event stream from %s ended", self._endpoint)
            except asyncio.CancelledError:
                raise
            except _CONNECTION_ERRORS as error:
                log.warning("WeChat: connection to %s lost or refused: %r", self._endpoint, error)
            except Exception as error:
                log.warning(
                    "WeChat: connection to %s failed: %r", self._endpoint, error, exc_info=True
                )
            # A session that got as far as login was healthy: start the backoff over.
            failures = 0 if self._logged_in.is_set() else failures + 1
            await self._close_session()
            delay = min(self._backoff_max, self._backoff_initial * 2 ** max(failures - 1, 0))
            delay *= self._rng.uniform(1.0, 1.25)  # so restarted bots do not reconnect in step
            log.warning("WeChat: reconnecting to %s in %.1f s", self._endpoint, delay)
            await asyncio.sleep(delay)

    async def _run_session(self) -> None:
        self._connections += 1
        # The SDK probes the port with a blocking telnet connect (3 s timeout) inside the
        # event loop; probing asynchronously first keeps an unreachable service from
        # stalling every other task at each retry.
        async with asyncio.timeout(self._rpc_timeout):
            _, writer = await asyncio.open_connection(self._host, self._port)
        writer.close()
        await writer.wait_closed()

        wechaty = _load_sdk(self._cache_dir)
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from wechaty_puppet.schemas.puppet import PuppetOptions

        clear_sdk_caches()
        options = wechaty.WechatyOptions(
            puppet="wechaty-puppet-service",
            # Fresh options each time: the dataclass default instance is shared and mutated.
            puppet_options=PuppetOptions(token=self._token, end_point=self._endpoint),
            # An in-memory scheduler, never started: the default one is a SQLite job store.
            # (The plugin web server, which would bind `port`, starts only in the SDK's own
            # login handler, which we do not use.)
            scheduler=AsyncIOScheduler(),
        )
        bot: Wechaty = wechaty.Wechaty(options)
        self._bot = bot
        await bot.init_puppet()  # binds bot.Message/Contact/Room to this connection's puppet
        puppet = bot.puppet
        puppet.on("login", self._on_login)
        puppet.on("logout", self._on_logout)
        puppet.on("scan", self._on_scan)
        puppet.on("message", self._on_message)
        puppet.on("error", self._on_error)  # pyee raises on an 'error' nobody listens to
        log.info("WeChat: connecting to puppet service %s", self._endpoint)
        # puppet.start() sends Stop + Start, then reads the event stream until it ends. It has
        # no timeouts, and a connection that dies without a FIN/RST (network partition, NAT
        # expiry) would leave it waiting forever: the probe turns that into a reconnect.
        tasks = {asyncio.ensure_future(puppet.start())}
        if self._liveness_seconds is not None:
            tasks.add(asyncio.ensure_future(self._probe_liveness(puppet, self._liveness_seconds)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # re-raises what ended the session

    async def _probe_liveness(self, puppet: PuppetService, interval: float) -> None:
        """Every `interval` seconds, ding the service; no answer in time ends the session."""
        while True:
            await asyncio.sleep(interval)
            try:
                async with asyncio.timeout(self._rpc_timeout):
                    await puppet.ding("gpudesk-liveness")
            except GRPCError as error:
                # An error status is still an answer: the service is there. Some puppets
                # do not implement ding, which must not make us reconnect every minute.
                log.debug("WeChat: ding answered with %s", error.status)
            except TimeoutError:
                raise ConnectionError(
                    f"puppet service {self._endpoint} did not answer a ding within "
                    f"{self._rpc_timeout:g} s"
                ) from None

    async def _close_session(self) -> None:
        """Tell the service we are going (best effort) and drop the connection and caches."""
        self._logged_in.clear()
        bot, self._bot = self._bot, None
        if bot is None:
            return
        puppet: PuppetService | None = bot._puppet  # None if Wechaty.stop() already ran
        try:
            async with asyncio.timeout(min(5.0, self._rpc_timeout)):
                await bot.stop()  # removes listeners, Stop RPC, closes the channel
        except Exception as error:  # the service may well be gone: that is why we are here
            log.debug("WeChat: closing the session: %r", error)
        finally:
            if puppet is not None and puppet.channel is not None:
                puppet.channel.close()
                puppet.channel = None
            clear_sdk_caches()

    # -- puppet events (called synchronously by the SDK's event loop: must not raise) --------

    def _on_login(self, payload: EventLoginPayload) -> None:
        if self._bot is not None:
            self._spawn(self._handle_login(self._bot, payload.contact_id), "wechat-login")

    def _on_logout(self, payload: EventLogoutPayload) -> None:
        self._logged_in.clear()
        log.warning("WeChat: account %s logged out; waiting for a new login", payload.contact_id)

    def _on_scan(self, payload: EventScanPayload) -> None:
        log.warning(
            "WeChat: the puppet service asks for a QR scan (status %s): "
            "https://wechaty.js.org/qrcode/%s",
            payload.status,
            payload.qrcode,
        )

    def _on_message(self, payload: EventMessagePayload) -> None:
        self._inbox.put_nowait((payload.message_id, 1))

    def _on_error(self, payload: EventErrorPayload | BaseException) -> None:
        log.error("WeChat: puppet service error: %r", payload)

    async def _handle_login(self, bot: Wechaty, contact_id: str) -> None:
        self._self_id = contact_id
        try:
            me = bot.Contact.load(contact_id)
            async with asyncio.timeout(self._rpc_timeout):
                await me.ready()
            self._self_name = me.name
        except Exception:
            # Without our name we cannot strip "@name" from mentions; still serve the room.
            log.exception("WeChat: could not load the logged-in contact %s", contact_id)
        if self._bot is not bot:
            return  # that connection ended meanwhile; the next one logs in again
        log.info("WeChat: logged in as %s (%s)", self._self_name or "?", contact_id)
        self._logged_in.set()

    def _live_bot(self) -> Wechaty:
        if self._bot is None:
            raise ConnectionError("not connected to the puppet service")
        return self._bot

    # -- inbound ----------------------------------------------------------------------------

    async def _consume(self) -> None:
        """Hand messages to the desk one at a time, in the order they arrived."""
        while True:
            message_id, attempt = await self._inbox.get()
            await self._logged_in.wait()  # our own id must be known to skip our own messages
            try:
                async with asyncio.timeout(self._rpc_timeout):
                    await self._handle_message(message_id)
            except asyncio.CancelledError:
                raise
            except _CONNECTION_ERRORS as error:
                # The look-ups before the desk failed (the desk makes no RPCs), so the desk has
                # not seen it: try again, after a reconnect if that is what it takes. Safe even
                # if it had, since re-delivery to the desk is a no-op.
                if attempt < _MESSAGE_ATTEMPTS:
                    log.warning("WeChat: message %s: %r; will retry", message_id, error)
                    self._inbox.put_nowait((message_id, attempt + 1))
                else:
                    log.exception("WeChat: message %s was not handled", message_id)
            except Exception:
                log.exception("WeChat: message %s was not handled", message_id)

    async def _handle_message(self, message_id: str) -> None:
        bot = self._live_bot()
        message = bot.Message.load(message_id)
        await message.ready()  # payloads of the message, its sender and its room
        if message.payload.from_id == self._self_id:
            return  # our own reply, echoed back by WeChat
        room = message.room()
        if room is None:
            log.debug("WeChat: ignoring direct message %s", message_id)
            return
        if message.type() != message.Type.MESSAGE_TYPE_TEXT:
            log.debug("WeChat: ignoring %s message %s", message.type().name, message_id)
            return
        chat_message = await self._to_chat_message(message, room)
        # The desk is synchronous (one short SQLite transaction): called inline, so messages
        # reach the ledger in arrival order.
        self._dispatch(self._desk.handle(chat_message))

    async def _to_chat_message(self, message: Message, room: Room) -> ChatMessage:
        payload = message.payload
        sender = message.talker()
        text = await self._strip_self_mention(payload.text or "", payload.mention_ids, room)
        is_admin = self._desk.needs_admin(text) and await self._is_room_admin(
            room.room_id, sender.contact_id
        )
        return ChatMessage(
            platform=PLATFORM,
            chat_id=room.room_id,
            chat_title=room.payload.topic or None,
            sender_id=sender.contact_id,
            sender_name=sender.name or sender.contact_id,
            text=text,
            sent_at=_utc(payload.timestamp),
            message_id=payload.id or message.message_id,
            is_group=True,
            sender_is_admin=is_admin,
        )

    async def _strip_self_mention(self, text: str, mention_ids: list[str], room: Room) -> str:
        """Remove "@<bot name>" so the desk sees "/price H100", not "@GPU Desk /price H100".

        WeChat writes a mention as "@" + the name shown in that room (the room alias if the
        bot has one, else its WeChat name) followed by U+2005 or a space.
        """
        names = [self._self_name] if self._self_name else []
        stripped = _remove_mentions(text, names)
        if stripped == text and self._self_id in mention_ids:
            me = self._live_bot().Contact.load(self._self_id)
            alias = await room.alias(me)  # one RoomMemberPayload call, only when needed
            stripped = _remove_mentions(text, [alias] if alias else [])
        return stripped

    async def _is_room_admin(self, room_id: str, contact_id: str) -> bool:
        """Owner or admin of the room, read fresh: the SDK's cached room payload never expires."""
        try:
            payload = await self._live_bot().puppet.room_payload(room_id)
        except Exception:
            log.exception("WeChat: could not read the admins of room %s", room_id)
            return False
        return contact_id == payload.owner_id or contact_id in payload.admin_ids

    # -- outbound (issue 9): replies wait in the outbox; a sender per conversation ----------

    async def send(self, reply: Reply) -> None:
        """Queue a reply the desk did not answer a message with (a digest, an alert) in the
        outbox, to go out paced like every other."""
        self._dispatch([reply])

    def _dispatch(self, replies: Sequence[Reply]) -> None:
        """Queue what the desk has not queued already, and wake the senders concerned."""
        ours = []
        for reply in replies:
            if reply.platform == PLATFORM:
                ours.append(reply)
            else:
                log.warning(
                    "WeChat: a reply for %s reached the WeChat adapter; dropped", reply.platform
                )
        fresh = [reply for reply in ours if reply.outbox_id is None]
        if fresh:
            self._outbox.queue_replies(fresh, message_row=None, at=self._clock())
        for conversation_id in dict.fromkeys(reply.chat_id for reply in ours):
            self._wake(conversation_id)

    def _resume_queued(self) -> None:
        """On start: what a crash or a stop left queued goes out, paced as ever."""
        unsent = self._outbox.unsent_replies(PLATFORM)
        if unsent:
            log.info("WeChat: %d repl%s left queued; sending", len(unsent), _ies(len(unsent)))
        for conversation_id in dict.fromkeys(reply.chat_id for reply in unsent):
            self._wake(conversation_id)

    def _wake(self, conversation_id: str) -> None:
        """Tell the conversation's sender to look at its queue; start one if none runs."""
        self._wakeups.setdefault(conversation_id, asyncio.Event()).set()
        sender = self._senders.get(conversation_id)
        if sender is None or sender.done():
            self._senders[conversation_id] = self._spawn(
                self._send_loop(conversation_id), "wechat-outbox"
            )

    async def _send_loop(self, conversation_id: str) -> None:
        """Send one conversation's queue, oldest first, paced, within the daily cap; ends
        when the queue is empty (`_wake` starts another)."""
        loop = asyncio.get_running_loop()
        wakeup = self._wakeups.setdefault(conversation_id, asyncio.Event())
        while True:
            await self._logged_in.wait()
            delay = self._next_send_at.get(conversation_id, 0.0) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue  # look again: more may have come, or the link may have gone
            wakeup.clear()
            try:
                wait = await self._send_next(conversation_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # the ledger, most likely (a full disk): try again later
                log.exception("WeChat: could not send the queue of %s", conversation_id)
                wait = self._recheck
            if wait is None:
                return
            if wait > 0:
                await self._doze(wakeup, wait)

    async def _send_next(self, conversation_id: str) -> float | None:
        """Send what is due in the conversation: 0 when something went (or failed) and the
        queue goes on, how long to wait when what is queued is not due yet, None when the
        queue is empty."""
        now = self._clock()
        queued = expire_stale(
            self._outbox,
            self._outbox.queued_replies(PLATFORM, chat_id=conversation_id),
            now=now,
            policy=self._policy,
            where="WeChat",
            logger=log,
        )
        if not queued:
            return None
        batch, wait = self._next_batch(queued, now)
        if not batch:
            return wait
        items = _messages(batch)
        held = self._over_daily_cap(conversation_id, now, len(items))
        if held is not None:
            return held
        loop = asyncio.get_running_loop()
        try:
            await self._send_batch(conversation_id, batch, items)
        finally:
            gap = self._min_gap * (1 + self._rng.uniform(0, self._jitter))
            self._next_send_at[conversation_id] = loop.time() + gap
        return 0.0

    async def _doze(self, wakeup: asyncio.Event, seconds: float) -> None:
        """Wait `seconds` (at most `recheck_seconds`), or until new replies are queued."""
        try:
            async with asyncio.timeout(max(0.0, min(seconds, self._recheck))):
                await wakeup.wait()
        except TimeoutError:
            pass

    def _batchable(self, reply: Reply) -> bool:
        return self._batch_seconds > 0 and reply.kind == "match" and not reply.private

    def _next_batch(
        self, queued: list[QueuedReply], now: datetime
    ) -> tuple[list[QueuedReply], float]:
        """What goes out next as one message: the oldest reply that is not held for a batch,
        or every match reply of the room once the oldest of them has waited `batch_seconds`.
        Nothing (and how long to wait) while the only replies are a batch still gathering."""
        matches = [q for q in queued if self._batchable(q.reply)]
        ready_at = matches[0].queued_at + timedelta(seconds=self._batch_seconds) if matches else now
        for item in queued:
            if not self._batchable(item.reply):
                return [item], 0.0
            if now >= ready_at:
                return matches, 0.0
        return [], (ready_at - now).total_seconds()

    def _over_daily_cap(self, conversation_id: str, now: datetime, needed: int) -> float | None:
        """None when `needed` more messages fit in today's cap (or nothing was sent today);
        else how long until the day ends, in the desk's time zone."""
        day, start, end = _day(now, self._zone)
        used = self._outbox.sent_messages(PLATFORM, conversation_id, since=start, until=end)
        if used == 0 or used + needed <= self._daily_cap:
            return None
        if (conversation_id, day) not in self._cap_warned:  # once a day, not per reply
            self._cap_warned.add((conversation_id, day))
            log.warning(
                "WeChat: daily cap of %d messages reached in %s; the rest wait until 00:00 %s",
                self._daily_cap,
                conversation_id,
                self._zone,
            )
        return (end - now).total_seconds()

    async def _send_batch(
        self, conversation_id: str, batch: list[QueuedReply], items: list[_Outgoing]
    ) -> None:
        """Send `items` (the messages of `batch`) and mark every reply of it in one go."""
        ids = [q.reply.outbox_id for q in batch if q.reply.outbox_id is not None]
        at_most_once = len(batch) == 1 and batch[0].reply.kind in AT_MOST_ONCE
        if at_most_once:
            self._outbox.begin_reply(ids[0], at=self._clock())
        try:
            async with asyncio.timeout(self._rpc_timeout):
                for item in items:
                    await self._send(item)
        except asyncio.CancelledError:
            raise  # a stop: the replies stay queued (begun ones are never sent again)
        except Exception as error:
            text = items[0].text if items else ""
            log.exception("WeChat: could not send to %s: %r", conversation_id, text)
            self._failed(ids, error, for_good=at_most_once)
            return
        for outbox_id in ids:
            self._failures.pop(outbox_id, None)
        self._outbox.finish_replies(ids, at=self._clock(), platform_messages=len(items))

    def _failed(self, ids: list[int], error: Exception, *, for_good: bool) -> None:
        """A send that failed is tried again after the pacing gap, up to `_SEND_ATTEMPTS`
        times while connected; then (or at once for an at-most-once reply) marked failed."""
        if not ids:
            return
        if self._logged_in.is_set():  # failures while the link is down do not count
            for outbox_id in ids:
                self._failures[outbox_id] = self._failures.get(outbox_id, 0) + 1
        if for_good or self._failures.get(ids[0], 0) >= _SEND_ATTEMPTS:
            for outbox_id in ids:
                self._failures.pop(outbox_id, None)
            note = f"{type(error).__name__}: {error}"[:500]
            self._outbox.finish_replies(ids, at=self._clock(), status="failed", note=note)
            log.error("WeChat: gave up on %d repl%s: %s", len(ids), _ies(len(ids)), note)

    async def _send(self, item: _Outgoing) -> None:
        bot = self._live_bot()
        if item.image is not None:
            from wechaty_puppet import FileBox

            box = FileBox.from_base64(base64.b64encode(item.image), name="gpudesk.png")
            await bot.puppet.message_send_file(item.conversation_id, box)
            return
        text = item.text
        if item.mention_ids:
            # Same shape as the SDK's Room.say(): "@name\u2005@name text", with the ids so
            # WeChat notifies them. We call the puppet directly because Room.say() re-fetches
            # every sent message, and replies may also go to a contact.
            names = [await self._display_name(contact_id) for contact_id in item.mention_ids]
            prefix = AT_SEPARATOR.join(f"@{name}" for name in names if name)
            text = f"{prefix} {text}" if prefix else text
        await bot.puppet.message_send_text(
            conversation_id=item.conversation_id,
            message=text,
            mention_ids=list(item.mention_ids),
        )

    async def _display_name(self, contact_id: str) -> str:
        contact = self._live_bot().Contact.load(contact_id)
        try:
            await contact.ready()  # cached after the first message from that contact
        except Exception:
            log.warning("WeChat: no name for %s; mentioning by id only", contact_id)
            return ""
        return contact.name


def _remove_mentions(text: str, names: list[str]) -> str:
    """Drop "@name" and the separator after it for each name; the rest of the text is kept."""
    stripped = text
    for name in names:
        stripped = re.sub(rf"@{re.escape(name)}(?:{AT_SEPARATOR}|\s|$)", "", stripped)
    return stripped.strip() if stripped != text else text


def _utc(timestamp: int) -> datetime:
    """Puppet timestamps are epoch seconds or milliseconds, depending on the puppet."""
    if timestamp <= 0:
        return datetime.now(UTC)
    if timestamp > _MILLISECOND_TIMESTAMPS:
        return datetime.fromtimestamp(timestamp / 1000, tz=UTC)
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _day(now: datetime, zone: tzinfo) -> tuple[date, datetime, datetime]:
    """The day `now` falls on in `zone`, and its start and end in UTC."""
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return day, start.astimezone(UTC), end.astimezone(UTC)


def _messages(batch: Sequence[QueuedReply]) -> list[_Outgoing]:
    """The WeChat messages that say `batch` (one reply, or a room's match replies together):
    the texts joined into one, @-mentioning everyone they mention (no one in a private chat;
    `reply_to_id` is not used: the puppet service API (0.8) cannot quote a message), then
    each image as a file."""
    replies = [queued.reply for queued in batch]
    conversation_id = replies[0].chat_id
    mentions = dict.fromkeys(m for r in replies if not r.private for m in r.mention_ids)
    text = "\n\n".join(r.text for r in replies if r.text)
    items = [_Outgoing(conversation_id, text, tuple(mentions))] if text else []
    items += [_Outgoing(conversation_id, image=r.image) for r in replies if r.image is not None]
    return items


def _ies(count: int) -> str:
    return "y" if count == 1 else "ies"
