"""`gpudesk explain`: the parties behind one week's pulse of one GPU, every post behind each.

A thin shell over `handlers.explain.explain_text`, which `/explain` in a chat also uses (cut to
a screenful there): it reads the options, opens the ledger the config names (or `--db`), and
prints the explanation whole. Registered on the `gpudesk` group in `cli.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from gpudesk.bot.cli_common import (
    db_option,
    parse_chat,
    require_ledger,
    settings_of,
    user_errors,
    week_named,
    zone_named,
)
from gpudesk.market.catalog import MODELS, resolve_model
from gpudesk.market.listings import Week
from gpudesk.market.offer import Deal

DEALS = {"rent": Deal.RENT, "sale": Deal.SALE, "租": Deal.RENT, "租赁": Deal.RENT, "卖": Deal.SALE}


@click.command("explain")
@click.argument("model")
@click.argument("deal", type=click.Choice(sorted(DEALS), case_sensitive=False))
@click.option(
    "--week",
    metavar="YYYY-Www",
    help="The ISO week, in [desk] timezone, e.g. 2026-W43. Default: this week.",
)
@click.option("--chat", metavar="[PLATFORM:]CHAT_ID", help="Count only this group's posts.")
@click.option(
    "--lang",
    type=click.Choice(("en", "zh")),
    help="Language of the explanation. Default: [desk] language.",
)
@db_option
@click.pass_context
def explain(
    ctx: click.Context,
    model: str,
    deal: str,
    week: str | None,
    chat: str | None,
    lang: str | None,
    db: Path | None,
) -> None:
    """List the parties behind a week's pulse of one GPU: each listing, the posts that
    advertised it (original, repost, cross-post, price change, broker repost), its price that
    week and what ended it. Every figure of `gpudesk export --what pulse` traces to these.

    \b
    Examples:
        gpudesk explain H100 rent --week 2026-W43 --db desk.db
        gpudesk explain 4090 sale --chat telegram:-1001987654321 --lang zh
    """
    from gpudesk.bot import app
    from gpudesk.handlers.explain import WHOLE, explain_text

    settings = settings_of(ctx)
    desk = app.desk_settings(settings)
    zone = zone_named(settings.desk.timezone)
    found = resolve_model(model)
    if found is None:
        raise click.BadParameter(
            f"unknown GPU {model!r}; one of: {', '.join(MODELS)}", param_hint="MODEL"
        )
    now = datetime.now(UTC)
    chosen = week_named(week, zone) if week else Week.of(now, zone)
    require_ledger(app.ledger_path(settings, db))
    with user_errors(), app.open_ledger(settings, db) as ledger:
        text = explain_text(
            ledger,
            gpu=found.gpu,
            deal=DEALS[deal.lower()],
            week=chosen,
            now=now,
            lifetime=timedelta(days=settings.desk.offer_days),
            lang=lang or settings.desk.language,
            thresholds=desk.thresholds,
            chat=parse_chat(chat),
            limits=WHOLE,
        )
    click.echo(text)
