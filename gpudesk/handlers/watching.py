"""Watchlists and alerts (issue 10): the `/watch` commands, alerts on fresh offers, and the
periodic work (digests, summaries past the hourly cap, expiry reminders).

How a hit travels. When the desk books fresh offers (`Desk._act`), `alerts_for` finds the
running watches they meet (from any group unless a watch is scoped, never the member's own
offers) and records one alert row per (watch, offer) before anyone is told; the unique key
means no offer reaches a watch twice, even if the message comes again, is edited, or the
process dies right after. Then, per member:

- `each` (the default): one private message per incoming post, returned with the desk's other
  replies, up to `alerts_per_hour` hits an hour. Hits past the cap wait for a summary at the
  next full hour ("…and N more"), so a busy market never floods anyone.
- `hourly` / `daily` (`/watch ... digest hourly`, `... 每日汇总`): hits wait for a digest at
  the next full hour, or at `digest_hour` o'clock in the desk's time zone (a quiet night).
- A hit for a member on another platform than the post (a Telegram member, a WeChat post)
  waits for the next periodic run, since the adapter at hand cannot deliver it.

`due_alerts` is the periodic half: it ends lapsed watches, claims the reminders of watches
about to lapse and the queued alerts now due (marking them claimed before they go out), and
returns them as `Outgoing` messages; the caller sends each and then calls `mark_sent` (or
`mark_failed`). A crash between the claim and the send loses that message rather than sending
it twice: record first, send, mark sent.

An alert is private (`Reply.private`, to the member's user id). Set in a group, it carries that
group as `fallback_chat_id`: the Telegram adapter mentions the member there when they never
started the bot and a direct message is refused. The console prints it like any reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gpudesk.handlers import format as fmt
from gpudesk.handlers.texts import say
from gpudesk.market.book import PostedOffer
from gpudesk.market.message import ChatMessage, Reply
from gpudesk.market.normalise import unit_for
from gpudesk.market.watch import Delivery, Watch, WatchError, digest_due, next_hour, parse_watch
from gpudesk.storage.ledger import (
    ALERT_DIGEST,
    ALERT_DIRECT,
    ALERT_DROPPED,
    ALERT_FAILED,
    ALERT_OVERFLOW,
    ALERT_QUEUED,
    ALERT_SENT,
    OPEN,
    WATCH_ACTIVE,
    AlertRecord,
    Ledger,
    WatchRecord,
)

if TYPE_CHECKING:  # commands imports this module; at run time only the types are shared
    from gpudesk.handlers.commands import Context, DeskSettings

KIND = "alert"
HOUR = timedelta(hours=1)
_RENEW_WORDS = frozenset({"renew", "extend", "续期", "续"})
_ALL_WORDS = frozenset({"all", "全部", "所有"})


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message the periodic run owes, and the alerts it carries (to mark once sent)."""

    reply: Reply
    alert_ids: tuple[int, ...] = ()


# -- alerts on fresh offers ------------------------------------------------------------------------


def alerts_for(
    ledger: Ledger,
    settings: DeskSettings,
    message_row: int,
    message: ChatMessage,
    fresh: Sequence[PostedOffer],
    now: datetime,
) -> list[Reply]:
    """Record the hits of `fresh` offers (booked from `message`) on running watches, and
    return the private messages to send at once. History (`announce=False`) alerts no one."""
    if not (fresh and message.announce):
        return []
    found: dict[tuple[str, str], list[tuple[WatchRecord, PostedOffer]]] = {}
    for posted in fresh:
        for record in ledger.watches_for(posted, now=now):
            found.setdefault(record.member, []).append((record, posted))
    if not found:
        return []
    policy = settings.watch
    replies = []
    with ledger.transaction():
        told = ledger.alerted_watches(message_row)  # an edited post is not news again
        for member, hits in found.items():
            here = member[0] == message.platform  # else the adapter at hand cannot deliver it
            room = policy.alerts_per_hour - ledger.direct_alerts_since(*member, now - HOUR)
            now_hits = []
            for record, posted in hits:
                if record.id in told:
                    continue
                delivery = record.watch.delivery
                if delivery is not Delivery.EACH:
                    via, status = ALERT_DIGEST, ALERT_QUEUED
                    due = digest_due(delivery, now, settings.zone, policy.digest_hour)
                elif room <= 0:
                    via, status, due = ALERT_OVERFLOW, ALERT_QUEUED, next_hour(now, settings.zone)
                else:
                    via, status, due = ALERT_DIRECT, ALERT_SENT if here else ALERT_QUEUED, now
                recorded = ledger.add_alert(
                    watch_id=record.id,
                    offer_id=posted.id,
                    message_row=message_row,
                    member=member,
                    via=via,
                    status=status,
                    at=now,
                    due_at=None if status == ALERT_SENT else due,
                )
                if recorded is not None and via == ALERT_DIRECT:
                    room -= 1
                    if here:
                        now_hits.append((record, posted))
            if now_hits:
                replies.append(_alert(ledger, now_hits, settings, now))
    return replies


# -- the periodic half -----------------------------------------------------------------------------


def due_alerts(
    ledger: Ledger, settings: DeskSettings, now: datetime, *, platforms: Sequence[str]
) -> list[Outgoing]:
    """What is due by `now` for members on `platforms`, claimed in the ledger: expiry
    reminders, digests, summaries past the hourly cap, and hits from other platforms. Send
    each, then `mark_sent` (or `mark_failed`) it. Safe to call any time, as often as wanted."""
    ledger.expire_watches(now=now)
    policy = settings.watch
    outgoing = [
        Outgoing(_reminder(ledger, record, settings))
        for record in ledger.claim_reminders(
            now=now, before=policy.remind_before, platforms=platforms
        )
    ]
    claimed = ledger.claim_due_alerts(now=now, platforms=platforms)
    # An offer withdrawn, filled or lapsed while its alert waited is no news any more.
    stale = {a.id for a in claimed if not _standing(a, now)}
    if stale:
        ledger.finish_alerts(sorted(stale), status=ALERT_DROPPED, at=now)
    groups: dict[tuple[tuple[str, str], bool], list[AlertRecord]] = {}
    for alert in claimed:
        if alert.id not in stale:
            groups.setdefault((alert.watch.member, alert.via == ALERT_DIRECT), []).append(alert)
    for (_, direct), alerts in groups.items():
        if direct:
            hits = [(a.watch, a.offer.posted) for a in alerts if a.offer is not None]
            reply = _alert(ledger, hits, settings, now)
        else:
            reply = _digest(ledger, alerts, settings, now)
        outgoing.append(Outgoing(reply, tuple(a.id for a in alerts)))
    return outgoing


def mark_sent(ledger: Ledger, outgoing: Outgoing, now: datetime) -> None:
    if outgoing.alert_ids:
        ledger.finish_alerts(outgoing.alert_ids, status=ALERT_SENT, at=now)


def mark_failed(ledger: Ledger, outgoing: Outgoing, now: datetime) -> None:
    """The send raised: the alerts stay recorded (never sent twice), marked failed."""
    if outgoing.alert_ids:
        ledger.finish_alerts(outgoing.alert_ids, status=ALERT_FAILED, at=now)


def _standing(alert: AlertRecord, now: datetime) -> bool:
    offer = alert.offer
    return offer is not None and offer.status == OPEN and offer.expires_at > now


# -- the commands ----------------------------------------------------------------------------------


def watch(ctx: Context, args: list[str]) -> str:
    """`/watch H100 rent <= 1.6 USD/GPU-hr ...` sets a watch; `/watch renew 3` extends one."""
    lang, message, policy = ctx.lang, ctx.message, ctx.settings.watch
    if not args:
        return say(lang, "watch.usage", example=say(lang, "watch.example"))
    if args[0].lower() in _RENEW_WORDS:
        return _renew(ctx, args[1:])
    text = " ".join(args)
    here = (message.platform, message.chat_id) if message.is_group else None
    try:
        found = parse_watch(text, ctx.ledger.valuation, here=here)
    except WatchError as error:
        return error_text(error, lang)
    found = replace(found, owner=(message.platform, message.sender_id))
    expires_at = ctx.now + policy.lifetime
    watch_id = ctx.ledger.add_watch(
        found,
        name=message.sender_name,
        chat_id=message.chat_id,
        in_group=message.is_group,
        lang=lang,
        stated=text,
        created_at=ctx.now,
        expires_at=expires_at,
        most=policy.max_per_member,
    )
    if watch_id is None:
        return say(lang, "watch.error.too_many", most=policy.max_per_member)
    answer = say(
        lang,
        "watch.set",
        id=watch_id,
        watch=describe(found, lang, ctx.ledger),
        until=fmt.local_time(expires_at, ctx.settings.zone),
    )
    if message.is_group:
        answer += "\n" + say(lang, "watch.dm_hint")
    return answer


def watches(ctx: Context, args: list[str]) -> str:
    """`/watches`: the member's running watches with their ids and what each has found."""
    lang, message = ctx.lang, ctx.message
    records = ctx.ledger.member_watches(message.platform, message.sender_id, now=ctx.now)
    if not records:
        return say(lang, "watches.none", example=say(lang, "watch.example"))
    zone = ctx.settings.zone
    lines = [say(lang, "watches.title", n=len(records), most=ctx.settings.watch.max_per_member)]
    for record in records:
        lines.append(
            say(
                lang,
                "watches.line",
                id=record.id,
                watch=describe(record.watch, lang, ctx.ledger),
                hits=record.hits,
                until=fmt.local_time(record.expires_at, zone),
            )
        )
        last = ctx.ledger.offer(record.last_hit) if record.last_hit is not None else None
        if last is not None:
            posted = last.posted
            lines.append(
                say(
                    lang,
                    "watches.last",
                    summary=fmt.summary(posted.offer, lang),
                    name=posted.poster_name or posted.poster_id,
                    chat=_chat_name(posted, lang),
                    ago=fmt.ago(posted.posted_at, ctx.now, lang),
                )
            )
    lines.append(say(lang, "watches.footer"))
    return "\n".join(lines)


def unwatch(ctx: Context, args: list[str]) -> str:
    """`/unwatch 3` stops one watch; `/unwatch all` every one of the member's."""
    lang, message = ctx.lang, ctx.message
    if args and args[0].lower() in _ALL_WORDS:
        records = ctx.ledger.member_watches(message.platform, message.sender_id, now=ctx.now)
        with ctx.ledger.transaction():
            for record in records:
                ctx.ledger.end_watch(record.id, at=ctx.now)
        return say(lang, "unwatch.all", n=len(records))
    record = _own_watch(ctx, args, example="/unwatch 3")
    if isinstance(record, str):
        return record
    ctx.ledger.end_watch(record.id, at=ctx.now)
    return say(lang, "unwatch.done", id=record.id)


def _renew(ctx: Context, args: list[str]) -> str:
    record = _own_watch(ctx, args, example="/watch renew 3")
    if isinstance(record, str):
        return record
    expires_at = ctx.now + ctx.settings.watch.lifetime
    ctx.ledger.renew_watch(record.id, expires_at=expires_at)
    until = fmt.local_time(expires_at, ctx.settings.zone)
    return say(ctx.lang, "watch.renewed", id=record.id, until=until)


def _own_watch(ctx: Context, args: list[str], *, example: str) -> WatchRecord | str:
    """The member's running watch named by `args[0]`, or the answer saying why not."""
    wanted = args[0].lstrip("#") if args else ""
    # ASCII digits that fit SQLite's integer ("²".isdigit() is true, and int() refuses it).
    if not (wanted.isascii() and wanted.isdigit() and len(wanted) <= 18):
        return say(ctx.lang, "watch.error.need_id", example=example)
    watch_id = int(wanted)
    record = ctx.ledger.watch_record(watch_id)
    member = (ctx.message.platform, ctx.message.sender_id)
    if (
        record is None
        or record.member != member
        or record.status != WATCH_ACTIVE
        or record.expires_at <= ctx.now
    ):
        return say(ctx.lang, "watch.error.no_watch", id=watch_id)
    return record


def error_text(error: WatchError, lang: str) -> str:
    """A `WatchError` in the member's language, with an example to copy."""
    example_key = "watch.example.sell" if error.reason == "side_conflict" else "watch.example"
    return say(lang, f"watch.error.{error.reason}", example=say(lang, example_key), **error.values)


# -- the words -------------------------------------------------------------------------------------


def describe(watch: Watch, lang: str, ledger: Ledger | None = None) -> str:
    """A watch in one line: `sellers of H100 rent · ≤ ¥11.52/GPU-h · Beijing · ≥ 32 GPUs`."""
    model = " ".join(
        part
        for part in (watch.gpu, watch.variant, f"{watch.memory_gb}G" if watch.memory_gb else None)
        if part
    )
    deal = say(lang, f"deal.{watch.deal.value}") if watch.deal else say(lang, "watch.deal.any")
    side = say(lang, f"watch.side.{watch.side.value}")
    parts = [say(lang, "watch.looks_for", side=side, model=model, deal=deal)]
    if watch.limit is not None and watch.deal is not None:
        price = fmt.unit_money(watch.limit, watch.currency, unit_for(watch.deal), lang)
        ceiling = "watch.at_most" if watch.side.value == "sell" else "watch.at_least"
        parts.append(say(lang, ceiling, price=price))
    if watch.place is not None:
        parts.append(fmt.place(watch.place, lang))
    if watch.min_gpus is not None:
        parts.append(say(lang, "watch.min_gpus", n=watch.min_gpus))
    if watch.scope is not None:
        title = ledger.chat(*watch.scope).title if ledger is not None else None
        parts.append(say(lang, "watch.scope", chat=title or watch.scope[1]))
    if watch.delivery is not Delivery.EACH:
        parts.append(say(lang, f"watch.delivery.{watch.delivery.value}"))
    return " · ".join(parts)


def _alert(
    ledger: Ledger,
    hits: Sequence[tuple[WatchRecord, PostedOffer]],
    settings: DeskSettings,
    now: datetime,
) -> Reply:
    """One private message telling a member of the offers that met their watches."""
    first = hits[0][0]
    lang = first.lang
    blocks = []
    for record, posted in hits:
        blocks.append(
            "\n".join(
                (
                    say(
                        lang,
                        "watch.alert.title",
                        id=record.id,
                        watch=describe(record.watch, lang, ledger),
                    ),
                    _offer_line(posted, settings, lang),
                    say(
                        lang,
                        "watch.alert.where",
                        name=posted.poster_name or posted.poster_id,
                        chat=_chat_name(posted, lang),
                        ago=fmt.ago(posted.posted_at, now, lang),
                        ref=_reference(posted, lang),
                    ),
                )
            )
        )
    blocks.append(say(lang, "watch.alert.footer", id=first.id))
    return _private(first, "\n\n".join(blocks))


def _digest(
    ledger: Ledger, alerts: Sequence[AlertRecord], settings: DeskSettings, now: datetime
) -> Reply:
    """One private message listing the queued hits of a member (a digest or a summary)."""
    first = alerts[0].watch
    lang = first.lang
    since = fmt.local_time(min(a.created_at for a in alerts), settings.zone)
    digest = any(a.via == ALERT_DIGEST for a in alerts)
    title = "watch.digest.title" if digest else "watch.overflow.title"
    lines = [say(lang, title, n=len(alerts), since=since)]
    shown = alerts[: settings.watch.digest_lines]
    for alert in shown:
        assert alert.offer is not None  # stale ones were dropped before
        posted = alert.offer.posted
        lines.append(
            say(
                lang,
                "watch.digest.line",
                id=alert.watch.id,
                offer=_offer_line(posted, settings, lang),
                name=posted.poster_name or posted.poster_id,
                chat=_chat_name(posted, lang),
                ref=_reference(posted, lang),
            )
        )
    if len(alerts) > len(shown):
        lines.append(say(lang, "watch.digest.more", n=len(alerts) - len(shown)))
    lines.append(say(lang, "watch.alert.footer", id=first.id))
    return _private(first, "\n".join(lines))


def _reminder(ledger: Ledger, record: WatchRecord, settings: DeskSettings) -> Reply:
    text = say(
        record.lang,
        "watch.reminder",
        id=record.id,
        watch=describe(record.watch, record.lang, ledger),
        until=fmt.local_time(record.expires_at, settings.zone),
        days=settings.watch.days,
    )
    return _private(record, text)


def _private(record: WatchRecord, text: str) -> Reply:
    """A direct message to the member; the group they set the watch in is the fallback."""
    platform, user_id = record.member
    return Reply(
        platform=platform,
        chat_id=user_id,
        text=text,
        private=True,
        kind=KIND,
        fallback_chat_id=record.chat_id if record.in_group else None,
    )


def _offer_line(posted: PostedOffer, settings: DeskSettings, lang: str) -> str:
    line = fmt.summary(posted.offer, lang)
    if posted.unit_price is None:
        return line
    unit = unit_for(posted.offer.deal)
    price = fmt.unit_money(posted.unit_price, settings.valuation.currency, unit, lang)
    return line + say(lang, "watch.alert.unit", price=price)


def _chat_name(posted: PostedOffer, lang: str) -> str:
    return posted.chat_title or say(lang, "chat.private")


def _reference(posted: PostedOffer, lang: str) -> str:
    """A link to the post where the platform gives one, else where to find it."""
    if posted.link:
        return posted.link
    return say(lang, "watch.ref", id=posted.message_id, chat=_chat_name(posted, lang))
