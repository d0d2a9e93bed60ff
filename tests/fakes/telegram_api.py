"""A fake Telegram Bot API server for end-to-end tests of the real python-telegram-bot library.

`FakeTelegram` is an aiohttp server on 127.0.0.1 (random port) that answers `/bot<token>/<method>`
the way api.telegram.org does, for the handful of methods gpudesk uses:

- getMe (`can_read_all_group_messages` configurable), deleteWebhook, getChat, getChatMember
  (statuses configurable per chat and user), setMyCommands (recorded per `language_code`);
- getUpdates with Telegram's long-poll, offset and timeout semantics: an offset confirms and
  forgets every earlier update, a waiting poll wakes when an update is injected or the server
  stops, and a newer poll ends an older one with 409 Conflict, as Telegram does;
- sendMessage and sendPhoto (multipart), checked like Telegram checks them: HTML parse mode is
  parsed (malformed or unknown tags give 400 "can't parse entities"), the 4096/1024 limits apply
  to the parsed text, the replied-to message must exist, a user who never wrote to the bot cannot
  be messaged (403);
- 429 "Too Many Requests" with `retry_after`, injected with `fail_next()`.

Any method the fake does not know is answered 404 (as Telegram does) and fails the test when the
server stops: a silent 404 would otherwise look to PTB like an invalid token.

Tests inject updates (`inject_message`, `inject_edit`, `inject_forward`, `inject_as_chat`,
`inject_private`) and inspect what the bot sent (`sent`, `wait_for_sent`, `calls`, `commands`).

    async with FakeTelegram() as api:
        group = api.group("GPU deals", username="gpu_deals")
        alice = api.user("Alice")
        api.inject_message(group, alice, "出 H100 8卡")
        bot = Bot(api.token, base_url=api.base_url)
        ...
        [reply] = await api.wait_for_sent(1)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

DEFAULT_TOKEN = "424242:AAFakeTokenForTestsOnly-do-not-log-me"

# Telegram's own account that stands in for an anonymous group admin (`from` of such messages).
GROUP_ANONYMOUS_BOT_ID = 1087968824

MESSAGE_LIMIT = 4096  # UTF-16 code units of parsed text, as Telegram counts them
CAPTION_LIMIT = 1024

# Parameters that PTB sends as JSON strings inside form fields.
_JSON_PARAMS = frozenset(
    {
        "allowed_updates",
        "caption_entities",
        "commands",
        "entities",
        "link_preview_options",
        "reply_markup",
        "reply_parameters",
        "scope",
    }
)

_MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


# --------------------------------------------------------------------------------------------
# Telegram's HTML parse mode


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; the message is what Telegram would say."""


_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    }
)
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]{1,10}));")
_ATTRIBUTE_RE = re.compile(
    r"""\s*([a-zA-Z][a-zA-Z0-9-]*)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?"""
)


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _decode_entity(text: str, index: int) -> tuple[str, int] | None:
    """The character an entity at `index` stands for and its length, or None: then `&` is
    literal (Telegram, like tdlib, keeps a lone `&` as it is)."""
    match = _ENTITY_RE.match(text, index)
    if match is None:
        return None
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        char = _NAMED_ENTITIES.get(name)
        return (char, match.end() - index) if char is not None else None
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end() - index


def parse_html(text: str) -> str:
    """Parse `text` as Telegram parse_mode=HTML and return the plain text a reader sees.

    Follows tdlib's parser: only Telegram's tags are allowed, every start tag needs its end tag
    in order, `<` always opens a tag, and only `&lt; &gt; &amp; &quot;` and numeric entities
    are decoded. Raises `EntityParseError` with Telegram's wording otherwise.
    """
    out: list[str] = []
    open_tags: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "&":
            entity = _decode_entity(text, i)
            if entity is not None:
                out.append(entity[0])
                i += entity[1]
                continue
        if char != "<":
            out.append(char)
            i += 1
            continue
        begin = i
        i += 1
        if i >= len(text):
            raise EntityParseError(
                f"Unexpected end of name token at byte offset {_byte_offset(text, begin)}"
            )
        if text[i] == "/":
            close = text.find(">", i)
            if close < 0:
                raise EntityParseError(
                    f"Unclosed end tag at byte offset {_byte_offset(text, begin)}"
                )
            name = text[i + 1 : close].strip().lower()
            if not open_tags:
                raise EntityParseError(
                    f"Unexpected end tag at byte offset {_byte_offset(text, begin)}"
                )
            if name != open_tags[-1]:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                    f'expected "</{open_tags[-1]}>", found "</{name}>"'
                )
            open_tags.pop()
            i = close + 1
            continue
        end = i
        while end < len(text) and not text[end].isspace() and text[end] != ">":
            end += 1
        name = text[i:end].lower()
        if name not in _HTML_TAGS:
            raise EntityParseError(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, begin)}'
            )
        attributes: dict[str, str] = {}
        i = end
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                )
            if text[i] == ">":
                i += 1
                break
            match = _ATTRIBUTE_RE.match(text, i)
            if match is None or match.end() == i:
                raise EntityParseError(
                    f'Expected equal sign in declaration of an attribute of the tag "{name}" '
                    f"at byte offset {_byte_offset(text, begin)}"
                )
            value = next((v for v in match.groups()[1:] if v is not None), "")
            attributes[match.group(1).lower()] = value
            i = match.end()
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        if name == "tg-emoji" and "emoji-id" not in attributes:
            raise EntityParseError(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        open_tags.append(name)
    if open_tags:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(out)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------------------------
# The world the fake knows about


@dataclass(frozen=True, slots=True)
class FakeUser:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    is_bot: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        return data


@dataclass(frozen=True, slots=True)
class FakeChat:
    id: int
    type: str  # "private", "group", "supergroup", "channel"
    title: str | None = None
    username: str | None = None
    first_name: str | None = None  # private chats

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One request the bot made: method, decoded parameters, and the HTTP status it got."""

    method: str
    params: Mapping[str, Any]
    status: int
    at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message the bot got through (sendMessage or sendPhoto that the fake accepted)."""

    method: str
    chat_id: int
    message_id: int
    raw: str  # text or caption exactly as the bot sent it
    plain: str  # what a reader sees: `raw` after Telegram parsed its parse_mode
    parse_mode: str | None
    reply_to: int | None  # reply_parameters.message_id
    params: Mapping[str, Any]
    at: float  # time.monotonic()
    photo: bytes | None = None

    @property
    def used_legacy_reply(self) -> bool:
        """True if the bot threaded with the legacy `reply_to_message_id` parameter."""
        return "reply_to_message_id" in self.params


class _ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def _bad_request(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


def _int(params: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = params.get(key)
    if value is None or value == "":
        if default is None:
            raise _bad_request(f"{key} is empty")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad_request(f"invalid {key} specified") from None


def _flag(params: Mapping[str, Any], key: str) -> bool:
    return str(params.get(key, "")).lower() in ("true", "1")


# --------------------------------------------------------------------------------------------
# The server


class FakeTelegram:
    """A fake Bot API server; use as `async with FakeTelegram(...) as api:`.

    Everything runs on the test's event loop, so helpers are plain synchronous calls.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "gpudesk_test_bot",
        can_read_all_group_messages: bool = True,
    ) -> None:
        self.token = token
        self.can_read_all_group_messages = can_read_all_group_messages
        self.bot_user = FakeUser(
            int(token.split(":", 1)[0]), "GPU Desk", username=bot_username, is_bot=True
        )
        self.calls: list[ApiCall] = []
        self.sent: list[SentMessage] = []
        self.commands: dict[str, list[tuple[str, str]]] = {}  # language_code ("" = all) -> menu
        self.unknown_methods: list[str] = []
        self.errors: list[str] = []  # exceptions inside the fake itself: bugs, reported at exit
        self.delivered: Counter[int] = Counter()  # update_id -> times handed out by getUpdates
        self.confirmed_offset = 0  # every update_id below this is confirmed and forgotten

        self._chats: dict[int, FakeChat] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}  # (chat, message) -> Message
        self._next_message_id: dict[int, int] = {}
        self._members: dict[tuple[int, int], str] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(700_000_001)
        self._user_ids = itertools.count(5_000_001)
        self._group_ids = itertools.count(1_001_000_000_001)
        self._allowed_updates: frozenset[str] | None = None
        self._failures: dict[str, list[int]] = {}  # method -> retry_after of each queued 429
        self._poll: asyncio.Future[str] | None = None
        self._stopping = False
        self._activity = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What PTB's `base_url` wants: the token is appended to it, as with Telegram's own."""
        return f"http://127.0.0.1:{self.port}/bot"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        # No access log: it would write the token (part of every path) into the test's logs.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()  # port 0: any free port
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Answer any waiting long poll at once, then close the server."""
        self._stopping = True
        self._wake_poll("stopped")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        await self.stop()
        if exc_type is None:
            self.assert_clean()

    def assert_clean(self) -> None:
        """Fail if the bot called a method the fake does not know, or the fake itself broke."""
        problems = [f"unknown Bot API method {name!r}" for name in self.unknown_methods]
        problems += self.errors
        if problems:
            raise AssertionError("FakeTelegram: " + "; ".join(problems))

    # --- building the world ------------------------------------------------------------

    def user(
        self, first_name: str, last_name: str | None = None, *, username: str | None = None
    ) -> FakeUser:
        return FakeUser(next(self._user_ids), first_name, last_name, username)

    def group(
        self, title: str, *, username: str | None = None, type: str = "supergroup"
    ) -> FakeChat:
        """A group the bot is a member of; `username` makes it public (t.me/<username>)."""
        chat = FakeChat(-next(self._group_ids), type, title=title, username=username)
        self._chats[chat.id] = chat
        return chat

    def set_member_status(self, chat: FakeChat, user: FakeUser, status: str) -> None:
        """What getChatMember answers for `user` in `chat` (default "member")."""
        if status not in _MEMBER_STATUSES:
            raise ValueError(f"unknown chat member status {status!r}")
        self._members[(chat.id, user.id)] = status

    def fail_next(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 Too Many Requests."""
        self._failures.setdefault(method, []).extend([retry_after] * times)

    # --- injecting updates -------------------------------------------------------------

    def inject_message(
        self,
        chat: FakeChat,
        user: FakeUser,
        text: str,
        *,
        reply_to: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> int:
        """A new message from `user` in `chat`; returns its message_id."""
        message = self._new_message(chat, text, sender=user, reply_to=reply_to)
        message.update(extra or {})
        self._push_update({"message": message})
        return int(message["message_id"])

    def inject_edit(self, chat: FakeChat, message_id: int, text: str) -> None:
        """An edited_message: the message `message_id` in `chat` now reads `text`."""
        original = self._messages[(chat.id, message_id)]
        edited = {**original, "text": text, "edit_date": int(time.time())}
        self._messages[(chat.id, message_id)] = edited
        self._push_update({"edited_message": edited})

    def inject_forward(
        self,
        chat: FakeChat,
        user: FakeUser,
        text: str,
        *,
        origin: FakeUser | FakeChat | str,
    ) -> int:
        """`user` forwards into `chat` a message first posted by `origin`: a user, a channel,
        or (a string) a user who hides their account in forwards."""
        when = int(time.time()) - 3600
        forward_origin: dict[str, Any]
        if isinstance(origin, FakeUser):
            forward_origin = {"type": "user", "date": when, "sender_user": origin.to_api()}
        elif isinstance(origin, FakeChat):
            forward_origin = {
                "type": "channel",
                "date": when,
                "chat": origin.to_api(),
                "message_id": 1,
            }
        else:
            forward_origin = {"type": "hidden_user", "date": when, "sender_user_name": origin}
        return self.inject_message(chat, user, text, extra={"forward_origin": forward_origin})

    def inject_as_chat(self, chat: FakeChat, text: str) -> int:
        """A message an anonymous admin sent as the group itself (`sender_chat` == chat)."""
        anonymous = FakeUser(
            GROUP_ANONYMOUS_BOT_ID, "Group", username="GroupAnonymousBot", is_bot=True
        )
        message = self._new_message(chat, text, sender=anonymous)
        message["sender_chat"] = chat.to_api()
        self._push_update({"message": message})
        return int(message["message_id"])

    def inject_private(self, user: FakeUser, text: str) -> int:
        """`user` writes to the bot in private (which also lets the bot write back)."""
        chat = FakeChat(user.id, "private", first_name=user.first_name, username=user.username)
        self._chats[chat.id] = chat  # from now on the bot may write to them
        return self.inject_message(chat, user, text)

    # --- inspecting --------------------------------------------------------------------

    @property
    def pending_update_ids(self) -> list[int]:
        """Updates not yet confirmed by an offset past them."""
        return [update["update_id"] for update in self._updates]

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    def sent_to(self, chat: FakeChat | FakeUser) -> list[SentMessage]:
        return [message for message in self.sent if message.chat_id == chat.id]

    async def wait_for_sent(self, count: int, timeout: float = 5.0) -> list[SentMessage]:
        """Wait until at least `count` messages were accepted; return all of them."""
        await self.wait_until(lambda: len(self.sent) >= count, timeout, f"{count} sent messages")
        return list(self.sent)

    async def wait_for_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> None:
        await self.wait_until(
            lambda: len(self.calls_to(method)) >= count, timeout, f"{count} {method} calls"
        )

    @property
    def polling(self) -> bool:
        """Whether a getUpdates long poll is waiting right now."""
        return self._poll is not None and not self._poll.done()

    async def wait_for_poll(self, timeout: float = 5.0) -> None:
        """Wait until the bot has a long poll waiting (it has read everything so far)."""
        await self.wait_until(lambda: self.polling, timeout, "a waiting getUpdates")

    async def wait_until_confirmed(self, timeout: float = 5.0) -> None:
        """Wait until the bot confirmed every injected update (moved its offset past them)."""
        await self.wait_until(lambda: not self._updates, timeout, "all updates confirmed")

    async def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        async def _wait() -> None:
            async with self._activity:
                await self._activity.wait_for(predicate)

        try:
            await asyncio.wait_for(_wait(), timeout)
        except TimeoutError:
            message = f"FakeTelegram: timed out after {timeout}s waiting for {what}"
            raise AssertionError(message) from None

    # --- internals: world --------------------------------------------------------------

    def _new_message(
        self,
        chat: FakeChat,
        text: str,
        *,
        sender: FakeUser,
        reply_to: int | None = None,
        caption: bool = False,
    ) -> dict[str, Any]:
        message_id = self._next_message_id.get(chat.id, 1)
        self._next_message_id[chat.id] = message_id + 1
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": sender.to_api(),
            "chat": chat.to_api(),
            "date": int(time.time()),
        }
        message["caption" if caption else "text"] = text
        if text.startswith("/") and not caption:
            command = text.split(maxsplit=1)[0] if text.strip() else text
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
            ]
        if reply_to is not None:
            message["reply_to_message"] = self._messages[(chat.id, reply_to)]
        self._messages[(chat.id, message_id)] = message
        return message

    def _push_update(self, payload: dict[str, Any]) -> None:
        self._updates.append({"update_id": next(self._update_ids), **payload})
        self._wake_poll("update")

    def _wake_poll(self, reason: str) -> None:
        if self._poll is not None and not self._poll.done():
            self._poll.set_result(reason)

    def _deliverable(self, limit: int) -> list[dict[str, Any]]:
        allowed = self._allowed_updates
        ready = [
            update
            for update in self._updates
            if allowed is None or any(key in allowed for key in update if key != "update_id")
        ]
        return ready[:limit]

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            self.confirmed_offset = max(self.confirmed_offset, offset)
        elif offset < 0:
            kept = self._updates[offset:]
            if len(kept) < len(self._updates):
                self.confirmed_offset = max(self.confirmed_offset, kept[0]["update_id"])
            self._updates = kept

    # --- internals: HTTP ---------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        status = 200
        params: dict[str, Any] = {}
        try:
            params = await self._read_params(request)
            if request.match_info["token"] != self.token:
                raise _ApiError(401, "Unauthorized")
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                # Telegram answers 404 too, which PTB reports as an invalid token: fail loudly.
                self.unknown_methods.append(method)
                raise _ApiError(404, "Not Found")
            retries = self._failures.get(method)
            if retries:
                retry_after = retries.pop(0)
                raise _ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
            result = await handler(params)
            body: dict[str, Any] = {"ok": True, "result": result}
        except _ApiError as error:
            status = error.status
            body = {"ok": False, "error_code": error.status, "description": error.description}
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
        except ConnectionError:
            raise  # the client hung up mid-request (a bot stopping): nothing to answer
        except Exception as error:  # a bug in the fake: answer 500 and fail the test at exit
            status = 500
            self.errors.append(f"{method}: {type(error).__name__}: {error}")
            body = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        self.calls.append(ApiCall(method, params, status, time.monotonic()))
        await self._notify()
        return web.json_response(body, status=status)

    async def _notify(self) -> None:
        async with self._activity:
            self._activity.notify_all()

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
            return params
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = value.file.read()
                elif key in _JSON_PARAMS and isinstance(value, str):
                    params[key] = json.loads(value)
                else:
                    params[key] = value
        return params

    def _chat(self, params: Mapping[str, Any]) -> FakeChat:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _bad_request("chat_id is empty")
        chat_id = _int(params, "chat_id")
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_id > 0:
                raise _ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            raise _bad_request("chat not found")
        return chat

    def _parse(self, text: str, parse_mode: str | None) -> str:
        if parse_mode is None or parse_mode == "":
            return text
        if parse_mode.upper() != "HTML":
            raise _bad_request(f"unsupported parse_mode {parse_mode!r} in this fake")
        try:
            return parse_html(text)
        except EntityParseError as error:
            raise _bad_request(f"can't parse entities: {error}") from None

    def _reply_target(self, chat: FakeChat, params: Mapping[str, Any]) -> int | None:
        reply = params.get("reply_parameters")
        if reply is not None:
            message_id = int(reply["message_id"])
            target_chat = int(reply.get("chat_id", chat.id))
            allow_missing = bool(reply.get("allow_sending_without_reply", False))
        elif "reply_to_message_id" in params:
            message_id = _int(params, "reply_to_message_id")
            target_chat = chat.id
            allow_missing = _flag(params, "allow_sending_without_reply")
        else:
            return None
        if (target_chat, message_id) not in self._messages:
            if allow_missing:
                return None
            raise _bad_request("message to be replied not found")
        return message_id

    def _record_sent(
        self,
        method: str,
        chat: FakeChat,
        raw: str,
        plain: str,
        params: Mapping[str, Any],
        reply_to: int | None,
        photo: bytes | None = None,
    ) -> dict[str, Any]:
        message = self._new_message(
            chat, plain, sender=self.bot_user, reply_to=reply_to, caption=photo is not None
        )
        if photo is not None:
            message["photo"] = [
                {
                    "file_id": f"photo-{chat.id}-{message['message_id']}",
                    "file_unique_id": f"u{chat.id}{message['message_id']}",
                    "width": 800,
                    "height": 600,
                    "file_size": len(photo),
                }
            ]
            if not plain:
                message.pop("caption", None)
        self.sent.append(
            SentMessage(
                method=method,
                chat_id=chat.id,
                message_id=int(message["message_id"]),
                raw=raw,
                plain=plain,
                parse_mode=params.get("parse_mode"),
                reply_to=reply_to,
                params=params,
                at=time.monotonic(),
                photo=photo,
            )
        )
        return message

    # --- the Bot API methods -----------------------------------------------------------

    async def _api_getMe(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _api_deleteWebhook(self, params: Mapping[str, Any]) -> bool:
        if _flag(params, "drop_pending_updates"):
            self._updates.clear()
        return True

    async def _api_getUpdates(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        offset = _int(params, "offset", 0)
        limit = min(max(_int(params, "limit", 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        if "allowed_updates" in params:
            allowed = params["allowed_updates"]
            self._allowed_updates = frozenset(allowed) if allowed else None
        self._confirm(offset)
        # Telegram lets one poll wait at a time: a newer one ends the older with 409.
        self._wake_poll("conflict")
        deadline = time.monotonic() + timeout
        while True:
            ready = self._deliverable(limit)
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self._stopping:
                for update in ready:
                    self.delivered[update["update_id"]] += 1
                return ready
            poll: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._poll = poll
            await self._notify()
            try:
                reason = await asyncio.wait_for(poll, remaining)
            except TimeoutError:
                return []
            finally:
                if self._poll is poll:
                    self._poll = None
            if reason == "conflict":
                raise _ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if reason == "stopped":
                return []

    async def _api_sendMessage(self, params: Mapping[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        text = str(params.get("text") or "")
        plain = self._parse(text, params.get("parse_mode"))
        if not plain.strip():
            raise _bad_request("message text is empty")
        if utf16_len(plain) > MESSAGE_LIMIT:
            raise _bad_request("message is too long")
        reply_to = self._reply_target(chat, params)
        return self._record_sent("sendMessage", chat, text, plain, params, reply_to)

    async def _api_sendPhoto(self, params: Mapping[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        photo = params.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            photo = params.get(photo.removeprefix("attach://"))
        if not isinstance(photo, bytes) or not photo:
            raise _bad_request("there is no photo in the request")
        caption = str(params.get("caption") or "")
        plain = self._parse(caption, params.get("parse_mode")) if caption else ""
        if utf16_len(plain) > CAPTION_LIMIT:
            raise _bad_request("message caption is too long")
        reply_to = self._reply_target(chat, params)
        return self._record_sent("sendPhoto", chat, caption, plain, params, reply_to, photo)

    async def _api_setMyCommands(self, params: Mapping[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request('field "commands" must be an Array')
        menu: list[tuple[str, str]] = []
        for command in commands:
            name, description = str(command["command"]), str(command["description"])
            if not _COMMAND_RE.fullmatch(name):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            menu.append((name, description))
        language = str(params.get("language_code") or "")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad_request("invalid language code specified")
        self.commands[language] = menu
        return True

    async def _api_getChat(self, params: Mapping[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        return {
            **chat.to_api(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _api_getChatMember(self, params: Mapping[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        user_id = _int(params, "user_id")
        status = self._members.get((chat.id, user_id), "member")
        user = {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}
        member: dict[str, Any] = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                dict.fromkeys(
                    (
                        "can_be_edited",
                        "is_anonymous",
                        "can_promote_members",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                    ),
                    False,
                )
            )
            member.update(
                dict.fromkeys(
                    (
                        "can_manage_chat",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_change_info",
                        "can_invite_users",
                        "can_pin_messages",
                    ),
                    True,
                )
            )
        elif status == "restricted":
            member.update(
                dict.fromkeys(
                    (
                        "is_member",
                        "can_change_info",
                        "can_invite_users",
                        "can_pin_messages",
                        "can_send_messages",
                        "can_send_polls",
                        "can_send_other_messages",
                        "can_add_web_page_previews",
                        "can_manage_topics",
                        "can_send_audios",
                        "can_send_documents",
                        "can_send_photos",
                        "can_send_videos",
                        "can_send_video_notes",
                        "can_send_voice_notes",
                        "can_edit_tag",
                        "can_react_to_messages",
                    ),
                    False,
                )
            )
            member["is_member"] = True
            member["until_date"] = 0
        elif status == "kicked":
            member["until_date"] = 0
        return member
