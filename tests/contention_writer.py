"""A second writer on a shared ledger, run as its own process by tests/test_contention.py.

    python -m tests.contention_writer LEDGER NAME COUNT

Posts COUNT offers through a real `Desk` (each one transaction: store, read, book), expires
offers every tenth post and reads the book every hundredth (what a digest reads), all on the
ledger file the bot is writing at the same time. Logs go to standard error, where the test
looks for "database is locked"; the last line of standard output is a JSON summary.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from datetime import UTC, datetime

from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.handlers.message import ChatMessage
from gpudesk.storage.ledger import Ledger


def main(db: str, name: str, count: int) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    done = locked = reads = 0
    with Ledger.open(db) as ledger:
        desk = Desk(ledger, DeskSettings(language="en"))
        for n in range(count):
            message = ChatMessage(
                platform="import",
                chat_id=f"{name}-room",
                sender_id=f"{name}-{n}",
                sender_name=f"{name} {n}",
                text=f"出 H100 8卡 {n % 20 + 1}台 北京 月租{5 + n % 40 / 10}w/台 #{n}",
                sent_at=datetime.now(UTC),
                message_id=str(n),
                announce=False,
            )
            try:
                desk.handle(message)
                if n % 10 == 0:
                    ledger.expire(now=datetime.now(UTC))
                if n % 100 == 0:
                    reads += len(ledger.open_offers(now=datetime.now(UTC), gpu="H100"))
                done += 1
            except sqlite3.OperationalError as error:
                locked += 1
                logging.error("%s: transaction %d failed: %s", name, n, error)
    print(json.dumps({"name": name, "done": done, "failed": locked, "read": reads}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
