"""Backfill: chat exports fed through the desk, in batches, with progress and a summary.

`backfill(desk, exports)` hands every message an `Export` yields to `Desk.handle`, the same path
live messages take (`announce=False`: stored with source "import", read for offers, no reply),
so imported history and live traffic are one ledger. Re-importing a file adds nothing: message
ids come from the export and the ledger ignores a message it already has.

Writes are grouped into one ledger transaction per batch (at most `BATCH_SECONDS` or
`BATCH_MESSAGES`, whichever comes first): one commit per message would cost more than the
reading itself, and short batches let a running bot still get the write lock between them.
Each message is a savepoint within its batch: one the desk cannot read rolls back its own
writes only, and is listed as a problem. Skipped and broken records are counted and listed in
the `ImportReport`, never fatal.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
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
from gpudesk.handlers.desk import Desk

BATCH_SECONDS = 0.5
BATCH_MESSAGES = 20_000
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
    with ledger.bulk():
        for export in exports:
            progress.begin(export)
            entries = export.entries()
            done = False
            while not done:
                with ledger.transaction():
                    done = _batch(desk, export, entries, targets, report, progress, clock)
            progress.end()
    report.seconds = clock() - started
    report.new_messages = ledger.message_count() - messages_before
    report.new_offers = ledger.offer_count() - offers_before
    return report


def _batch(
    desk: Desk,
    export: Export,
    entries: Iterator[Entry],
    targets: tuple[ChatTarget, ...],
    report: ImportReport,
    progress: Progress,
    clock: Callable[[], float],
) -> bool:
    """Handle entries until the batch is full (False) or the export is done (True)."""
    deadline = clock() + BATCH_SECONDS
    count = 0
    try:
        for entry in entries:
            count += 1
            if isinstance(entry, Read):
                message = retarget(entry.message, targets) if targets else entry.message
                failed = desk.failed
                desk.handle(message)  # history: no replies, and only its own writes if it fails
                report.read += 1
                if desk.failed != failed:
                    report.problems.append(
                        Problem(export.path, entry.line, "the desk could not read it; see the log")
                    )
            elif isinstance(entry, Skipped):
                report.skipped[entry.reason.partition(" (")[0]] += 1
            elif isinstance(entry, Broken):
                report.problems.append(Problem(export.path, entry.line, entry.reason))
            if count % PROGRESS_EVERY == 0:
                progress.update(entry.offset, report.read)
                if count >= BATCH_MESSAGES or clock() >= deadline:
                    return False
    except ExportError as error:
        reason = str(error).removeprefix(f"{export.path}: ")
        report.problems.append(Problem(export.path, 0, reason))
    progress.update(export.size, report.read)
    return True


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
