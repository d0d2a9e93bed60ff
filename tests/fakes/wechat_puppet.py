"""A fake wechaty puppet service: a real gRPC server on 127.0.0.1 speaking the wechaty protocol.

The real python-wechaty SDK connects to it exactly as it would to a puppet service in front
of a WeChat account, so the adapter is tested through the SDK, not around it. The fake holds
a tiny world (the bot, contacts, rooms, messages), answers the payload look-ups the SDK makes,
pushes events down the `Event` stream and records every text the bot sends.

It is strict on purpose: every RPC of the `wechaty.Puppet` service that it does not serve,
and every look-up of an id it does not know, is recorded in `unexpected` (and answered with a
gRPC error). Tests assert that list is empty, so a change that makes the bot call something
new fails loudly instead of passing by accident.

Wire facts it encodes (checked against wechaty-grpc 0.20 and wechaty-puppet-service 0.8):
- events are `EventResponse(type, payload=JSON)`: login is type 25 `{"contactId"}`, a message
  is type 2 `{"messageId"}`;
- `MessagePayload.type` uses the TypeScript numbering (text = 7), which the SDK remaps;
- a room message has `room_id` set and `to_id` empty;
- `MessageSendText` carries `conversation_id`, `text` and `mentonal_ids` (sic).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import wechaty_grpc.wechaty as wechaty_grpc_service
from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream
from wechaty_grpc.wechaty.puppet import (
    ContactPayloadRequest,
    ContactPayloadResponse,
    DingRequest,
    DingResponse,
    EventRequest,
    EventResponse,
    EventType,
    MessagePayloadRequest,
    MessagePayloadResponse,
    MessageSendFileRequest,
    MessageSendFileResponse,
    MessageSendTextRequest,
    MessageSendTextResponse,
    RoomMemberListRequest,
    RoomMemberListResponse,
    RoomMemberPayloadRequest,
    RoomMemberPayloadResponse,
    RoomPayloadRequest,
    RoomPayloadResponse,
    StartRequest,
    StartResponse,
    StopRequest,
    StopResponse,
)

SERVICE = "/wechaty.Puppet/"
TS_MESSAGE_TYPE_TEXT = 7  # wechaty-puppet (TypeScript) MessageType.Text; the SDK remaps it
_END_OF_STREAM = None  # queued on a stream to end it with status OK
_ABORT_STREAM = EventResponse(type=EventType.EVENT_TYPE_RESET)  # ends it with UNAVAILABLE


def puppet_routes() -> list[str]:
    """Every RPC path of the `wechaty.Puppet` service, read from the generated client stub.

    The stub is the only way the SDK reaches the service, so this is the full set of calls the
    bot could make; betterproto generates no server base class to take it from.
    """
    return sorted(
        set(re.findall(r'"(/wechaty\.Puppet/\w+)"', inspect.getsource(wechaty_grpc_service)))
    )


@dataclass(frozen=True, slots=True)
class Sent:
    """One message the bot sent: text (with `mention_ids`) or a file (`filebox` JSON)."""

    conversation_id: str
    text: str
    mention_ids: tuple[str, ...]
    at: float  # time.monotonic() when the service received it
    message_id: str
    filebox: str | None = None


@dataclass(slots=True)
class _Room:
    topic: str
    member_ids: list[str]
    owner_id: str = ""
    admin_ids: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # member id -> alias in this room


class FakePuppetService:
    """The fake service. `await start()`, point the bot at `endpoint`, `await stop()`."""

    def __init__(self, *, bot_id: str = "wxid_desk_bot", bot_name: str = "GPU Desk") -> None:
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.contacts: dict[str, str] = {bot_id: bot_name}  # contact id -> name
        self.rooms: dict[str, _Room] = {}
        self.messages: dict[str, MessagePayloadResponse] = {}
        self.sent: list[Sent] = []
        self.calls: list[str] = []  # method names, in arrival order
        self.unexpected: list[str] = []  # "Method(detail)" for anything the fake did not expect
        self.echo_sent = True  # like WeChat, the bot's own messages come back as events
        self.port = 0
        self._server: Server | None = None
        self._streams: list[asyncio.Queue[EventResponse | None]] = []
        self._pending: list[EventResponse] = []  # posted while no stream was open
        self._ids = itertools.count(1)
        self._answering = asyncio.Event()  # cleared by freeze(): no call is answered
        self._answering.set()
        self._streaming = asyncio.Event()  # cleared by freeze(): no event is sent
        self._streaming.set()

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on 127.0.0.1: a random free port the first time, the same port after."""
        # proto=IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so,
        # and without it every RPC waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebind after a restart
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        server = Server([self])
        await server.start(sock=sock)
        self._server = server

    async def stop(self) -> None:
        """Go down as a restarting service does: open event streams fail with UNAVAILABLE,
        then the port refuses connections until `start()`."""
        if self._server is None:
            return
        self.thaw()  # a frozen stream would never get to its abort
        for queue in self._streams:
            queue.put_nowait(_ABORT_STREAM)
        await self.wait_for(lambda: not self._streams, timeout=2.0)
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def restart(self, downtime: float = 0.0) -> None:
        await self.stop()
        await asyncio.sleep(downtime)
        await self.start()

    # -- the world -----------------------------------------------------------------------

    def add_contact(self, contact_id: str, name: str) -> None:
        self.contacts[contact_id] = name

    def add_room(
        self,
        room_id: str,
        topic: str,
        member_ids: Iterable[str],
        *,
        owner_id: str = "",
        admin_ids: Iterable[str] = (),
        aliases: dict[str, str] | None = None,
    ) -> None:
        members = [self.bot_id, *member_ids]
        self.rooms[room_id] = _Room(topic, members, owner_id, list(admin_ids), aliases or {})

    # -- driving the bot -----------------------------------------------------------------

    def post(
        self,
        room_id: str,
        sender_id: str,
        text: str,
        *,
        mention_ids: Iterable[str] = (),
        message_id: str | None = None,
        timestamp: int | None = None,
    ) -> str:
        """A text message arrives in a room: store its payload and announce it. Returns its id."""
        message_id = message_id or f"msg-{next(self._ids)}"
        self.messages[message_id] = MessagePayloadResponse(
            id=message_id,
            text=text,
            timestamp=int(time.time() * 1000) if timestamp is None else timestamp,
            type=TS_MESSAGE_TYPE_TEXT,  # type: ignore[arg-type]  # TS numbering, on purpose
            from_id=sender_id,
            room_id=room_id,
            to_id="",
            mention_ids=list(mention_ids),
        )
        self.redeliver(message_id)
        return message_id

    def redeliver(self, message_id: str) -> None:
        """Announce an already stored message again, as puppets sometimes do."""
        payload = json.dumps({"messageId": message_id})
        self._emit(EventResponse(type=EventType.EVENT_TYPE_MESSAGE, payload=payload))

    def drop_stream(self) -> None:
        """End every open event stream cleanly (status OK), as a service does on restart."""
        for queue in self._streams:
            queue.put_nowait(_END_OF_STREAM)
        self._streams.clear()

    def freeze(self, *, events: bool = True) -> None:
        """Stop answering calls (and sending events, unless `events=False`) while keeping
        connections open: a silently dead link, or a service that hangs."""
        self._answering.clear()
        if events:
            self._streaming.clear()

    def thaw(self) -> None:
        self._answering.set()
        self._streaming.set()

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def texts(self, conversation_id: str | None = None) -> list[Sent]:
        """What the bot said (text messages only), optionally in one conversation."""
        return [
            s
            for s in self.sent
            if s.filebox is None and conversation_id in (None, s.conversation_id)
        ]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `condition()` holds (polled), or fail with TimeoutError."""
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.005)

    def _emit(self, event: EventResponse) -> None:
        if not self._streams:
            self._pending.append(event)
        for queue in self._streams:
            queue.put_nowait(event)

    def _note(self, method: str) -> None:
        self.calls.append(method)

    def _unknown(self, method: str, detail: str) -> GRPCError:
        self.unexpected.append(f"{method}({detail})")
        return GRPCError(Status.NOT_FOUND, f"fake puppet: {method} has no {detail}")

    # -- the gRPC service ----------------------------------------------------------------

    def __mapping__(self) -> dict[str, Handler]:
        served: dict[str, Handler] = {
            SERVICE + "Start": self._unary(self._start, StartRequest, StartResponse),
            SERVICE + "Stop": self._unary(self._stop, StopRequest, StopResponse),
            SERVICE + "Ding": self._unary(self._ding, DingRequest, DingResponse),
            SERVICE + "Event": Handler(
                self._event, Cardinality.UNARY_STREAM, EventRequest, EventResponse
            ),
            SERVICE + "ContactPayload": self._unary(
                self._contact_payload, ContactPayloadRequest, ContactPayloadResponse
            ),
            SERVICE + "RoomPayload": self._unary(
                self._room_payload, RoomPayloadRequest, RoomPayloadResponse
            ),
            SERVICE + "RoomMemberList": self._unary(
                self._room_member_list, RoomMemberListRequest, RoomMemberListResponse
            ),
            SERVICE + "RoomMemberPayload": self._unary(
                self._room_member_payload, RoomMemberPayloadRequest, RoomMemberPayloadResponse
            ),
            SERVICE + "MessagePayload": self._unary(
                self._message_payload, MessagePayloadRequest, MessagePayloadResponse
            ),
            SERVICE + "MessageSendText": self._unary(
                self._message_send_text, MessageSendTextRequest, MessageSendTextResponse
            ),
            SERVICE + "MessageSendFile": self._unary(
                self._message_send_file, MessageSendFileRequest, MessageSendFileResponse
            ),
        }
        mapping = {route: self._unexpected_handler(route) for route in puppet_routes()}
        mapping.update(served)
        return mapping

    def _unary(
        self,
        method: Callable[[Any], Awaitable[Any]],
        request_type: type[Any],
        reply_type: type[Any],
    ) -> Handler:
        """Adapt `async def m(request) -> reply` to grpclib's stream-level handler."""

        async def handle(stream: Stream) -> None:
            request = await stream.recv_message()
            assert request is not None
            await self._answering.wait()
            await stream.send_message(await method(request))

        return Handler(handle, Cardinality.UNARY_UNARY, request_type, reply_type)

    def _unexpected_handler(self, route: str) -> Handler:
        method = route.removeprefix(SERVICE)

        async def refuse(stream: Stream) -> None:
            self.unexpected.append(method)
            raise GRPCError(Status.UNIMPLEMENTED, f"fake puppet does not expect {method}")

        # The request is never read, so any message class will do for the codec.
        return Handler(refuse, Cardinality.UNARY_UNARY, StopRequest, StopResponse)

    async def _start(self, request: StartRequest) -> StartResponse:
        self._note("Start")
        return StartResponse()

    async def _stop(self, request: StopRequest) -> StopResponse:
        self._note("Stop")
        return StopResponse()

    async def _ding(self, request: DingRequest) -> DingResponse:
        self._note("Ding")
        self._emit(
            EventResponse(
                type=EventType.EVENT_TYPE_DONG, payload=json.dumps({"data": request.data})
            )
        )
        return DingResponse()

    async def _event(self, stream: Stream) -> None:
        await stream.recv_message()
        self._note("Event")
        queue: asyncio.Queue[EventResponse | None] = asyncio.Queue()
        # A logged-in puppet service replays `login` to every new event stream.
        login = json.dumps({"contactId": self.bot_id})
        queue.put_nowait(EventResponse(type=EventType.EVENT_TYPE_LOGIN, payload=login))
        for event in self._pending:
            queue.put_nowait(event)
        self._pending.clear()
        self._streams.append(queue)
        try:
            while (event := await queue.get()) is not _END_OF_STREAM:
                if event is _ABORT_STREAM:
                    raise GRPCError(Status.UNAVAILABLE, "fake puppet service going down")
                await self._streaming.wait()
                await stream.send_message(event)
        finally:
            if queue in self._streams:
                self._streams.remove(queue)

    async def _contact_payload(self, request: ContactPayloadRequest) -> ContactPayloadResponse:
        self._note("ContactPayload")
        if request.id not in self.contacts:
            raise self._unknown("ContactPayload", f"contact {request.id!r}")
        return ContactPayloadResponse(id=request.id, name=self.contacts[request.id])

    async def _room_payload(self, request: RoomPayloadRequest) -> RoomPayloadResponse:
        self._note("RoomPayload")
        room = self.rooms.get(request.id)
        if room is None:
            raise self._unknown("RoomPayload", f"room {request.id!r}")
        return RoomPayloadResponse(
            id=request.id,
            topic=room.topic,
            owner_id=room.owner_id,
            admin_ids=list(room.admin_ids),
            member_ids=list(room.member_ids),
        )

    async def _room_member_list(self, request: RoomMemberListRequest) -> RoomMemberListResponse:
        self._note("RoomMemberList")
        room = self.rooms.get(request.id)
        if room is None:
            raise self._unknown("RoomMemberList", f"room {request.id!r}")
        return RoomMemberListResponse(member_ids=list(room.member_ids))

    async def _room_member_payload(
        self, request: RoomMemberPayloadRequest
    ) -> RoomMemberPayloadResponse:
        self._note("RoomMemberPayload")
        room = self.rooms.get(request.id)
        if room is None or request.member_id not in room.member_ids:
            raise self._unknown("RoomMemberPayload", f"member {request.member_id!r}")
        return RoomMemberPayloadResponse(
            id=request.member_id,
            room_alias=room.aliases.get(request.member_id, ""),
            name=self.contacts.get(request.member_id, ""),
        )

    async def _message_payload(self, request: MessagePayloadRequest) -> MessagePayloadResponse:
        self._note("MessagePayload")
        if request.id not in self.messages:
            raise self._unknown("MessagePayload", f"message {request.id!r}")
        return self.messages[request.id]

    async def _message_send_text(self, request: MessageSendTextRequest) -> MessageSendTextResponse:
        self._note("MessageSendText")
        message_id = self._record_sent(
            request.conversation_id, request.text, tuple(request.mentonal_ids), None
        )
        return MessageSendTextResponse(id=message_id)

    async def _message_send_file(self, request: MessageSendFileRequest) -> MessageSendFileResponse:
        self._note("MessageSendFile")
        message_id = self._record_sent(request.conversation_id, "", (), request.filebox)
        return MessageSendFileResponse(id=message_id)

    def _record_sent(
        self, conversation_id: str, text: str, mention_ids: tuple[str, ...], filebox: str | None
    ) -> str:
        message_id = f"sent-{next(self._ids)}"
        self.sent.append(
            Sent(conversation_id, text, mention_ids, time.monotonic(), message_id, filebox)
        )
        if self.echo_sent and filebox is None:
            in_room = conversation_id in self.rooms
            self.messages[message_id] = MessagePayloadResponse(
                id=message_id,
                text=text,
                timestamp=int(time.time() * 1000),
                type=TS_MESSAGE_TYPE_TEXT,  # type: ignore[arg-type]
                from_id=self.bot_id,
                room_id=conversation_id if in_room else "",
                to_id="" if in_room else conversation_id,
                mention_ids=list(mention_ids),
            )
            self.redeliver(message_id)
        return message_id
