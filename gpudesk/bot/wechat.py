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
- Outbound pacing per conversation (a minimum gap with random jitter), a daily cap per
  conversation, and optional batching of "match" replies into one message per room per
  interval: WeChat restricts accounts that post fast or often.
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
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Self

from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from gpudesk.bot import wechat_compat
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
    daily_cap: most messages sent per conversation per UTC day; the rest are dropped, logged.
    batch_seconds: when > 0, "match" replies to a room are gathered for this long and sent
        as one message (mentions merged); other replies are never delayed.
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
        self._outboxes: dict[str, asyncio.Queue[_Outgoing]] = {}
        self._batches: dict[str, list[Reply]] = {}
        self._next_send_at: dict[str, float] = {}
        self._sent_today: dict[str, tuple[date, int]] = {}
        self._cap_warned: set[tuple[str, date]] = set()
        self._connections = 0
        self._redact = _RedactToken(token)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Connected and logged in: messages are being received and replies sent."""
        return self._logged_in.is_set()

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

    async def stop(self) -> None:
        """Stop receiving and sending; close the connection. Unsent replies are dropped."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._supervisor = None
        dropped = sum(q.qsize() for q in self._outboxes.values())
        dropped += sum(len(b) for b in self._batches.values())
        if dropped:
            log.warning("WeChat: stopping with %d unsent replies, dropped", dropped)
        self._outboxes.clear()
        self._batches.clear()
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
        replies = self._desk.handle(chat_message)
        for reply in replies:
            self._dispatch(reply)

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

    # -- outbound ---------------------------------------------------------------------------

    async def send(self, reply: Reply) -> None:
        """Queue a reply the desk did not answer a message with (a digest, an alert), paced
        like every other."""
        self._dispatch(reply)

    def _dispatch(self, reply: Reply) -> None:
        if reply.platform != PLATFORM:
            log.warning(
                "WeChat: a reply for %s reached the WeChat adapter; dropped", reply.platform
            )
            return
        if self._batch_seconds > 0 and reply.kind == "match" and not reply.private:
            batch = self._batches.setdefault(reply.chat_id, [])
            batch.append(reply)
            if len(batch) == 1:
                self._spawn(self._flush_batch_later(reply.chat_id), "wechat-batch")
            return
        self._enqueue_reply(reply)

    async def _flush_batch_later(self, room_id: str) -> None:
        await asyncio.sleep(self._batch_seconds)
        replies = self._batches.pop(room_id, [])
        if not replies:
            return
        mentions = dict.fromkeys(m for r in replies for m in r.mention_ids)
        text = "\n\n".join(r.text for r in replies if r.text)
        self._enqueue(_Outgoing(room_id, text, tuple(mentions)))
        for reply in replies:
            if reply.image is not None:
                self._enqueue(_Outgoing(room_id, image=reply.image))

    def _enqueue_reply(self, reply: Reply) -> None:
        # In a private chat there is no one to @-mention. `reply_to_id` is not used: the
        # puppet service API (0.8) has no way to quote the message being answered.
        mentions = () if reply.private else reply.mention_ids
        if reply.text:
            self._enqueue(_Outgoing(reply.chat_id, reply.text, mentions))
        if reply.image is not None:
            self._enqueue(_Outgoing(reply.chat_id, image=reply.image))

    def _enqueue(self, item: _Outgoing) -> None:
        outbox = self._outboxes.get(item.conversation_id)
        if outbox is None:
            outbox = self._outboxes[item.conversation_id] = asyncio.Queue()
            self._spawn(self._send_loop(item.conversation_id, outbox), "wechat-outbox")
        outbox.put_nowait(item)

    async def _send_loop(self, conversation_id: str, outbox: asyncio.Queue[_Outgoing]) -> None:
        """Send one conversation's messages in order, paced, within the daily cap."""
        loop = asyncio.get_running_loop()
        while True:
            item = await outbox.get()
            if not self._take_daily_slot(conversation_id):
                continue
            await self._logged_in.wait()
            delay = self._next_send_at.get(conversation_id, 0.0) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(self._rpc_timeout):
                    await self._send(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("WeChat: could not send to %s: %r", conversation_id, item.text)
            finally:
                gap = self._min_gap * (1 + self._rng.uniform(0, self._jitter))
                self._next_send_at[conversation_id] = loop.time() + gap

    def _take_daily_slot(self, conversation_id: str) -> bool:
        today = datetime.now(UTC).date()
        day, count = self._sent_today.get(conversation_id, (today, 0))
        if day != today:
            count = 0
        if count >= self._daily_cap:
            if (conversation_id, today) not in self._cap_warned:  # once a day, not per reply
                self._cap_warned.add((conversation_id, today))
                log.warning(
                    "WeChat: daily cap of %d messages reached in %s; dropping until 00:00 UTC",
                    self._daily_cap,
                    conversation_id,
                )
            return False
        self._sent_today[conversation_id] = (today, count + 1)
        return True

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
