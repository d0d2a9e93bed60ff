"""What an adapter needs to send durably (issue 9): the replies still owed, and a way to say
each is done. `gpudesk.storage.ledger.Ledger` provides it (its "-- outbox --" section);
`MemoryOutbox` is the same in memory, for an adapter run without a ledger (tests, benchmarks).

The desk queues its replies in the ledger in the same transaction that marks their message
handled; replies the desk did not answer a message with (a digest, a watch digest) are queued
by the adapter's `send()`. The adapter sends them, marks each `sent` (or `failed`, when the
platform refuses it for good), and on start sends again whatever a crash or a stop left queued.
Delivery is at least once: a crash between the send and its mark sends that reply once more.
Watch alerts and digests are the exception, at most once as their issues ask: the adapter
marks one `sending` before it goes, and a reply left `sending` by a crash is not sent again.

Two rules keep the outbox from growing and from speaking out of turn (`OutboxPolicy`):

- A reply still queued long after it was written is stale: after an outage, a match reply
  from yesterday would only confuse. Before sending, the adapter marks every queued reply older
  than `resend_within` (24 h) `expired`, with a log line; it is kept, never sent. A digest
  keeps the digest's own rule instead: it may go at most `digest_within` late (`[digest]
  grace_hours`, at least an hour), as the scheduler's catch-up after a restart may.
- Sent replies are deleted `keep_sent` (7 days) after they went (`OutboxJanitor`, at start
  and hourly); queued, failed and expired ones stay. WeChat's daily cap reads the sent rows of
  the day, so they are kept at least a day.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from gpudesk.handlers.message import Reply
from gpudesk.storage.ledger import (
    OUTBOX_EXPIRED,
    OUTBOX_FAILED,
    OUTBOX_QUEUED,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    QueuedReply,
)

__all__ = [
    "MemoryOutbox",
    "OutboxJanitor",
    "OutboxPolicy",
    "QueuedReply",
    "ReplyOutbox",
    "expire_stale",
]

log = logging.getLogger(__name__)

AT_MOST_ONCE = frozenset({"alert", "digest"})  # reply kinds marked `sending` before they go


class ReplyOutbox(Protocol):
    def queue_replies(
        self, replies: Sequence[Reply], *, message_row: int | None, at: datetime
    ) -> list[Reply]:
        """Queue `replies` (one transaction); they come back with their `outbox_id`."""
        ...

    def unsent_replies(self, platform: str) -> list[Reply]:
        """Replies on `platform` still queued, oldest first, each with its `outbox_id`."""
        ...

    def queued_replies(self, platform: str, *, chat_id: str | None = None) -> list[QueuedReply]:
        """The same with the time each was queued; only those to `chat_id` if given."""
        ...

    def begin_reply(self, outbox_id: int, *, at: datetime) -> None:
        """Mark an at-most-once reply as going out: a crash from here on never resends it."""
        ...

    def finish_reply(
        self, outbox_id: int, *, at: datetime, status: str = "sent", note: str | None = None
    ) -> None:
        """Mark a reply `sent`, or `failed` with a `note`."""
        ...

    def finish_replies(
        self,
        outbox_ids: Sequence[int],
        *,
        at: datetime,
        status: str = "sent",
        note: str | None = None,
        platform_messages: int | None = None,
    ) -> None:
        """Mark several replies at once (one transaction): a batch sent as one message."""
        ...

    def expire_replies(self, outbox_ids: Sequence[int], *, at: datetime, note: str) -> int:
        """Mark queued replies `expired` (kept, never sent); how many were still queued."""
        ...

    def sent_messages(
        self, platform: str, chat_id: str, *, since: datetime, until: datetime
    ) -> int:
        """Platform messages sent to `chat_id` in [since, until): what a daily cap has used."""
        ...

    def prune_replies(self, *, finished_before: datetime) -> int:
        """Delete the replies sent before `finished_before`; how many went."""
        ...


@dataclass(frozen=True, slots=True)
class OutboxPolicy:
    """How late a queued reply may still go, and how long a sent one is kept (`[outbox]`)."""

    resend_within: timedelta = timedelta(hours=24)
    digest_within: timedelta = timedelta(hours=6)
    keep_sent: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if self.resend_within <= timedelta(0) or self.digest_within <= timedelta(0):
            raise ValueError("resend_within and digest_within must be positive")
        if self.keep_sent < timedelta(days=1):
            raise ValueError("keep_sent must be at least a day: the daily cap counts sent rows")

    @classmethod
    def of(
        cls, *, resend_within_hours: float, keep_sent_days: float, digest_grace_hours: float
    ) -> OutboxPolicy:
        """From the settings: a digest may go `[digest] grace_hours` late, at least an hour."""
        return cls(
            resend_within=timedelta(hours=resend_within_hours),
            digest_within=timedelta(hours=max(digest_grace_hours, 1.0)),
            keep_sent=timedelta(days=keep_sent_days),
        )

    def limit(self, kind: str) -> timedelta:
        """How long after it was queued a reply of `kind` may still be sent."""
        return self.digest_within if kind == "digest" else self.resend_within


def expire_stale(
    outbox: ReplyOutbox,
    queued: Sequence[QueuedReply],
    *,
    now: datetime,
    policy: OutboxPolicy,
    where: str,
    logger: logging.Logger = log,
) -> list[QueuedReply]:
    """Mark the replies of `queued` that waited past their limit `expired`, logging them (one
    line per chat and kind); return the others, still to be sent, in order. `where` names
    the platform in the log ("WeChat")."""
    stale = [q for q in queued if now - q.queued_at > policy.limit(q.reply.kind)]
    if not stale:
        return list(queued)
    groups: dict[tuple[str, str], list[QueuedReply]] = {}
    for item in stale:
        groups.setdefault((item.reply.chat_id, item.reply.kind), []).append(item)
    for (chat_id, kind), items in groups.items():
        limit = policy.limit(kind)
        ids = [q.reply.outbox_id for q in items if q.reply.outbox_id is not None]
        expired = outbox.expire_replies(
            ids, at=now, note=f"queued more than {_hours(limit)} before it could be sent"
        )
        oldest = max(now - q.queued_at for q in items)
        logger.warning(
            "%s: %d %s repl%s to %s queued up to %s ago, past the %s limit: marked expired, "
            "not sent (outbox ids %s)",
            where,
            expired,
            kind,
            "y" if expired == 1 else "ies",
            chat_id,
            _hours(oldest),
            _hours(limit),
            _id_ranges(ids),
        )
    gone = {id(q) for q in stale}
    return [q for q in queued if id(q) not in gone]


class OutboxJanitor:
    """Deletes sent replies older than `policy.keep_sent`: once on `start()`, then every
    `every` (an hour) until `stop()`. `run_once()` does one pass (tests call it directly)."""

    def __init__(
        self,
        outbox: ReplyOutbox,
        policy: OutboxPolicy,
        *,
        every: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.outbox = outbox
        self.policy = policy
        self.every = every
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    def run_once(self) -> int:
        """Delete what was sent more than `keep_sent` ago; how many replies went."""
        cutoff = self.clock() - self.policy.keep_sent
        pruned = self.outbox.prune_replies(finished_before=cutoff)
        if pruned:
            log.info(
                "outbox: deleted %d repl%s sent before %s",
                pruned,
                "y" if pruned == 1 else "ies",
                cutoff.isoformat(timespec="minutes"),
            )
        return pruned

    def start(self) -> None:
        """Prune now, then every `every`; call in the running loop."""
        if self._task is not None:
            raise RuntimeError("OutboxJanitor already started")
        self._safely()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="outbox-janitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every.total_seconds())
            self._safely()

    def _safely(self) -> None:
        try:
            self.run_once()
        except Exception:  # a locked or full disk now: the next pass tries again
            log.exception("outbox: could not delete old sent replies")


class MemoryOutbox:
    """A `ReplyOutbox` in memory: the same rules, nothing survives the process. For an adapter
    run without a ledger (a stub desk in tests, a benchmark)."""

    def __init__(self) -> None:
        self._rows: dict[int, _Row] = {}
        self._ids = itertools.count(1)

    def queue_replies(
        self, replies: Sequence[Reply], *, message_row: int | None, at: datetime
    ) -> list[Reply]:
        queued = []
        for reply in replies:
            row_id = next(self._ids)
            queued.append(replace(reply, outbox_id=row_id))
            self._rows[row_id] = _Row(queued[-1], at)
        return queued

    def unsent_replies(self, platform: str) -> list[Reply]:
        return [q.reply for q in self.queued_replies(platform)]

    def queued_replies(self, platform: str, *, chat_id: str | None = None) -> list[QueuedReply]:
        return [
            QueuedReply(row.reply, row.queued_at)
            for row in self._rows.values()
            if row.status == OUTBOX_QUEUED
            and row.reply.platform == platform
            and chat_id in (None, row.reply.chat_id)
        ]

    def begin_reply(self, outbox_id: int, *, at: datetime) -> None:
        row = self._rows[outbox_id]
        if row.status == OUTBOX_QUEUED:
            row.status, row.finished_at = OUTBOX_SENDING, at

    def finish_reply(
        self, outbox_id: int, *, at: datetime, status: str = "sent", note: str | None = None
    ) -> None:
        self.finish_replies([outbox_id], at=at, status=status, note=note)

    def finish_replies(
        self,
        outbox_ids: Sequence[int],
        *,
        at: datetime,
        status: str = "sent",
        note: str | None = None,
        platform_messages: int | None = None,
    ) -> None:
        if status not in (OUTBOX_SENT, OUTBOX_FAILED):
            raise ValueError(f"outbox status {status!r}; one of {OUTBOX_SENT}, {OUTBOX_FAILED}")
        for n, outbox_id in enumerate(outbox_ids):
            row = self._rows[outbox_id]
            row.status, row.finished_at, row.note = status, at, note
            row.platform_messages = platform_messages if n == 0 or platform_messages is None else 0

    def expire_replies(self, outbox_ids: Sequence[int], *, at: datetime, note: str) -> int:
        expired = 0
        for outbox_id in outbox_ids:
            row = self._rows[outbox_id]
            if row.status == OUTBOX_QUEUED:
                row.status, row.finished_at, row.note = OUTBOX_EXPIRED, at, note
                expired += 1
        return expired

    def sent_messages(
        self, platform: str, chat_id: str, *, since: datetime, until: datetime
    ) -> int:
        return sum(
            1 if row.platform_messages is None else row.platform_messages
            for row in self._rows.values()
            if row.status in (OUTBOX_SENT, OUTBOX_SENDING)
            and (row.reply.platform, row.reply.chat_id) == (platform, chat_id)
            and row.finished_at is not None
            and since <= row.finished_at < until
        )

    def prune_replies(self, *, finished_before: datetime) -> int:
        gone = [
            row_id
            for row_id, row in self._rows.items()
            if row.status in (OUTBOX_SENT, OUTBOX_SENDING)
            and row.finished_at is not None
            and row.finished_at < finished_before
        ]
        for row_id in gone:
            del self._rows[row_id]
        return len(gone)

    def outbox_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(
            (OUTBOX_QUEUED, OUTBOX_SENDING, OUTBOX_SENT, OUTBOX_FAILED, OUTBOX_EXPIRED), 0
        )
        for row in self._rows.values():
            counts[row.status] += 1
        return counts


@dataclass(slots=True)
class _Row:
    reply: Reply
    queued_at: datetime
    status: str = OUTBOX_QUEUED
    finished_at: datetime | None = None
    note: str | None = None
    platform_messages: int | None = None


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"


def _id_ranges(ids: Sequence[int]) -> str:
    """`[3, 4, 5, 9]` as "3-5, 9"."""
    parts = []
    for _, run in itertools.groupby(enumerate(sorted(ids)), lambda pair: pair[1] - pair[0]):
        values = [value for _, value in run]
        parts.append(str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}")
    return ", ".join(parts)
