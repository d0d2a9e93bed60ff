"""What an adapter needs to send durably (issue 9): the replies still owed, and a way to say
each is done. `gpudesk.storage.ledger.Ledger` provides it (its "-- outbox --" section).

The desk queues its replies in the ledger in the same transaction that marks their message
handled; the adapter sends them, marks each `sent` (or `failed`, when the platform refuses it
for good), and on start sends again whatever a crash or a stop left queued. Delivery is at
least once: a crash between the send and its mark sends that reply once more. Watch alerts are
the exception, at most once as their issue asks: the adapter marks one `sending` before it
goes, and a reply left `sending` by a crash is not sent again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from gpudesk.handlers.message import Reply

__all__ = ["ReplyOutbox"]


class ReplyOutbox(Protocol):
    def unsent_replies(self, platform: str) -> list[Reply]:
        """Replies on `platform` still queued, oldest first, each with its `outbox_id`."""
        ...

    def begin_reply(self, outbox_id: int, *, at: datetime) -> None:
        """Mark an at-most-once reply as going out: a crash from here on never resends it."""
        ...

    def finish_reply(
        self, outbox_id: int, *, at: datetime, status: str = "sent", note: str | None = None
    ) -> None:
        """Mark a reply `sent`, or `failed` with a `note`."""
        ...
