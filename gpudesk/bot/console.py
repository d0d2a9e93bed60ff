"""The console chat: a group chat in the terminal, on the real ledger, for trying the desk.

Each line is a message. `alice: 出 H100 8卡 10台 月租7.5w` speaks as alice; a bare line speaks as
`me`; `\\n` inside a line starts a new line of the same message (for price lists). On a terminal
it greets you and shows a prompt; with standard input from a pipe or file it prints only the
desk's replies, so it can be scripted:

    printf 'alice: 出 H100 8卡 10台\\n/price H100\\n' | gpudesk console --db x.db
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from gpudesk.handlers.desk import Desk
from gpudesk.handlers.message import ChatMessage, Reply

PLATFORM = "console"
DEFAULT_SENDER = "me"
_SPEAKER = re.compile(r"^\s*([\w.\-]{1,32})\s*[:：](?!//)\s?(.*)$", re.DOTALL)


def split_speaker(line: str) -> tuple[str, str]:
    """`alice: text` as ("alice", "text"); a line without a speaker is said by `me`."""
    found = _SPEAKER.match(line)
    if found and found.group(2).strip():
        return found.group(1), found.group(2)
    return DEFAULT_SENDER, line


class ConsoleChat:
    """One group chat (`chat_id`) typed into a terminal or read from a stream."""

    def __init__(
        self,
        desk: Desk,
        *,
        chat_id: str = "console",
        chat_title: str = "console",
        output: TextIO | None = None,
    ):
        self.desk = desk
        self.chat_id = chat_id
        self.chat_title = chat_title
        self.output = output or sys.stdout
        # Ids unique across sessions: the ledger treats a repeated id as a re-delivery.
        self._session = time.time_ns()
        self._count = 0

    def say(self, line: str) -> list[Reply]:
        """Post one typed line to the chat and return the desk's replies."""
        sender, text = split_speaker(line.rstrip("\r\n"))
        text = text.replace("\\n", "\n")
        if not text.strip():
            return []
        self._count += 1
        message = ChatMessage(
            platform=PLATFORM,
            chat_id=self.chat_id,
            chat_title=self.chat_title,
            sender_id=sender,
            sender_name=sender,
            text=text,
            sent_at=self.desk.clock(),
            message_id=f"{self._session}-{self._count}",
        )
        return self.desk.handle(message)

    def run(self, lines: Iterable[str], *, interactive: bool) -> int:
        """Feed `lines` to the chat, printing replies; returns how many lines were posted."""
        posted = 0
        for line in lines:
            posted += 1
            for reply in self.say(line):
                self._show(reply, interactive=interactive)
        return posted

    def _show(self, reply: Reply, *, interactive: bool) -> None:
        prefix = "gpudesk> " if interactive else ""
        body = reply.text.replace("\n", "\n" + " " * len(prefix))
        print(prefix + body, file=self.output, flush=True)


def typed_lines(prompt: str = "> ") -> Iterable[str]:
    """Lines typed at a terminal, until Ctrl-D or /quit."""
    with contextlib.suppress(ImportError):  # not on every platform
        import readline  # noqa: F401  (arrow keys and history in input())
    while True:
        try:
            line = input(prompt)
        except (EOFError, KeyboardInterrupt):
            print()
            return
        if line.strip() in ("/quit", "/exit"):
            return
        yield line
