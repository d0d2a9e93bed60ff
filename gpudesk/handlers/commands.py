"""The commands people send the desk, as one table: name, aliases, who may run it, what it does.

Each command is a function from a `Context` (the message, the ledger, the settings, the time)
and its arguments to the text of the answer. Commands work with a slash (`/price H100`), with a
bot mention (`/price@gpudesk_bot`), and by their Chinese names without one (`查价 H100`), since
WeChat has no slash-command menu.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from gpudesk.handlers import format as fmt
from gpudesk.handlers import watching
from gpudesk.handlers.digest_text import compose as compose_digest
from gpudesk.handlers.explain import CHAT_LIMITS, explain_text
from gpudesk.handlers.texts import say
from gpudesk.market.book import PostedOffer
from gpudesk.market.catalog import MODELS, resolve_model
from gpudesk.market.listings import Week
from gpudesk.market.match import Match, MatchPolicy, find_matches
from gpudesk.market.message import ChatMessage, Reply
from gpudesk.market.normalise import Valuation, unit_for
from gpudesk.market.offer import Deal, Side
from gpudesk.market.pulse import Pulse, ReadingThresholds
from gpudesk.market.watch import WatchPolicy
from gpudesk.storage.ledger import FILLED, OPEN, WITHDRAWN, Ledger, OfferRecord


@dataclass(frozen=True, slots=True)
class DeskSettings:
    """What the desk needs to know, read from config once and passed down."""

    language: str = "zh"
    timezone: str = "Asia/Shanghai"
    valuation: Valuation = field(default_factory=Valuation)
    offer_days: int = 14
    pulse_days: int = 7
    match_policy: MatchPolicy = field(default_factory=MatchPolicy)
    thresholds: ReadingThresholds = field(default_factory=ReadingThresholds)
    match_replies: bool = True
    commands_per_minute: int = 5
    admins: frozenset[tuple[str, str]] = frozenset()  # (platform, user id)
    watch: WatchPolicy = field(default_factory=WatchPolicy)  # watchlists (issue 10)
    # A message a crash left unread is answered on start if it is at most this old; older
    # ones are read silently (`Desk.recover`). 0: never answered.
    recover_reply_minutes: int = 10

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def offer_lifetime(self) -> timedelta:
        return timedelta(days=self.offer_days)

    @property
    def pulse_window(self) -> timedelta:
        return timedelta(days=self.pulse_days)

    @property
    def recover_reply_window(self) -> timedelta:
        return timedelta(minutes=self.recover_reply_minutes)


@dataclass(frozen=True, slots=True)
class Context:
    message: ChatMessage
    ledger: Ledger
    settings: DeskSettings
    lang: str
    now: datetime

    @property
    def is_bot_admin(self) -> bool:
        return (self.message.platform, self.message.sender_id) in self.settings.admins

    @property
    def scope(self) -> tuple[str, str] | None:
        """The chat to restrict readings to, when the group asked for its own offers only."""
        chat = self.ledger.chat(self.message.platform, self.message.chat_id)
        return (chat.platform, chat.chat_id) if chat.scope == "group" else None


# The answer's text; or its replies, for an answer with a picture (/digest).
Run = Callable[[Context, list[str]], str | list[Reply]]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    run: Run
    admin: bool = False  # a group admin (or bot admin) only, when said in a group


class UsageError(Exception):
    """A command was given arguments it cannot use; the message is the answer to send."""


# -- the commands ---------------------------------------------------------------------------


def help_(ctx: Context, args: list[str]) -> str:
    lines = [say(ctx.lang, "help.title")]
    for command in COMMANDS:
        alias = next((a for a in command.aliases if not a.isascii()), "")
        alias_text = f" ({alias})" if alias else ""
        lines.append(f"/{command.name}{alias_text}: {say(ctx.lang, f'cmd.{command.name}')}")
    if ctx.message.is_group:
        lines.append(_settings_line(ctx))
    lines.append(say(ctx.lang, "help.footer"))
    return "\n".join(lines)


def _settings_line(ctx: Context) -> str:
    """The group's settings, as the admin commands left them (`/lang`, `/pause`, `/scope`,
    `/digest off`)."""
    chat = ctx.ledger.chat(ctx.message.platform, ctx.message.chat_id)

    def on_off(on: bool) -> str:
        return say(ctx.lang, "setting.on" if on else "setting.off")

    return say(
        ctx.lang,
        "help.settings",
        language=say(ctx.lang, f"setting.lang.{chat.language or ctx.settings.language}"),
        matches=on_off(chat.match_replies and ctx.settings.match_replies),
        scope=say(ctx.lang, f"setting.scope.{chat.scope}"),
        digest=on_off(chat.weekly_digest),
    )


def price(ctx: Context, args: list[str]) -> str:
    """This ISO week's pulse so far, counted by listings (issue 11): what the digest and
    `gpudesk export --what pulse` say of the week."""
    gpu, deals = _model_and_deals(ctx, args, example="/price H100 rent")
    week = Week.of(ctx.now, ctx.settings.zone)
    found = {pulse.deal: pulse for pulse in _week_pulses(ctx, week, gpu)}
    sections = [
        _pulse_text(ctx, found[deal])
        for deal in deals
        if deal in found and (found[deal].sellers or found[deal].buyers)
    ]
    if not sections:
        return say(ctx.lang, "price.none_week", gpu=gpu, week=week.label)
    return "\n\n".join(sections)


def market(ctx: Context, args: list[str]) -> str:
    week = Week.of(ctx.now, ctx.settings.zone)
    pulses = [p for p in _week_pulses(ctx, week, None) if p.sellers or p.buyers]
    if not pulses:
        return say(ctx.lang, "market.none_week", week=week.label)
    lines = [say(ctx.lang, "market.title_week", week=week.label, scope=_scope_note(ctx))]
    currency = ctx.settings.valuation.currency
    for pulse in pulses:
        lines.append(
            say(
                ctx.lang,
                "market.line",
                gpu=pulse.gpu,
                deal=say(ctx.lang, f"deal.{pulse.deal.value}"),
                sellers=pulse.sellers,
                buyers=pulse.buyers,
                ask=fmt.unit_money(pulse.median_ask, currency, pulse.unit, ctx.lang),
                bid=fmt.unit_money(pulse.median_bid, currency, pulse.unit, ctx.lang),
                reading=_reading(ctx, pulse),
            )
        )
    return "\n".join(lines)


BOOK_DEPTH = 5


def book(ctx: Context, args: list[str]) -> str:
    gpu, deals = _model_and_deals(ctx, args, example="/book H100 rent")
    sections = []
    for deal in deals:
        asks, bids = (
            ctx.ledger.best_offers(
                now=ctx.now,
                gpu=gpu,
                deal=deal,
                side=side,
                lowest_first=side is Side.SELL,
                limit=BOOK_DEPTH,
                chat=ctx.scope,
            )[:BOOK_DEPTH]
            for side in (Side.SELL, Side.BUY)
        )
        if not (asks or bids):
            continue
        deal_word = say(ctx.lang, f"deal.{deal.value}")
        lines = [say(ctx.lang, "book.title", gpu=gpu, deal=deal_word)]
        for key, side in (("book.asks", asks), ("book.bids", bids)):
            lines.append(say(ctx.lang, key))
            lines.extend(_book_line(ctx, record) for record in side[:BOOK_DEPTH])
            if not side:
                lines.append(say(ctx.lang, "book.empty_side"))
        sections.append("\n".join(lines))
    if not sections:
        words = "/".join(say(ctx.lang, f"deal.{deal.value}") for deal in deals)
        return say(ctx.lang, "book.none", gpu=gpu, deal=words)
    return "\n\n".join(sections)


def mine(ctx: Context, args: list[str]) -> str:
    records = _own_open(ctx)
    if not records:
        return say(ctx.lang, "mine.none", days=ctx.settings.offer_days)
    zone = ctx.settings.zone
    lines = [say(ctx.lang, "mine.title")]
    for record in records:
        lines.append(
            say(
                ctx.lang,
                "mine.line",
                id=record.id,
                summary=fmt.summary(record.posted.offer, ctx.lang),
                when=fmt.local_time(record.posted.posted_at, zone),
                until=fmt.local_time(record.expires_at, zone),
            )
        )
    return "\n".join(lines)


def match(ctx: Context, args: list[str]) -> str:
    sections = []
    for record in _own_open(ctx):
        found = find_counterparties(ctx.ledger, ctx.settings, record.posted, now=ctx.now)
        if found:
            sections.append(match_text(ctx.lang, record.posted, found, ctx.now))
    return "\n\n".join(sections) if sections else say(ctx.lang, "match.none")


def cancel(ctx: Context, args: list[str]) -> str:
    return _close(ctx, args, WITHDRAWN, "cancel.done", example="/cancel 12")


def filled(ctx: Context, args: list[str]) -> str:
    return _close(ctx, args, FILLED, "filled.done", example="/filled 12")


def lang(ctx: Context, args: list[str]) -> str:
    choice = args[0].lower() if args else ""
    choice = {"中文": "zh", "chinese": "zh", "english": "en", "英文": "en"}.get(choice, choice)
    if choice not in ("zh", "en"):
        raise UsageError(say(ctx.lang, "error.bad_lang"))
    ctx.ledger.update_chat(ctx.message.platform, ctx.message.chat_id, language=choice)
    return say(choice, "lang.set")


def pause(ctx: Context, args: list[str]) -> str:
    ctx.ledger.update_chat(ctx.message.platform, ctx.message.chat_id, match_replies=0)
    return say(ctx.lang, "pause.done")


def resume(ctx: Context, args: list[str]) -> str:
    ctx.ledger.update_chat(ctx.message.platform, ctx.message.chat_id, match_replies=1)
    return say(ctx.lang, "resume.done")


def scope(ctx: Context, args: list[str]) -> str:
    choice = args[0].lower() if args else ""
    choice = {"本群": "group", "所有": "all", "全部": "all"}.get(choice, choice)
    if choice not in ("all", "group"):
        raise UsageError(say(ctx.lang, "error.bad_scope"))
    ctx.ledger.update_chat(ctx.message.platform, ctx.message.chat_id, scope=choice)
    return say(ctx.lang, f"scope.{choice}")


def digest(ctx: Context, args: list[str]) -> str | list[Reply]:
    """The weekly digest of the seven days ending now, chart and all (issue 7); with `off` or
    `on` (`周报 关`, `周报 开`), the group's weekly digest switch, kept in the ledger and honoured
    by the digest scheduler."""
    if args:
        switch = _DIGEST_SWITCH.get(args[0].lower()) if len(args) == 1 else None
        if switch is None:
            raise UsageError(say(ctx.lang, "error.bad_digest"))
        ctx.ledger.update_chat(ctx.message.platform, ctx.message.chat_id, weekly_digest=int(switch))
        return say(ctx.lang, "digest.switch.on" if switch else "digest.switch.off")
    return compose_digest(
        ctx.ledger, ctx.settings, ctx.message.platform, ctx.message.chat_id, now=ctx.now
    )


_DIGEST_SWITCH = {
    **dict.fromkeys(("on", "开", "开启", "打开"), True),
    **dict.fromkeys(("off", "关", "关闭", "停", "停止"), False),
}


def explain(ctx: Context, args: list[str]) -> str:
    """The parties behind a week's pulse and the posts behind each (issue 11):
    `/explain H100 rent [2026-W43]`, this week by default."""
    week = Week.of(ctx.now, ctx.settings.zone)
    if args and re.fullmatch(r"\d{4}-?[wW]\d{1,2}", args[-1]):
        try:
            week = Week.parse(args[-1], ctx.settings.zone)
        except ValueError:
            raise UsageError(
                say(ctx.lang, "error.bad_week", value=args[-1], example="2026-W43")
            ) from None
        args = args[:-1]
    gpu, deals = _model_and_deals(ctx, args, example="/explain H100 rent 2026-W43")
    if len(deals) > 1:  # no deal named: those with anyone in them
        active = {p.deal for p in _week_pulses(ctx, week, gpu) if p.sellers or p.buyers}
        deals = [deal for deal in deals if deal in active]
        if not deals:
            return say(ctx.lang, "price.none_week", gpu=gpu, week=week.label)
    return "\n\n".join(
        explain_text(
            ctx.ledger,
            gpu=gpu,
            deal=deal,
            week=week,
            now=ctx.now,
            lifetime=ctx.settings.offer_lifetime,
            lang=ctx.lang,
            thresholds=ctx.settings.thresholds,
            chat=ctx.scope,
            limits=CHAT_LIMITS,
            scope_note=_scope_note(ctx),
        )
        for deal in deals
    )


COMMANDS: tuple[Command, ...] = (
    Command("help", ("帮助", "start", "菜单"), help_),
    Command("price", ("查价", "价格"), price),
    Command("market", ("行情",), market),
    Command("book", ("盘口",), book),
    Command("match", ("匹配",), match),
    Command("mine", ("我的",), mine),
    Command("cancel", ("撤单", "撤回"), cancel),
    Command("filled", ("成交",), filled),
    Command("lang", ("语言",), lang, admin=True),
    Command("pause", ("暂停",), pause, admin=True),
    Command("resume", ("恢复",), resume, admin=True),
    Command("scope", ("范围",), scope, admin=True),
    Command("digest", ("周报",), digest, admin=True),
    Command("explain", ("解读",), explain, admin=True),
    # -- watches (issue 10): the commands live with the alerts, in handlers/watching.py
    Command("watch", ("盯盘", "盯"), watching.watch),
    Command("watches", ("我的盯盘",), watching.watches),
    Command("unwatch", ("取消盯盘",), watching.unwatch),
)


def find_command(text: str) -> tuple[Command | None, list[str]] | None:
    """The command a message invokes and its arguments, or None for an ordinary message.

    A slash word that names no command gives (None, args): the caller says it is unknown.
    """
    text = text.lstrip()
    # Most messages are no command: a look at the first characters says so, before any split.
    if not text.startswith(_COMMAND_STARTS):
        return None
    words = text.split()
    if not words:
        return None
    head = words[0]
    if head.startswith("/"):
        name = head[1:].partition("@")[0].lower()
        return _lookup(name), words[1:]
    # The longest name wins: "我的盯盘" is /watches, not /mine ("我的") with an argument.
    named = [
        (alias, command)
        for command in COMMANDS
        for alias in command.aliases
        if not alias.isascii() and head.startswith(alias)
    ]
    if not named:
        return None
    alias, command = max(named, key=lambda pair: len(pair[0]))
    rest = head[len(alias) :]
    if rest and not _glued_argument(rest):
        return None  # "价格太高了吧", "我的天", "行情不太好": chat that starts like a name
    return command, ([rest] if rest else []) + words[1:]


def said_by_name(text: str) -> bool:
    """Whether a command was said by its Chinese name, without a slash (`查价 H100`): then a
    refusal or a Chinese argument it cannot use more likely means chat than a mistyped
    command, and the desk says nothing."""
    return not text.lstrip().startswith("/")


def _glued_argument(rest: str) -> bool:
    """Whether what follows a Chinese name in the same word is an argument (`查价H100`,
    `撤单12`, `查价昇腾910B`, `周报关`) rather than the rest of a sentence."""
    return (
        rest[0].isascii()
        or rest in _DIGEST_SWITCH
        or rest in _DEAL_WORDS
        or resolve_model(rest) is not None
    )


# What a command starts with: a slash, or one of the Chinese names (no slash on WeChat).
_COMMAND_STARTS = ("/", *(a for c in COMMANDS for a in c.aliases if not a.isascii()))


def _lookup(name: str) -> Command | None:
    for command in COMMANDS:
        if name == command.name or name in command.aliases:
            return command
    return None


# -- shared pieces ----------------------------------------------------------------------------


def find_counterparties(
    ledger: Ledger, settings: DeskSettings, posted: PostedOffer, *, now: datetime
) -> list[Match]:
    """The best standing counterparties for `posted`, from every group.

    The ledger hands over only the best-priced candidates within the tolerance (from its price
    index), so the cost does not grow with the book; `find_matches` ranks them exactly.
    """
    offer, policy = posted.offer, settings.match_policy
    wanted = offer.side.opposite
    bounds: dict[str, Decimal] = {}
    if posted.unit_price is not None:
        if wanted is Side.SELL:  # asks at most the bid plus the tolerance
            bounds["price_at_most"] = posted.unit_price * (1 + policy.tolerance)
        else:  # bids at least the ask less the tolerance
            bounds["price_at_least"] = posted.unit_price / (1 + policy.tolerance)
    candidates = ledger.best_offers(
        now=now,
        gpu=offer.gpu,
        deal=offer.deal,
        side=wanted,
        lowest_first=wanted is Side.SELL,
        **bounds,  # type: ignore[arg-type]
    )
    return find_matches(posted, [record.posted for record in candidates], policy)


def match_text(lang: str, posted: PostedOffer, matches: list[Match], now: datetime) -> str:
    lines = [say(lang, "match.title", id=posted.id, summary=fmt.summary(posted.offer, lang))]
    for rank, found in enumerate(matches, start=1):
        other = found.offer
        lines.append(
            say(
                lang,
                "match.line",
                rank=rank,
                name=other.poster_name or other.poster_id,
                chat=other.chat_title or other.chat_id,
                ago=fmt.ago(other.posted_at, now, lang),
                summary=fmt.summary(other.offer, lang),
            )
        )
    return "\n".join(lines)


def _model_and_deals(ctx: Context, args: list[str], *, example: str) -> tuple[str, list[Deal]]:
    deals = [Deal.RENT, Deal.SALE]
    if args and (deal := _deal_word(args[-1])) is not None:
        deals = [deal]
        args = args[:-1]
    if not args:
        raise UsageError(say(ctx.lang, "error.need_model", example=example))
    query = " ".join(args)
    model = resolve_model(query)
    if model is None:
        raise UsageError(
            say(ctx.lang, "error.unknown_model", query=query, models=", ".join(MODELS))
        )
    return model.gpu, deals


_DEAL_WORDS = {
    "rent": Deal.RENT,
    "rental": Deal.RENT,
    "lease": Deal.RENT,
    "租": Deal.RENT,
    "租赁": Deal.RENT,
    "sale": Deal.SALE,
    "buy": Deal.SALE,
    "sell": Deal.SALE,
    "卖": Deal.SALE,
    "买卖": Deal.SALE,
    "出售": Deal.SALE,
}


def _deal_word(word: str) -> Deal | None:
    return _DEAL_WORDS.get(word.lower())


def _week_pulses(ctx: Context, week: Week, gpu: str | None) -> list[Pulse]:
    """The week's pulses from the ledger's listings up to now (issue 11), busiest first: the
    figures `pulses()` gives over the whole history, from the market state the ledger keeps
    up to date (`Ledger.week_pulses`)."""
    return ctx.ledger.week_pulses(
        week,
        now=ctx.now,
        lifetime=ctx.settings.offer_lifetime,
        gpu=gpu,
        chat=ctx.scope,
        thresholds=ctx.settings.thresholds,
    )


def _pulse_text(ctx: Context, pulse: Pulse) -> str:
    lang, currency = ctx.lang, ctx.settings.valuation.currency

    def unit(amount: Decimal | None) -> str:
        return fmt.unit_money(amount, currency, pulse.unit, lang)

    deal = say(lang, f"deal.{pulse.deal.value}")
    lines = [
        say(
            lang,
            "price.title_week",
            gpu=pulse.gpu,
            deal=deal,
            week=pulse.week,
            scope=_scope_note(ctx),
        ),
        say(
            lang,
            "price.parties",
            sellers=pulse.sellers,
            buyers=pulse.buyers,
            reading=_reading(ctx, pulse),
        ),
    ]
    for key, side in (("price.asks", Side.SELL), ("price.bids", Side.BUY)):
        if (quotes := pulse.quotes(side)) is not None:
            lines.append(say(lang, key, **{name: unit(v) for name, v in quotes._asdict().items()}))
    if pulse.spread is not None:
        lines.append(say(lang, "price.spread", spread=unit(pulse.spread)))
    if pulse.wow_ask is not None:
        lines.append(say(lang, "price.wow", change=fmt.percent(pulse.wow_ask, lang)))
    lines.append(
        say(
            lang,
            "price.qty",
            offered=pulse.qty_offered,
            wanted=pulse.qty_wanted,
            posts=pulse.sell_offers + pulse.buy_offers,
        )
    )
    lines.append(
        say(
            lang,
            "price.raw",
            sell_posts=pulse.sell_offers,
            sell_posters=pulse.sell_posters,
            buy_posts=pulse.buy_offers,
            buy_posters=pulse.buy_posters,
        )
    )
    return "\n".join(lines)


def _reading(ctx: Context, pulse: Pulse) -> str:
    if pulse.reading is None:
        return say(ctx.lang, "reading.none")
    return say(ctx.lang, f"reading.{pulse.reading.value}")


def _scope_note(ctx: Context) -> str:
    return say(ctx.lang, "price.this_group") if ctx.scope else ""


def _book_line(ctx: Context, record: OfferRecord) -> str:
    posted = record.posted
    unit = unit_for(posted.offer.deal)
    price_text = (
        fmt.unit_money(posted.unit_price, ctx.settings.valuation.currency, unit, ctx.lang)
        if posted.unit_price is not None
        else say(ctx.lang, "price.unknown")
    )
    return say(
        ctx.lang,
        "book.line",
        id=posted.id,
        price=price_text,
        qty=fmt.quantity(posted.offer, ctx.lang),
        place=fmt.place(posted.offer.location, ctx.lang),
        name=posted.poster_name or posted.poster_id,
    )


def _own_open(ctx: Context) -> list[OfferRecord]:
    return ctx.ledger.poster_offers(ctx.message.platform, ctx.message.sender_id, now=ctx.now)


def _close(ctx: Context, args: list[str], status: str, done_key: str, *, example: str) -> str:
    # ASCII digits that fit SQLite's integer: "²".isdigit() is true, and int() refuses it.
    wanted = args[0].lstrip("#") if args else ""
    if not (wanted.isascii() and wanted.isdigit() and len(wanted) <= 18):
        raise UsageError(say(ctx.lang, "error.need_id", example=example))
    offer_id = int(wanted)
    record = ctx.ledger.offer(offer_id)
    if record is None or record.status != OPEN or record.expires_at <= ctx.now:
        raise UsageError(say(ctx.lang, "error.no_offer", id=offer_id))
    own = (record.posted.platform, record.posted.poster_id) == (
        ctx.message.platform,
        ctx.message.sender_id,
    )
    if not (own or ctx.is_bot_admin):
        raise UsageError(say(ctx.lang, "error.not_yours", id=offer_id))
    ctx.ledger.set_status(offer_id, status, now=ctx.now)
    ctx.ledger.record_closing(offer_id, status, at=ctx.now, message=ctx.message)  # issue 11
    return say(ctx.lang, done_key, id=offer_id)


def thresholds_from(strong: Decimal, lean: Decimal) -> ReadingThresholds:
    return ReadingThresholds(strong=Fraction(strong), lean=Fraction(lean))
