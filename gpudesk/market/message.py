"""The platform-neutral chat message that every adapter hands in, and the replies it gets back.

They live in the core because the ledger stores them; adapters import them from
`gpudesk.handlers.message`, the handlers' public face.

Adapters (console, Telegram, WeChat, history import) only translate: a platform update becomes a
`ChatMessage`; `Desk.handle()` stores it, reads it and returns `Reply` objects; the adapter sends
them. Reply text is plain text: each adapter escapes it for its own wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message as it arrived in a chat, in platform-neutral terms.

    `sent_at` is timezone-aware (UTC in storage). `message_id` is the platform's own id, unique
    within the chat: together with platform and chat it makes re-delivery a no-op.
    """

    platform: str  # "console", "telegram", "wechat", "import"
    chat_id: str
    sender_id: str
    sender_name: str
    text: str
    sent_at: datetime
    message_id: str
    chat_title: str | None = None
    is_group: bool = True
    reply_to_id: str | None = None  # platform message id this one answers
    edited: bool = False  # a new version of an already delivered message_id
    sender_is_admin: bool = False  # a group admin, as the platform says (asked only when needed)
    origin_sender_id: str | None = None  # forwarded: who really posted it, when known
    origin_sender_name: str | None = None
    link: str | None = None  # a URL to the post (Telegram public groups)
    announce: bool = True  # False for history: store and read, but reply to nothing

    @property
    def poster_id(self) -> str:
        """Who the offers in this message belong to: the origin of a forward, else the sender."""
        return self.origin_sender_id or self.sender_id

    @property
    def poster_name(self) -> str:
        return self.origin_sender_name or self.sender_name


@dataclass(frozen=True, slots=True)
class Reply:
    """Something the desk wants said: in `chat_id` on `platform`, threaded under `reply_to_id`.

    `private=True` means a direct message to the user `chat_id` rather than to a group.
    `image` carries a PNG (the digest chart); `mention_ids` are users to @-mention.
    """

    platform: str
    chat_id: str
    text: str
    reply_to_id: str | None = None
    private: bool = False
    image: bytes | None = None
    mention_ids: tuple[str, ...] = field(default=())
    kind: str = "answer"  # "answer" to a command, "match", "alert", "digest"
    outbox_id: int | None = None  # its row in the ledger's outbox, once queued there (issue 9)
    # A private alert to a member who never started the bot goes here instead, as a mention
    # (Telegram refuses a first direct message): the group they set the watch in (issue 10).
    fallback_chat_id: str | None = None
