"""Chat exports read as streams of `ChatMessage`: Telegram Desktop JSON, WeChat CSV and text.

`open_export(path)` recognises the format from the file's first bytes and returns an `Export`
whose `entries()` yields, in file order, one entry per record: `Read` (a message to hand to the
desk, with `announce=False`), `Skipped` (a record that is not a text message: a service line,
a photo without caption) or `Broken` (a record that cannot be read: the reason and its line).
A broken record never stops the file; only a file that cannot be read past some point ends
early, with a `Broken` entry saying where. Files are read as they are walked, a window at a
time (a Telegram export of a million messages is a third of a gigabyte; the reader holds about
a megabyte of it), so memory does not grow with the file. This module knows nothing of the desk
or the ledger.

Formats understood
------------------
Telegram Desktop "Export chat history", machine-readable JSON (`result.json`):

- a single chat (`{"name", "type", "id", "messages": [...]}`) or a whole account
  (`{"chats": {"list": [chat, ...]}, "left_chats": {"list": [...]}}`);
- chats of type `private_group`, `private_supergroup`, `public_supergroup`, `private_channel`,
  `public_channel`; personal, bot and saved-messages chats are skipped, with a note;
- per message: `id` (the message id, unique in its chat), `type` (`"service"` is skipped),
  `date_unixtime` (else `date`, local time in `--timezone`), `edited`/`edited_unixtime`,
  `from`/`from_id` (`"user123"` → `123`, `"channel123"` → `-100123`, as the Bot API numbers
  them), `forwarded_from_id` (the forward's origin, when the export has it),
  `reply_to_message_id`, and `text` as a string or a list of strings and entity objects
  `{"type": ..., "text": ...}` (else `text_entities`). A message with no text (a photo, a
  sticker) is skipped as media.
- The chat id becomes the Bot API id, as the live bot sees it: `-100<id>` for supergroups
  and channels, `-<id>` for basic groups. Telegram writes a chat's `id` before its `messages`;
  a file that puts it after them is read too, holding that chat's messages until the id.

WeChat CSV, as written by MemoTrace/WeChatMsg, PyWxDump and similar tools. The first row names
the columns; names are matched without case, and a unit in brackets (`time(Asia/Shanghai)`) is
ignored. The first column present of each list is used:

- time (required): `CreateTime`, `StrTime`, `time`, `datetime`, `date`, `timestamp`, `时间`.
  Unix seconds or milliseconds, or `YYYY-MM-DD HH:MM[:SS]` (also with `/` or `T`) in
  `--timezone`;
- content (required): `StrContent`, `content`, `message`, `msg`, `text`, `内容`;
- sender id: `Sender`, `talker`, `sender_id`, `from_id`, `wxid`, `发送人ID`;
- sender name: `NickName`, `Remark`, `sender_name`, `from_nickname`, `name`, `发送人`;
  (at least one of sender id and name is required; each stands in for the other);
- type: `Type`, `type_name`, `content_type`, `msg_type`, `类型`. Only text is read: `1`,
  `text`, `文本`; anything else (`3` image, `10000` system, `图片`, ...) is skipped. With no
  type column every row is text;
- chat: `room_name`, `chat_id`, `group_id`, `chat`, `group`, `群聊`, and a title from
  `group_name`, `chat_name`, `room_topic`, `群名`. Without one, the chat is the file name
  without its extension and a `_utf8` or `_<n>_<m>` suffix (`GPU交易群_utf8.csv` →
  `GPU交易群`).

WeChat text, as MemoTrace's TXT export writes it: a header line `YYYY-MM-DD HH:MM[:SS] NAME`,
then the message's lines up to the next header. A header with no lines (a system notice) or
with only a placeholder such as `[图片]` is skipped; lines before the first header are broken.
The chat is named after the file, as for CSV; the sender id is the name shown.

Files may be UTF-8 (with or without BOM) or GB18030. WeChat messages have no id in every export,
so each gets one derived from chat, time, sender and text plus a count of earlier messages of
the same sender in the same second: importing a file twice yields the same ids.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from gpudesk.market.message import ChatMessage

TELEGRAM, WECHAT_CSV, WECHAT_TEXT = "telegram", "wechat-csv", "wechat-text"
FORMATS = (TELEGRAM, WECHAT_CSV, WECHAT_TEXT)


class ExportError(Exception):
    """An export file cannot be read; the message names the file and what would work."""


class UnknownFormat(ExportError):
    """The file is none of the formats this module reads."""


class UnreadableExport(ExportError):
    """The file is of a known format but cannot be opened or decoded."""


@dataclass(frozen=True, slots=True)
class Read:
    """A message read from the export, ready for the desk."""

    message: ChatMessage
    line: int
    offset: int  # progress mark: about how many bytes of the file lie before its end


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record that is not a text message (service line, media, a personal chat)."""

    reason: str
    line: int
    offset: int


@dataclass(frozen=True, slots=True)
class Broken:
    """A record that cannot be read: why, and on which line it starts."""

    reason: str
    line: int
    offset: int


Entry = Read | Skipped | Broken


@dataclass(frozen=True, slots=True)
class Export:
    """One export file: its format, its size in progress units, and its records on demand."""

    path: Path
    format: str
    size: int
    read: Callable[[], Iterator[Entry]]

    def entries(self) -> Iterator[Entry]:
        return self.read()


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """`--platform-chat [SOURCE=]PLATFORM:CHAT_ID`: store a chat's messages under another id.

    Without `source` it applies to every chat read; with it, to the chat whose title or
    exported id is `source`. Use it to join imported history to the chat the live bot knows.
    """

    platform: str
    chat_id: str
    source: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ChatTarget:
        source, _, target = spec.rpartition("=")
        platform, sep, chat_id = target.partition(":")
        if not sep or not platform.strip() or not chat_id.strip():
            raise ValueError(
                f"--platform-chat {spec!r} must be PLATFORM:CHAT_ID or SOURCE=PLATFORM:CHAT_ID,"
                " e.g. 'telegram:-1001234567890' or 'GPU交易群=wechat:12345@chatroom'"
            )
        return cls(platform.strip(), chat_id.strip(), source.strip() or None)

    def applies_to(self, message: ChatMessage) -> bool:
        return self.source is None or self.source in (message.chat_title, message.chat_id)

    def apply(self, message: ChatMessage) -> ChatMessage:
        return replace(message, platform=self.platform, chat_id=self.chat_id)


def retarget(message: ChatMessage, targets: tuple[ChatTarget, ...]) -> ChatMessage:
    """`message` moved to the first target that applies to it (unchanged when none does)."""
    for target in targets:
        if target.applies_to(message):
            return target.apply(message)
    return message


# -- detection ------------------------------------------------------------------------------

_SNIFF_BYTES = 64 * 1024
_TEXT_HEADER = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2}[ T]\d{1,2}:\d{2}(?::\d{2})?)\s+(\S.*?)\s*$")


def open_export(path: Path, *, zone: ZoneInfo, format: str = "auto") -> Export:
    """The export at `path`, its format recognised (or as given: one of `FORMATS`)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as error:
        raise UnreadableExport(f"{path}: cannot read the file ({error.strerror})") from None
    encoding = _encoding(head)
    text = head.decode(encoding, errors="ignore").lstrip("\ufeff")
    kind = format if format != "auto" else _sniff(text)
    if kind == TELEGRAM:
        return Export(path, kind, size, lambda: _telegram_entries(path, encoding, zone))
    if kind == WECHAT_CSV:
        return Export(path, kind, size, lambda: _wechat_csv_entries(path, encoding, zone))
    if kind == WECHAT_TEXT:
        return Export(path, kind, size, lambda: _wechat_text_entries(path, encoding, zone))
    raise UnknownFormat(
        f"{path}: not a chat export gpudesk can read. It reads Telegram Desktop's JSON export"
        " (result.json), a WeChat CSV with a header row (time, sender and content columns) and"
        " WeChat text ('2025-01-02 10:00:00 Name' then the message lines);"
        " see README (import)"
    )


def _encoding(head: bytes) -> str:
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut by the sniff window is still UTF-8.
        if error.start < len(head) - 3:
            return "gb18030"
    return "utf-8"


def _sniff(text: str) -> str | None:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return TELEGRAM
    lines = stripped.splitlines()
    try:
        header = next(csv.reader(lines[:1]))
    except (csv.Error, StopIteration):
        header = []
    columns = {_column_key(name) for name in header}
    if columns & set(_TIME_COLUMNS) and columns & set(_CONTENT_COLUMNS):
        return WECHAT_CSV
    # A text export may open with a title line or two before the first message header.
    if any(_TEXT_HEADER.match(line) for line in lines[:10]):
        return WECHAT_TEXT
    return None


# -- Telegram Desktop JSON ------------------------------------------------------------------

TELEGRAM_PLATFORM = "telegram"
_SUPERGROUPS = {"private_supergroup", "public_supergroup", "private_channel", "public_channel"}
_BASIC_GROUPS = {"private_group"}
_MEDIA_KEYS = (
    "photo",
    "file",
    "media_type",
    "sticker_emoji",
    "poll",
    "location_information",
    "contact_information",
    "game_title",
    "invoice_information",
)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class _JsonSyntax(Exception):
    def __init__(self, reason: str, pos: int):
        super().__init__(reason)
        self.reason = reason
        self.pos = pos


_CHUNK_BYTES = 1 << 20  # read a megabyte at a time
_MAX_VALUE_CHARS = 64 << 20  # a value still unfinished this far on is broken, not cut


class _Cursor:
    """Walks a JSON file one value at a time as it reads it, so a huge `messages` array is
    never held whole (the text held is a window of about `_CHUNK_BYTES` from the current
    line on), and every record keeps its line number. Positions (`pos`) count characters
    from the start of the file; `text` holds those from `base` on."""

    def __init__(self, handle: IO[bytes], encoding: str, size: int):
        self._handle = handle
        self._decode = codecs.getincrementaldecoder(encoding)(errors="replace").decode
        self._decoder = json.JSONDecoder()
        self.size = size
        self.text = ""
        self.base = 0
        self.pos = 0
        self.eof = False
        self._bytes = 0  # read so far
        self._line = 1  # the line number at character `_line_pos`
        self._line_pos = 0
        self._mark = 0

    def _fill(self) -> bool:
        """Read on: the next chunk joins the window, and what lies before the line the cursor
        is on leaves it (a broken record's indentation stays: `resync` reads it). False at the
        end of the file."""
        if self.eof:
            return False
        try:
            chunk = self._handle.read(_CHUNK_BYTES)
        except OSError as error:
            raise UnreadableExport(f"cannot read on ({error.strerror})") from None
        self._bytes += len(chunk)
        self.eof = not chunk
        more = self._decode(chunk, final=self.eof)
        keep = self.text.rfind("\n", 0, self.pos - self.base) + 1
        if keep > 0:
            if self._line_pos < self.base + keep:
                self._line += self.text.count("\n", self._line_pos - self.base, keep)
                self._line_pos = self.base + keep
            self.base += keep
            self.text = self.text[keep:] + more
        else:
            self.text += more
        return True

    def line_at(self, pos: int) -> int:
        """The line of character `pos` (at or after the start of the window)."""
        at, there = pos - self.base, self._line_pos - self.base
        if at >= there:
            self._line += self.text.count("\n", there, at)
        else:  # back to the start of a record read since
            self._line -= self.text.count("\n", at, there)
        self._line_pos = pos
        return self._line

    def mark(self, pos: int) -> int:
        """About how many bytes of the file lie before character `pos`: a progress mark, never
        moving back."""
        held = self.base + len(self.text)
        ahead = held - pos
        self._mark = max(self._mark, self._bytes - int(ahead * self._bytes / max(held, 1)))
        return min(self._mark, self.size)

    def peek(self) -> str:
        while True:
            at = _WHITESPACE.match(self.text, self.pos - self.base).end()  # type: ignore[union-attr]
            self.pos = self.base + at
            if at < len(self.text):
                return self.text[at]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = self.text[self.pos - self.base : self.pos - self.base + 1]
            raise _JsonSyntax(
                f"expected {char!r}, found {found or 'the end of the file'!r}", self.pos
            )
        self.pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            at = self.pos - self.base
            try:
                value, end = self._decoder.raw_decode(self.text, at)
            except json.JSONDecodeError as error:
                if self._cut(error.msg, error.pos, at) and self._fill():
                    continue
                raise _JsonSyntax(error.msg, self.base + error.pos) from None
            if end == len(self.text) and not isinstance(value, dict | list | str) and self._fill():
                continue  # a number or a literal may go on in the next chunk
            self.pos = self.base + end
            return value

    def _cut(self, reason: str, where: int, at: int) -> bool:
        """Whether a value starting at `at` that failed at `where` may only be cut short by the
        end of the window (so reading on may mend it)."""
        if self.eof or len(self.text) - at > _MAX_VALUE_CHARS:
            return False
        return where >= len(self.text) - 16 or reason.startswith("Unterminated string")

    def members(self) -> Iterator[str]:
        """The keys of the object at the cursor; the caller reads each value before the next."""
        self.expect("{")
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise _JsonSyntax("expected a key in double quotes", self.pos)
            self.expect(":")
            yield key
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect("}")
            return

    def items(self) -> Iterator[tuple[int, int, Any]]:
        """The elements of the array at the cursor, read, each with its first line and its
        progress mark. An element that is not valid JSON comes as its `_JsonSyntax`, and the
        walk goes on past it when the layout shows where the next one starts (`resync`)."""
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            start = self.pos
            try:
                element = self.value()
            except _JsonSyntax as error:
                if not self.resync(start):
                    raise _JsonSyntax(error.reason, start) from None
                element = error
            yield self.line_at(start), self.mark(self.pos), element
            following = self.peek()
            if following == ",":
                self.pos += 1
                self.peek()
            elif following == "]":
                self.pos += 1
                return
            elif following != "{":  # a missing comma is forgiven; anything else is not
                raise _JsonSyntax(f"expected ',' or ']', found {following!r}", self.pos)

    def resync(self, start: int) -> bool:
        """After a broken array element at `start`, move to the next element or the array's end.

        Telegram Desktop pretty-prints one element per indented block, so the next element
        starts on a line indented as this one, and the array ends on a line indented less.
        False when there is no such line (a minified or truncated file): the rest is lost."""
        at = start - self.base
        line_start = self.text.rfind("\n", 0, at) + 1
        indent = self.text[line_start:at]
        if not indent or indent.strip():
            return False
        boundary = re.compile(rf"\n{re.escape(indent)}(\{{)|\n[ \t]{{0,{len(indent) - 1}}}(\])")
        searched = start + 1  # a boundary starts at or after this character
        while True:
            found = boundary.search(self.text, searched - self.base)
            if found is not None:
                self.pos = self.base + (found.start(1) if found.group(1) else found.start(2))
                return True
            searched = max(searched, self.base + len(self.text) - len(indent) - 2)
            if self.base + len(self.text) - start > _MAX_VALUE_CHARS or not self._fill():
                return False


@dataclass(frozen=True, slots=True)
class _TelegramChat:
    chat_id: str
    title: str | None
    is_group: bool


def _telegram_entries(path: Path, encoding: str, zone: ZoneInfo) -> Iterator[Entry]:
    try:
        handle = path.open("rb")
        size = os.fstat(handle.fileno()).st_size
    except OSError as error:
        raise UnreadableExport(f"{path}: cannot read the file ({error.strerror})") from None
    with handle:
        cursor = _Cursor(handle, encoding, size)
        try:
            yield from _telegram_chat(cursor, zone)
        except _JsonSyntax as error:
            yield Broken(
                f"not valid JSON ({error.reason}); nothing after this line could be read",
                cursor.line_at(max(error.pos, cursor.base)),
                size,
            )
        except UnreadableExport as error:
            raise UnreadableExport(f"{path}: {error}") from None


def _telegram_chat(cursor: _Cursor, zone: ZoneInfo) -> Iterator[Entry]:
    """One chat object (or the account object around the chats): its messages, streamed."""
    info: dict[str, Any] = {}
    held: list[tuple[int, int, Any]] | None = None
    for key in cursor.members():
        if key == "messages":
            cursor.peek()
            line = cursor.line_at(cursor.pos)
            if "id" in info:
                yield from _telegram_messages(cursor, line, cursor.items(), info, zone)
            else:  # the chat's id comes later (Telegram writes it first): hold them till then
                held = [(line, 0, None), *cursor.items()]
        elif key in ("chats", "left_chats") and cursor.peek() == "{":
            for inner in cursor.members():
                if inner == "list" and cursor.peek() == "[":
                    for _ in _chat_objects(cursor):
                        yield from _telegram_chat(cursor, zone)
                else:
                    cursor.value()
        else:
            info[key] = cursor.value()
    if held is not None:
        yield from _telegram_messages(cursor, held[0][0], iter(held[1:]), info, zone)


def _chat_objects(cursor: _Cursor) -> Iterator[None]:
    """The array of chats at the cursor: stops at each element for the caller to read it."""
    cursor.expect("[")
    if cursor.peek() == "]":
        cursor.pos += 1
        return
    while True:
        yield
        following = cursor.peek()
        if following == ",":
            cursor.pos += 1
        elif following == "]":
            cursor.pos += 1
            return
        elif following != "{":  # a missing comma is forgiven; anything else is not
            raise _JsonSyntax(f"expected ',' or ']', found {following!r}", cursor.pos)


def _telegram_messages(
    cursor: _Cursor,
    line: int,
    elements: Iterator[tuple[int, int, Any]],
    info: dict[str, Any],
    zone: ZoneInfo,
) -> Iterator[Entry]:
    """A chat's `messages` (which start on `line`), one entry per element; a broken element is
    reported and skipped."""
    kind = str(info.get("type", ""))
    title = None if info.get("name") is None else str(info["name"])
    if kind not in _SUPERGROUPS and kind not in _BASIC_GROUPS:
        count = sum(1 for _ in elements)  # read past, one at a time
        label = kind.replace("_", " ") or "chat of no type"
        yield Skipped(
            f"{label} {title or info.get('id')!r}: not a group, its {count} messages are skipped",
            line,
            cursor.mark(cursor.pos),
        )
        return
    chat = _TelegramChat(_telegram_chat_id(info.get("id"), kind), title, True)
    for start, offset, record in elements:
        if isinstance(record, _JsonSyntax):
            yield Broken(f"not valid JSON ({record.reason})", start, offset)
        else:
            yield _telegram_entry(record, chat, zone, start, offset)


def _telegram_chat_id(raw: Any, kind: str) -> str:
    """The chat's id as the Bot API (and so the live bot) numbers it."""
    text = str(raw)
    if text.startswith("-") or not text.isdigit():
        return text
    if kind in _SUPERGROUPS:
        return f"-100{text}"
    return f"-{text}"


def _telegram_peer(raw: Any) -> str | None:
    """`"user123"` → `"123"`, `"channel123"` → `"-100123"`, `"chat123"` → `"-123"`."""
    if raw is None:
        return None
    text = str(raw)
    for prefix, replacement in (("user", ""), ("channel", "-100"), ("chat", "-")):
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            return replacement + text[len(prefix) :]
    return text or None


def _telegram_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        parts = []
        for part in raw:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def _telegram_time(record: dict[str, Any], zone: ZoneInfo) -> datetime | None:
    unix = record.get("date_unixtime")
    if unix is not None:
        try:
            return datetime.fromtimestamp(int(unix), UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            pass
    date = record.get("date")
    if isinstance(date, str):
        try:
            moment = datetime.fromisoformat(date)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)
    return None


def _telegram_entry(
    record: Any, chat: _TelegramChat, zone: ZoneInfo, line: int, offset: int
) -> Entry:
    if not isinstance(record, dict):
        return Broken("a message must be a JSON object", line, offset)
    kind = record.get("type", "message")
    if kind == "service":
        return Skipped(f"service message ({record.get('action', 'unknown action')})", line, offset)
    if kind != "message":
        return Skipped(f"{kind} record", line, offset)
    message_id = record.get("id")
    if isinstance(message_id, bool) or not isinstance(message_id, int | str) or message_id == "":
        return Broken("message has no id", line, offset)
    sent_at = _telegram_time(record, zone)
    if sent_at is None:
        return Broken(f"message {message_id} has no readable date", line, offset)
    text = _telegram_text(record["text"] if "text" in record else record.get("text_entities"))
    if not text.strip():
        media = next((key for key in _MEDIA_KEYS if key in record), None)
        reason = f"media without text ({media})" if media else "empty message"
        return Skipped(reason, line, offset)
    sender_name = record.get("from")
    sender_id = _telegram_peer(record.get("from_id")) or chat.chat_id
    origin_id = _telegram_peer(record.get("forwarded_from_id"))
    reply_to = record.get("reply_to_message_id")
    message = ChatMessage(
        platform=TELEGRAM_PLATFORM,
        chat_id=chat.chat_id,
        sender_id=sender_id,
        sender_name=str(sender_name) if sender_name else sender_id,
        text=text,
        sent_at=sent_at,
        message_id=str(message_id),
        chat_title=chat.title,
        is_group=chat.is_group,
        reply_to_id=None if reply_to is None else str(reply_to),
        edited="edited" in record or "edited_unixtime" in record,
        # The live bot knows a forward's origin only when Telegram names its id; so here.
        origin_sender_id=origin_id,
        origin_sender_name=str(record.get("forwarded_from") or origin_id) if origin_id else None,
        announce=False,
    )
    return Read(message, line, offset)


# -- WeChat CSV ------------------------------------------------------------------------------

WECHAT_PLATFORM = "wechat"

_TIME_COLUMNS = ("createtime", "strtime", "time", "datetime", "date", "timestamp", "时间")
_CONTENT_COLUMNS = ("strcontent", "content", "message", "msg", "text", "内容")
_SENDER_ID_COLUMNS = ("sender", "talker", "sender_id", "from_id", "wxid", "发送人id")
_SENDER_NAME_COLUMNS = ("nickname", "remark", "sender_name", "from_nickname", "name", "发送人")
_TYPE_COLUMNS = ("type", "type_name", "content_type", "msg_type", "类型")
_CHAT_COLUMNS = ("room_name", "chat_id", "group_id", "chat", "group", "群聊")
_CHAT_TITLE_COLUMNS = ("group_name", "chat_name", "room_topic", "群名")
_TEXT_TYPES = frozenset({"1", "text", "文本"})
_FILE_SUFFIX = re.compile(r"(_utf8|_\d+_\d+)$", re.IGNORECASE)


def _column_key(name: str) -> str:
    """`" time(Asia/Shanghai) "` → `"time"`: headers compared without case, space or unit."""
    return re.sub(r"[(（].*?[)）]", "", name.lstrip("\ufeff")).strip().lower()


class _CountingReader(io.RawIOBase):
    """A binary file that counts the bytes read through it: the progress of a stream."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.count += n or 0
        return n or 0

    def close(self) -> None:
        self.raw.close()
        super().close()


def _open_text(path: Path, encoding: str, newline: str | None) -> tuple[IO[str], _CountingReader]:
    try:
        raw = path.open("rb")
    except OSError as error:
        raise UnreadableExport(f"{path}: cannot read the file ({error.strerror})") from None
    counter = _CountingReader(raw)
    handle = io.TextIOWrapper(
        io.BufferedReader(counter), encoding=encoding, errors="replace", newline=newline
    )
    return handle, counter


def _chat_from_file(path: Path) -> str:
    return _FILE_SUFFIX.sub("", path.stem) or path.stem


class _WechatIds:
    """Stable message ids for WeChat exports: a digest of chat, time, sender and text, plus the
    position among the sender's messages in that second (two identical '+1' stay two)."""

    def __init__(self) -> None:
        self._second: str | None = None
        self._seen: dict[tuple[str, str], int] = {}

    def next(self, chat_id: str, sent_at: datetime, sender_id: str, text: str) -> str:
        second = sent_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
        if second != self._second:  # exports are in time order: only this second's counts matter
            self._second = second
            self._seen.clear()
        key = (chat_id, sender_id)
        sequence = self._seen.get(key, 0)
        self._seen[key] = sequence + 1
        digest = hashlib.sha1(
            "\x1f".join((chat_id, second, sender_id, text)).encode("utf-8", "replace")
        ).hexdigest()[:16]
        return f"{second}-{digest}-{sequence}"


_LOCAL_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")


def _wechat_time(value: str, zone: ZoneInfo) -> datetime | None:
    """Unix seconds or milliseconds, or a local `YYYY-MM-DD HH:MM[:SS]` in `zone`."""
    value = value.strip()
    if value.isdigit():
        number = int(value)
        seconds = number / 1000 if number > 100_000_000_000 else number
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    value = value.replace("/", "-")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
        for layout in _LOCAL_FORMATS:  # `2025-1-2 9:05`, which fromisoformat refuses
            try:
                moment = datetime.strptime(value, layout)
                break
            except ValueError:
                continue
        if moment is None:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _first(columns: dict[str, int], names: tuple[str, ...]) -> int | None:
    return next((columns[name] for name in names if name in columns), None)


def _wechat_csv_entries(path: Path, encoding: str, zone: ZoneInfo) -> Iterator[Entry]:
    handle, counter = _open_text(path, encoding, newline="")
    with handle:
        rows = csv.reader(handle)
        try:
            header = next(rows)
        except (StopIteration, csv.Error):
            yield Broken("no header row", 1, counter.count)
            return
        columns: dict[str, int] = {}
        for index, name in enumerate(header):
            columns.setdefault(_column_key(name), index)
        at_time = _first(columns, _TIME_COLUMNS)
        at_text = _first(columns, _CONTENT_COLUMNS)
        at_sender = _first(columns, _SENDER_ID_COLUMNS)
        at_name = _first(columns, _SENDER_NAME_COLUMNS)
        if at_time is None or at_text is None or (at_sender is None and at_name is None):
            raise UnreadableExport(
                f"{path}: the header row ({', '.join(header)}) needs a time, a content and a"
                " sender column; see README (import) for the names understood"
            )
        at_type = _first(columns, _TYPE_COLUMNS)
        at_chat = _first(columns, _CHAT_COLUMNS)
        at_title = _first(columns, _CHAT_TITLE_COLUMNS)
        file_chat = _chat_from_file(path)
        width = len(header)
        ids = _WechatIds()
        line = rows.line_num + 1
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as error:
                yield Broken(f"not a CSV record ({error})", line, counter.count)
                line = rows.line_num + 1
                continue
            start, line = line, rows.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            if len(row) != width:
                reason = f"{len(row)} fields where the header has {width}"
                yield Broken(reason, start, counter.count)
                continue
            if at_type is not None and row[at_type].strip().lower() not in _TEXT_TYPES:
                yield Skipped(f"not a text message (type {row[at_type]})", start, counter.count)
                continue
            text = row[at_text]
            if not text.strip():
                yield Skipped("empty message", start, counter.count)
                continue
            sent_at = _wechat_time(row[at_time], zone)
            if sent_at is None:
                yield Broken(f"unreadable time {row[at_time]!r}", start, counter.count)
                continue
            sender_id = (row[at_sender] if at_sender is not None else "").strip()
            sender_name = (row[at_name] if at_name is not None else "").strip()
            sender_id = sender_id or sender_name
            if not sender_id:
                yield Broken("no sender", start, counter.count)
                continue
            title = (row[at_title].strip() if at_title is not None else "") or None
            chat_id = row[at_chat].strip() if at_chat is not None else ""
            if not chat_id:  # no chat column: the chat is named after the file
                chat_id, title = file_chat, title or file_chat
            message = ChatMessage(
                platform=WECHAT_PLATFORM,
                chat_id=chat_id,
                sender_id=sender_id,
                sender_name=sender_name or sender_id,
                text=text,
                sent_at=sent_at,
                message_id=ids.next(chat_id, sent_at, sender_id, text),
                chat_title=title,
                announce=False,
            )
            yield Read(message, start, counter.count)


# -- WeChat text -----------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"^\[[^\[\]\n]{1,8}\]$")  # [图片], [语音], [表情包], [视频], [文件]


def _wechat_text_entries(path: Path, encoding: str, zone: ZoneInfo) -> Iterator[Entry]:
    handle, counter = _open_text(path, encoding, newline=None)
    chat_id = _chat_from_file(path)
    ids = _WechatIds()
    header: tuple[int, datetime | None, str, str] | None = None  # line, time, raw time, name
    body: list[str] = []
    stray: int | None = None  # first line of text before any header

    def finish() -> Entry | None:
        if header is None:
            return None
        line, sent_at, raw_time, name = header
        while body and not body[-1].strip():
            body.pop()
        text = "\n".join(body)
        if sent_at is None:
            return Broken(f"unreadable time {raw_time!r}", line, counter.count)
        if not text.strip():
            return Skipped("system notice or empty message", line, counter.count)
        if _PLACEHOLDER.match(text.strip()):
            return Skipped(f"media without text ({text.strip()})", line, counter.count)
        message = ChatMessage(
            platform=WECHAT_PLATFORM,
            chat_id=chat_id,
            sender_id=name,
            sender_name=name,
            text=text,
            sent_at=sent_at,
            message_id=ids.next(chat_id, sent_at, name, text),
            chat_title=chat_id,
            announce=False,
        )
        return Read(message, line, counter.count)

    with handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if number == 1:
                line = line.lstrip("\ufeff")
            found = _TEXT_HEADER.match(line)
            if found:
                entry = finish()
                if entry is not None:
                    yield entry
                raw_time, name = found.group(1), found.group(2)
                header = (number, _wechat_time(raw_time, zone), raw_time, name)
                body = []
            elif header is not None:
                if body or line.strip():
                    body.append(line)
            elif line.strip() and stray is None:
                stray = number
                yield Broken("text before the first message header", number, counter.count)
        entry = finish()
        if entry is not None:
            yield entry
