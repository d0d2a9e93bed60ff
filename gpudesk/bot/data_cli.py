"""The data commands: `gpudesk import` (chat exports in), `export` (data out), `browse` (look).

Thin shells over `backfill`, `export` and `browse`: they read options, open the ledger the
config names (or `--db`), call one function, and turn named errors into one sentence and exit
status 1. Registered on the `gpudesk` group in `cli.py`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import click

from gpudesk.bot.cli_common import (
    State,
    db_option,
    parse_chat,
    pass_state,
    require_ledger,
    user_errors,
    week_named,
    zone_named,
)
from gpudesk.bot.importers import FORMATS, ChatTarget, open_export


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@db_option
@click.option(
    "--platform-chat",
    "targets",
    multiple=True,
    metavar="[SOURCE=]PLATFORM:CHAT_ID",
    help="Store a chat's messages under this platform and chat id, to join the history to the"
    " chat the bot already sees. SOURCE (a chat name or exported id) picks one chat of the"
    " export; without it, every chat. Repeatable.",
)
@click.option(
    "--format",
    "kind",
    type=click.Choice(("auto", *FORMATS)),
    default="auto",
    show_default=True,
    help="The export's format; auto recognises it from the file.",
)
@click.option(
    "--timezone",
    help="Zone of times written without one (WeChat exports, old Telegram exports)."
    " Default: [desk] timezone.",
)
@pass_state
def import_command(
    state: State,
    files: tuple[Path, ...],
    db: Path | None,
    targets: tuple[str, ...],
    kind: str,
    timezone: str | None,
) -> None:
    """Backfill the ledger from chat exports: Telegram Desktop JSON, WeChat CSV or text.

    Every message goes through the desk as a live one would, without replies; offers are
    read and booked. Importing a file again adds nothing. A broken record is reported with
    its line and skipped. Formats: README (import).

    \b
    Examples:
        gpudesk import ~/Downloads/Telegram/ChatExport_2025-01-02/result.json --db desk.db
        gpudesk import GPU交易群_utf8.csv --platform-chat wechat:12345678@chatroom
    """
    from gpudesk.bot import app
    from gpudesk.bot.backfill import PlainProgress, RichProgress, backfill

    settings = state.settings
    zone = zone_named(timezone or settings.desk.timezone)
    try:
        chat_targets = tuple(ChatTarget.parse(spec) for spec in targets)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--platform-chat") from None
    with user_errors():
        exports = [open_export(path, zone=zone, format=kind) for path in files]
        desk = app.build_desk(settings, db)
    from rich.console import Console

    console = Console(stderr=True)
    progress = RichProgress(console) if console.is_terminal else PlainProgress(sys.stderr)
    try:
        with user_errors():
            report = backfill(desk, exports, targets=chat_targets, progress=progress)
    finally:
        if isinstance(progress, RichProgress):
            progress.close()
        desk.ledger.close()
    click.echo("\n".join(report.summary()))
    if any(problem.line == 0 for problem in report.problems):
        raise click.exceptions.Exit(1)  # a whole file could not be read; the others were


@click.command("export")
@db_option
@click.option(
    "--what",
    type=click.Choice(("offers", "messages", "pulse")),
    required=True,
    help="offers: one row per offer; messages: one per message; pulse: per ISO week, gpu, deal.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("csv", "jsonl")),
    default="csv",
    show_default=True,
    help="CSV with a header row, or JSON Lines.",
)
@click.option(
    "--since",
    metavar="DATE",
    help="Only what was sent or posted from then on: 2025-01-02 or 2025-01-02T10:00"
    " ([desk] timezone unless the time says otherwise).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option(
    "--week",
    "weeks",
    multiple=True,
    metavar="YYYY-Www",
    help="pulse: only this ISO week, e.g. 2026-W43 (repeatable). Default: every week with a"
    " listing standing.",
)
@click.option(
    "--chat",
    metavar="[PLATFORM:]CHAT_ID",
    help="pulse: count only this group's posts.",
)
@pass_state
def export_command(
    state: State,
    db: Path | None,
    what: str,
    fmt: str,
    since: str | None,
    out: Path | None,
    weeks: tuple[str, ...],
    chat: str | None,
) -> None:
    """Write the ledger's offers, messages or weekly pulse as CSV or JSON Lines.

    Offer rows carry the contract fields, the price per GPU-hour (rent) or per GPU (sale) in
    the desk's currency, the status, and the message they came from. Columns:
    README (import).

    \b
    Examples:
        gpudesk export --what offers --format csv --since 2025-01-01 --out offers.csv
        gpudesk export --what pulse --format jsonl | jq .
        gpudesk export --what pulse --format jsonl --week 2026-W43 --week 2026-W44
    """
    from gpudesk.bot import app
    from gpudesk.bot import export as ex

    settings = state.settings
    zone = zone_named(settings.desk.timezone)
    start = _since(since, zone)
    require_ledger(app.ledger_path(settings, db))
    with user_errors(), app.open_ledger(settings, db) as ledger, _sink(out) as sink:
        if what == "messages":
            ex.write_rows(ex.message_rows(ledger, since=start), ex.MESSAGE_COLUMNS, fmt, sink)
        elif what == "offers":
            now = datetime.now(UTC)
            rows = ex.offer_rows(ledger, now=now, since=start)
            ex.write_rows(rows, ex.OFFER_COLUMNS, fmt, sink)
        else:  # issue 11: parties by listings, as /price and the digest count them
            rows = ex.pulse_rows(
                ledger,
                zone=zone,
                lifetime=timedelta(days=settings.desk.offer_days),
                now=datetime.now(UTC),
                weeks=[week_named(label, zone) for label in weeks],
                since=start,
                chat=parse_chat(chat),
                thresholds=app.desk_settings(settings).thresholds,
            )
            ex.write_rows(rows, ex.PULSE_COLUMNS, fmt, sink)


@click.command("browse")
@db_option
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8001,
    show_default=True,
    help="Port on 127.0.0.1 to serve on.",
)
@pass_state
def browse_command(state: State, db: Path | None, port: int) -> None:
    """Look through the ledger in Datasette, read-only, in the browser.

    Serves a snapshot of the ledger (Datasette's immutable mode) on http://127.0.0.1:PORT/
    with table descriptions and ready-made queries: open offers by model, offers per model
    per week, messages per chat. Ctrl-C stops it.

    \b
    Example:
        gpudesk browse --db desk.db --port 8001
    """
    from gpudesk.bot import app
    from gpudesk.bot.browse import LOOPBACK, serve

    path = app.ledger_path(state.settings, db)
    require_ledger(path)
    click.echo(f"Serving {path} read-only at http://{LOOPBACK}:{port}/ (Ctrl-C to stop)")
    with user_errors():
        serve(path, host=LOOPBACK, port=port)


def _since(value: str | None, zone: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date; write 2025-01-02 or 2025-01-02T10:00", param_hint="--since"
        ) from None
    if len(value) <= 10:  # a bare date: from the start of that day
        moment = datetime.combine(moment.date(), time())
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


@contextmanager
def _sink(out: Path | None) -> Iterator[TextIO]:
    if out is None:
        yield sys.stdout
        return
    try:
        handle = out.open("w", encoding="utf-8", newline="")
    except OSError as error:
        raise click.ClickException(f"cannot write {out}: {error.strerror}") from None
    with handle:
        yield handle
