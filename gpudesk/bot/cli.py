"""The `gpudesk` command line: run the bot, chat in the console, parse posts, and more.

Each command is a thin shell over the Python API (`Desk`, `Ledger`, `parse_offers`): it reads
options, calls one function and turns the library's named errors into a sentence and exit status 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from gpudesk.bot.cli_common import State, db_option, pass_state, user_errors


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GPUDESK_CONFIG",
    help="Config file (TOML). Default: ./config.toml if present. Env: GPUDESK_CONFIG.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.version_option(package_name="gpudesk")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: bool) -> None:
    """gpudesk: a trading desk for GPU deal groups on Telegram and WeChat.

    \b
    Example:
        gpudesk console --db desk.db
    """
    ctx.obj = State(config, verbose)


@cli.command()
@db_option
@pass_state
def run(state: State, db: Path | None) -> None:
    """Start the bot with every adapter the config enables (the console chat when none is).

    \b
    Example:
        GPUDESK_TELEGRAM__TOKEN=123:abc gpudesk --config config.toml run
    """
    from gpudesk.bot import app

    app.configure_logging(state.verbose)
    with user_errors():
        app.run(state.settings, db)


@cli.command()
@db_option
@click.option("--chat", default="console", show_default=True, help="Name of the console group.")
@pass_state
def console(state: State, db: Path | None, chat: str) -> None:
    """Chat with the desk in the terminal, on the real ledger.

    Type `alice: 出 H100 8卡 10台 月租7.5w/台` to post as alice, a bare line to post as `me`.
    With input from a pipe, only the desk's replies are printed.

    \b
    Example:
        printf 'alice: 出 H100 8卡 10台\\n/price H100\\n' | gpudesk console --db x.db
    """
    from gpudesk.bot import app

    app.configure_logging(state.verbose)
    with user_errors():
        app.run_console(app.build_desk(state.settings, db), chat=chat)


@cli.command()
@click.argument("text", required=False)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines in on stdin, JSON Lines out.")
def parse(text: str | None, as_json: bool) -> None:
    """Read offers from a post and show what the parser understood.

    With --json, read {"id", "text"} lines on stdin and write {"id", "offers"} lines, as
    shared/contract/offer-json.md specifies.

    \b
    Examples:
        gpudesk parse "出 H100 8卡 10台 北京 月租7.5w/台"
        echo '{"id": "m1", "text": "收 4090 100张"}' | gpudesk parse --json
    """
    from gpudesk.market.parse import parse_offers

    if as_json:
        _parse_json_lines(sys.stdin, sys.stdout)
        return
    if text is None:
        raise click.UsageError("give the post to read, or --json to read JSON Lines on stdin")
    offers = parse_offers(text)
    if not offers:
        click.echo("no offers: chat, a question or news")
        return
    _print_offers([offer.to_contract() for offer in offers])


def _parse_json_lines(source: Any, sink: Any) -> None:
    from gpudesk.market.parse import parse_offers

    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        message_id = None
        try:
            record = json.loads(line)
            message_id = record.get("id")
            text = record["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            # Keep one output line per input line so ids stay aligned for the reader.
            click.echo(f"line {number}: not an {{id, text}} object ({error})", err=True)
            sink.write(json.dumps({"id": message_id, "offers": []}) + "\n")
            continue
        offers = [offer.to_contract() for offer in parse_offers(text)]
        sink.write(json.dumps({"id": message_id, "offers": offers}, ensure_ascii=False) + "\n")
    sink.flush()


def _print_offers(records: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    table.add_column("field")
    for index in range(len(records)):
        table.add_column(f"offer {index + 1}")
    for field in records[0]:
        table.add_row(field, *("" if r[field] is None else str(r[field]) for r in records))
    Console().print(table)


def main() -> None:
    cli(prog_name="gpudesk")


def _register() -> None:
    """The commands that live in their own modules, added to the group in one place."""
    from gpudesk.bot.data_cli import browse_command, export_command, import_command
    from gpudesk.bot.digest_cli import digest
    from gpudesk.bot.explain_cli import explain

    for command in (digest, explain, import_command, export_command, browse_command):
        cli.add_command(command)


_register()
