"""The README's pulse example: a week of one market through the real desk, then `gpudesk
export --what pulse` and `gpudesk explain` on it.

Run as `.venv/bin/python bench/make_pulse_example.py [--db PATH] [--lang en|zh]`; it prints the
posts, the export line and the explanation, exactly as the commands print them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpudesk.bot.cli import State  # noqa: E402
from gpudesk.bot.data_cli import export_command  # noqa: E402
from gpudesk.bot.explain_cli import explain  # noqa: E402
from gpudesk.handlers.commands import DeskSettings  # noqa: E402
from gpudesk.handlers.desk import Desk  # noqa: E402
from gpudesk.market.message import ChatMessage  # noqa: E402
from gpudesk.market.normalise import Valuation  # noqa: E402
from gpudesk.storage.ledger import Ledger  # noqa: E402

ZONE = ZoneInfo("Asia/Shanghai")
TRADERS, SPOT = ("telegram", "-1001", "GPU Traders"), ("telegram", "-1002", "GPU现货群")

# (local time, group, poster, text, replies to the post at this index)
POSTS: list[tuple[str, tuple[str, str, str], str, str, int | None]] = [
    ("2026-10-29 15:00", SPOT, "Erin", "出 H100 8卡 2台 深圳 月租7.3w/台", None),
    ("2026-11-02 09:05", TRADERS, "Alice", "出 H100 8卡 10台 北京 月租7.5w/台", None),
    ("2026-11-02 14:20", TRADERS, "Bob", "WTS 80x H100 Beijing $1.78/GPU/hr", None),
    ("2026-11-03 10:00", SPOT, "Alice", "出 H100 8卡 10台 北京 月租7.5w/台", None),
    ("2026-11-04 11:30", SPOT, "Carol", "出 H100 8卡 4台 上海 月租7.2w/台", None),
    ("2026-11-05 09:00", TRADERS, "Alice", "出 H100 8卡 10台 北京 月租7w/台", None),
    ("2026-11-05 16:00", TRADERS, "Dave", "收 H100 8卡 2台 北京 月租6.5w/台", None),
    ("2026-11-07 18:00", SPOT, "Carol", "Update: fully booked", 4),
]


def fill(path: Path) -> list[str]:
    """Post the week through the desk, as the bot would have heard it; the posts as lines."""
    lines = []
    with Ledger.open(path, Valuation()) as ledger:
        desk = Desk(ledger, DeskSettings(language="en"), clock=lambda: datetime.now(ZONE))
        sent: list[ChatMessage] = []
        for number, (when, (platform, chat_id, title), who, text, reply) in enumerate(POSTS):
            at = datetime.fromisoformat(when).replace(tzinfo=ZONE)
            message = ChatMessage(
                platform=platform,
                chat_id=chat_id,
                chat_title=title,
                sender_id=who.lower(),
                sender_name=who,
                text=text,
                sent_at=at,
                message_id=str(number + 1),
                reply_to_id=None if reply is None else sent[reply].message_id,
                announce=False,
            )
            sent.append(message)
            desk.handle(message)
            lines.append(f"{when}  {title:11}  {who:5}  {text}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="Ledger file to write (default: a scratch one).")
    parser.add_argument("--lang", choices=("en", "zh"), default="en")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.db or Path(scratch) / "example.db"
        print("\n".join(fill(path)), end="\n\n")
        state = State(None, False)
        week = ["--week", "2026-W45"]
        export = ["--db", str(path), "--what", "pulse", "--format", "jsonl", *week]
        result = CliRunner().invoke(export_command, export, obj=state)
        print("$ gpudesk export --what pulse --format jsonl --week 2026-W45")
        print(result.stdout)
        result = CliRunner().invoke(
            explain, ["H100", "rent", *week, "--db", str(path), "--lang", args.lang], obj=state
        )
        print(f"$ gpudesk explain H100 rent --week 2026-W45 --lang {args.lang}")
        print(result.stdout, end="")
        return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
