"""Backfill: chat exports fed through the desk, in batches, with progress and a summary.

`backfill(desk, exports)` reads every message an `Export` yields as the desk reads live ones
(stored with source "import", read for offers, reposts and withdrawals, never answered), so
imported history and live traffic are one ledger. Re-importing a file adds nothing: message ids
come from the export and the ledger ignores a message it already has.

Messages go in batches, each one ledger transaction. A batch is collected and read
(`Desk.prepare`: cleaned, parsed) before the write lock is taken, then written in one go
(`Desk.read_history`: no savepoint per message, repost checks from memory), sized so that it
holds the lock about `BATCH_SECONDS`: a running bot gets the lock between batches. A batch with
a message the desk cannot read fails as a whole, is rolled back, and is written again one
message at a time through `Desk.handle`, each message a savepoint: that one rolls back its own
writes only, and is listed as a problem. Skipped and broken records are counted and listed in
the `ImportReport`, never fatal.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol, TextIO

from gpudesk.bot.importers import (
    Broken,
    ChatTarget,
    Entry,
    Export,
    ExportError,
    Read,
    Skipped,
    retarget,
)
from gpudesk.handlers.desk import Desk, Prepared

log = logging.getLogger(__name__)

BATCH_SECONDS = 0.5  # the write lock held per batch, about: a bot waits at most this long
BATCH_MESSAGES = 20_000
FIRST_BATCH = 1_000  # messages, before the import's speed is known
MIN_BATCH = 100
TIME_JUMP = timedelta(days=1)  # back in time this far, a message starts a new batch
PROGRESS_EVERY = 500  # entries between progress updates (an update costs more than an entry)
SHOWN_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class Problem:
    """A record that was not imported: which file, which line, why."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.reason}"


@dataclass
class ImportReport:
    files: list[Path] = field(default_factory=list)
    read: int = 0  # messages handed to the desk
    new_messages: int = 0  # of those, not in the ledger before
    new_offers: int = 0  # offers the ledger gained (reposts refresh an offer instead)
    skipped: Counter[str] = field(default_factory=Counter)  # why, and how many
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> list[str]:
        """The end-of-import report, one line each, for people."""
        lines = [
            f"imported {len(self.files)} file(s) in {self.seconds:.1f} s"
            f" ({self.rate:,.0f} messages/s)",
            f"  messages read:   {self.read:,} ({self.new_messages:,} new,"
            f" {self.read - self.new_messages:,} already in the ledger)",
            f"  offers found:    {self.new_offers:,} new in the ledger",
            f"  skipped:         {sum(self.skipped.values()):,}",
        ]
        for reason, count in self.skipped.most_common():
            lines.append(f"    {count:>8,}  {reason}")
        lines.append(f"  errors:          {len(self.problems):,}")
        for problem in self.problems[:SHOWN_PROBLEMS]:
            lines.append(f"    {problem}")
        if len(self.problems) > SHOWN_PROBLEMS:
            lines.append(f"    ... and {len(self.problems) - SHOWN_PROBLEMS:,} more")
        return lines


class Progress(Protocol):
    """Where backfill reports how far it is: a progress bar, log lines, or nothing."""

    def begin(self, export: Export) -> None: ...

    def update(self, offset: int, messages: int) -> None: ...

    def end(self) -> None: ...


class NoProgress:
    def begin(self, export: Export) -> None:
        pass

    def update(self, offset: int, messages: int) -> None:
        pass

    def end(self) -> None:
        pass


def backfill(
    desk: Desk,
    exports: Sequence[Export],
    *,
    targets: tuple[ChatTarget, ...] = (),
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ImportReport:
    """Feed every message of `exports` through `desk`, in order; what happened, counted."""
    progress = progress or NoProgress()
    ledger = desk.ledger
    report = ImportReport(files=[export.path for export in exports])
    messages_before, offers_before = ledger.message_count(), ledger.offer_count()
    started = clock()
    size = FIRST_BATCH
    with ledger.bulk():
        for export in exports:
            progress.begin(export)
            entries = export.entries()
            carried: list[tuple[Read, Prepared]] = []  # the first of the next batch, if read
            more = True
            while more:
                found = len(report.problems)  # those of this batch's records come after
                batch, more = _collect(
                    desk, export, entries, size, targets, report, progress, carried
                )
                began = clock()
                _write(desk, export, batch, report, found)
                spent = clock() - began
                if len(batch) == size:  # a full batch: how long it held the lock sizes the next
                    size = _next_size(size, spent)
                progress.update(batch[-1][0].offset if batch else 0, report.read)
            progress.update(export.size, report.read)
            progress.end()
    report.seconds = clock() - started
    report.new_messages = ledger.message_count() - messages_before
    report.new_offers = ledger.offer_count() - offers_before
    return report


def _collect(
    desk: Desk,
    export: Export,
    entries: Iterator[Entry],
    size: int,
    targets: tuple[ChatTarget, ...],
    report: ImportReport,
    progress: Progress,
    carried: list[tuple[Read, Prepared]],
) -> tuple[list[tuple[Read, Prepared]], bool]:
    """The next `size` messages of the export, prepared (starting with the one `carried`
    over); and whether there may be more. A message sent well before the one read last (the
    next chat of an export) starts a new batch: a batch is a stretch of time, and the offers
    the desk keeps in memory for it are those of that stretch. Skipped and broken records on
    the way are counted."""
    batch = carried[:]
    carried.clear()
    last = batch[-1][1].message.sent_at if batch else None
    count = 0
    try:
        for entry in entries:
            count += 1
            if isinstance(entry, Read):
                message = retarget(entry.message, targets) if targets else entry.message
                prepared = desk.prepare(message)
                sent_at = prepared.message.sent_at
                if last is not None and sent_at < last - TIME_JUMP:
                    carried.append((entry, prepared))
                    return batch, True
                batch.append((entry, prepared))
                last = sent_at
            elif isinstance(entry, Skipped):
                report.skipped[entry.reason.partition(" (")[0]] += 1
            elif isinstance(entry, Broken):
                report.problems.append(Problem(export.path, entry.line, entry.reason))
            if count % PROGRESS_EVERY == 0:
                progress.update(entry.offset, report.read + len(batch))
            if len(batch) >= size:
                return batch, True
    except ExportError as error:
        reason = str(error).removeprefix(f"{export.path}: ")
        report.problems.append(Problem(export.path, 0, reason))
    return batch, False


def _write(
    desk: Desk,
    export: Export,
    batch: list[tuple[Read, Prepared]],
    report: ImportReport,
    found: int,
) -> None:
    """Write a batch in one go; if that fails, roll it back and write it message by message.
    The messages that fail are listed among the batch's problems (from `found` on) in line
    order."""
    if not batch:
        return
    ledger = desk.ledger
    try:
        with ledger.transaction():
            desk.read_history([prepared for _, prepared in batch])
    except Exception as error:
        log.info(
            "%s: a batch of %d messages could not be written at once (%s); one by one",
            export.path,
            len(batch),
            error,
        )
        failures = []
        with ledger.transaction():
            for entry, prepared in batch:
                failed = desk.failed
                desk.handle(prepared.message)  # a savepoint: only its own writes if it fails
                if desk.failed != failed:
                    failures.append(
                        Problem(export.path, entry.line, "the desk could not read it; see the log")
                    )
        report.problems[found:] = sorted(
            report.problems[found:] + failures, key=lambda p: (p.line == 0, p.line)
        )
    report.read += len(batch)


def _next_size(size: int, seconds: float) -> int:
    """The batch size that holds the write lock about `BATCH_SECONDS`, after a batch of
    `size` that held it `seconds` (growing at most fourfold at a time)."""
    wanted = size * BATCH_SECONDS / max(seconds, 1e-6)
    return max(MIN_BATCH, min(BATCH_MESSAGES, int(wanted), size * 4))


# -- progress on a terminal or in a log --------------------------------------------------------


class PlainProgress:
    """A line every `every` seconds, for logs and pipes: file, percent, messages, rate, ETA."""

    def __init__(
        self,
        stream: TextIO | None = None,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stream = stream or sys.stderr
        self.every = every
        self.clock = clock
        self._export: Export | None = None
        self._started = self._last = 0.0
        self._base = 0  # messages before this file
        self._messages = 0
        self._offset = 0

    def begin(self, export: Export) -> None:
        self._export = export
        self._started = self._last = self.clock()
        self._base = self._messages
        self._offset = 0

    def update(self, offset: int, messages: int) -> None:
        self._offset, self._messages = offset, messages
        if self.clock() - self._last >= self.every:
            self._print()

    def end(self) -> None:
        self._print()

    def _print(self) -> None:
        if self._export is None:
            return
        self._last = now = self.clock()
        elapsed = max(now - self._started, 1e-9)
        size = max(self._export.size, 1)
        fraction = min(self._offset / size, 1.0)
        messages = self._messages - self._base
        rate = messages / elapsed
        left = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
        print(
            f"import {self._export.path.name}: {fraction:.0%}, {messages:,} messages,"
            f" {rate:,.0f}/s, {_duration(left)} left",
            file=self.stream,
            flush=True,
        )


class RichProgress:
    """A rich progress bar per file, with messages read, their rate and the time left."""

    def __init__(self, console: object | None = None):
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[messages]:>11,} msgs"),
            TextColumn("{task.fields[rate]:>8,.0f}/s"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,  # type: ignore[arg-type]
        )
        self._task: object | None = None
        self._started = 0.0
        self._base = 0
        self._messages = 0

    def begin(self, export: Export) -> None:
        if self._task is None:
            self._progress.start()
        self._task = self._progress.add_task(
            export.path.name, total=max(export.size, 1), messages=0, rate=0.0
        )
        self._started = time.monotonic()
        self._base = self._messages

    def update(self, offset: int, messages: int) -> None:
        self._messages = messages
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._progress.update(
            self._task,  # type: ignore[arg-type]
            completed=offset,
            messages=messages - self._base,
            rate=(messages - self._base) / elapsed,
        )

    def end(self) -> None:
        pass

    def close(self) -> None:
        self._progress.stop()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"
