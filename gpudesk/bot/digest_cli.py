"""`gpudesk digest`: render the weekly digest to files, without sending anything.

For one chat (`--chat`) it writes `DIR/digest.txt` (the text exactly as the group would read it,
caption and message joined) and `DIR/digest.png` (the chart; none for a week without offers).
Without `--chat` it renders every chat in the ledger, one subfolder each, named
`<platform>-<chat id>` (e.g. `DIR/telegram--1001234567890/`), since groups differ in language
and scope. `--week 2026-W47` renders the digest the schedule sends for that ISO week (with the
default `mon 09:00`, the seven days ending Monday 09:00 of 2026-W48); without it, the seven
days ending now. Nothing is claimed in the ledger: rendering never stops a scheduled send.

Registered on the main command group in `cli.py`; settings (language, time zone, currency,
schedule) come from the group's `--config` as for every other command.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import click

from gpudesk.bot.cli_common import db_option, require_ledger, settings_of, user_errors
from gpudesk.bot.config import Settings, parse_schedule
from gpudesk.handlers.chart import render_chart
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.digest_text import chat_language, fit, load_digest
from gpudesk.market.digest import occurrence_for_week, parse_week, window_ending
from gpudesk.market.pulse import WEEK
from gpudesk.storage.ledger import ChatRecord, Ledger

TEXT_FILE = "digest.txt"
CHART_FILE = "digest.png"


@click.command("digest")
@db_option
@click.option(
    "--chat",
    "chat_ref",
    metavar="ID",
    help="One chat: its id, or platform:id when two platforms share it. Default: every chat.",
)
@click.option(
    "--week",
    metavar="YYYY-Www",
    help="The ISO week whose scheduled digest to render. Default: the seven days ending now.",
)
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    help="Language of the digest. Default: the chat's own (/lang), else [desk] language.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write digest.txt and digest.png into (created if missing).",
)
@click.pass_context
def digest(
    ctx: click.Context,
    db: Path | None,
    chat_ref: str | None,
    week: str | None,
    lang: str | None,
    out: Path,
) -> None:
    """Render the weekly digest to files, without sending it.

    With --chat, writes DIR/digest.txt and DIR/digest.png; without, one subfolder per chat in
    the ledger, named <platform>-<chat id>.

    \b
    Examples:
        gpudesk digest --db gpudesk.db --chat -1001234567890 --week 2026-W47 --out digest/
        gpudesk digest --out digests/          # every chat, the seven days ending now
    """
    from gpudesk.bot.app import desk_settings, ledger_path, open_ledger

    settings = settings_of(ctx)
    desk = desk_settings(settings)
    start, end = _window(settings, desk, week)
    path = ledger_path(settings, db)
    require_ledger(path)
    with user_errors(), open_ledger(settings, db) as ledger:
        chats = ledger.chats()
        if chat_ref is not None:
            targets = [(_find_chat(chats, chat_ref), out)]
        elif chats:
            targets = [(chat, out / folder_name(chat)) for chat in chats]
        else:
            raise click.ClickException(f"the ledger {path} has no chats yet")
        for chat, folder in targets:
            text_path, chart_path = write_digest(
                ledger, desk, chat, start=start, end=end, out=folder, lang=lang
            )
            click.echo(f"{chat.platform}:{chat.chat_id}: {text_path}" + _also(chart_path))


def write_digest(
    ledger: Ledger,
    settings: DeskSettings,
    chat: ChatRecord | None,
    *,
    start: datetime,
    end: datetime,
    out: Path,
    lang: str | None = None,
) -> tuple[Path, Path | None]:
    """Write `out/digest.txt` and `out/digest.png` for `chat` (None: the whole market)."""
    language = lang or chat_language(chat, settings)
    digest = load_digest(ledger, settings, chat, start=start, end=end)
    this_group = chat is not None and chat.scope == "group"
    text = fit(digest, language, settings.zone, this_group=this_group)
    out.mkdir(parents=True, exist_ok=True)
    text_path = out / TEXT_FILE
    text_path.write_text(text.full + "\n", encoding="utf-8")
    chart_path = out / CHART_FILE
    if digest.quiet:
        chart_path.unlink(missing_ok=True)  # a chart left from another week would mislead
        return text_path, None
    chart_path.write_bytes(render_chart(digest, language, settings.zone))
    return text_path, chart_path


def folder_name(chat: ChatRecord) -> str:
    """`telegram--1001234567890`: the platform and the chat id, safe as a file name."""
    return re.sub(r"[^\w.@-]", "_", f"{chat.platform}-{chat.chat_id}")


def _window(settings: Settings, desk: DeskSettings, week: str | None) -> tuple[datetime, datetime]:
    if week is None:
        now = datetime.now(UTC)
        return now - WEEK, now
    try:
        parse_week(week)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--week") from None
    when = parse_schedule(settings.digest.schedule)
    return window_ending(occurrence_for_week(week, when, desk.zone), when, desk.zone)


def _find_chat(chats: list[ChatRecord], ref: str) -> ChatRecord:
    platform, sep, chat_id = ref.partition(":")
    found = [
        c
        for c in chats
        if c.chat_id == ref or (sep and (c.platform, c.chat_id) == (platform, chat_id))
    ]
    if len(found) == 1:
        return found[0]
    known = ", ".join(f"{c.platform}:{c.chat_id}" for c in chats) or "none"
    if found:
        raise click.BadParameter(f"{ref} is a chat on several platforms; say which: {known}")
    raise click.BadParameter(f"no chat {ref} in the ledger; known chats: {known}")


def _also(chart: Path | None) -> str:
    return f", {chart}" if chart is not None else " (no offers: no chart)"
