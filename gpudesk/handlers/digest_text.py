"""The weekly digest in words, and as the replies that carry it to a group.

`load_digest` reads one chat's week from the ledger (all groups, or its own when its scope says
so) and counts it (`market.digest.build_digest`). `render_text` writes it in the group's
language, in two parts: the head (title, the week in one line, totals) and the body (the table
of models, notable offers, matches). `digest_replies` packs them with the chart for Telegram's
limits: one photo whose caption is the whole digest when it fits in 1024 characters, else the
photo captioned with the head and the body as a second message of at most 4096 (table rows
are dropped, with a "…and N more" line, until it fits). Limits count UTF-16 code units, as
Telegram does; WeChat, which has no captions, gets the same replies as text, photo, text.

`compose` does all of it for the seven days ending at a moment: the `/digest` command and the
`gpudesk digest` CLI. The scheduler calls the pieces itself, to draw the chart off the event
loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from gpudesk.handlers import format as fmt
from gpudesk.handlers.chart import render_chart
from gpudesk.handlers.texts import say
from gpudesk.market.book import PostedOffer
from gpudesk.market.digest import HISTORY_WEEKS, Digest, Notable, build_digest, week_label
from gpudesk.market.message import Reply
from gpudesk.market.normalise import unit_for
from gpudesk.market.offer import Offer
from gpudesk.market.privacy import mask_personal
from gpudesk.market.pulse import WEEK, Pulse, Reading
from gpudesk.storage.ledger import ChatRecord, Ledger

if TYPE_CHECKING:
    from gpudesk.handlers.commands import DeskSettings

CAPTION_LIMIT = 1024  # Telegram's, in UTF-16 code units
MESSAGE_LIMIT = 4096
TABLE_ROWS = 10  # models in the text table before "…and N more"; the chart shows fewer
KIND = "digest"


@dataclass(frozen=True, slots=True)
class DigestText:
    head: str  # title, headline, totals: the photo's caption when the whole does not fit
    body: str  # "" for a quiet week

    @property
    def full(self) -> str:
        return f"{self.head}\n\n{self.body}" if self.body else self.head


def load_digest(
    ledger: Ledger,
    settings: DeskSettings,
    chat: ChatRecord | None,
    *,
    start: datetime,
    end: datetime,
) -> Digest:
    """The digest of `(start, end]` for `chat` (None: the whole market, every group)."""
    scope = (chat.platform, chat.chat_id) if chat is not None and chat.scope == "group" else None
    # Every figure, the notable offers too, comes from the listings (issue 11); the offers
    # give the notable listings their words, so they reach back as far as the chart.
    # offers_seen_between's end is exclusive, the window's inclusive.
    since = end - HISTORY_WEEKS * (end - start)
    records = ledger.offers_seen_between(since, end + timedelta(microseconds=1), chat=scope)
    return build_digest(
        [record.posted for record in records],
        start=start,
        end=end,
        week=week_label(start, end, settings.zone),
        currency=settings.valuation.currency,
        thresholds=settings.thresholds,
        matches=ledger.matches_between(start, end, chat=scope),
        book=ledger.listings(until=end, lifetime=settings.offer_lifetime, chat=scope),
        zone=settings.zone,
    )


def chat_language(chat: ChatRecord | None, settings: DeskSettings) -> str:
    return (chat.language if chat is not None else None) or settings.language


def render_text(
    digest: Digest, lang: str, zone: tzinfo, *, this_group: bool = False, rows: int = TABLE_ROWS
) -> DigestText:
    """The digest in `lang`, times in `zone`; `this_group` notes a group-only scope."""
    start, end = fmt.local_time(digest.start, zone), fmt.local_time(digest.end, zone)
    if digest.quiet:
        return DigestText(say(lang, "digest.quiet", start=start, end=end), "")
    scope = say(lang, "price.this_group") if this_group else ""
    overall = digest.overall
    headline = say(
        lang,
        "digest.headline",
        reading=_reading(overall.reading, lang),
        ratio=_ratio(digest, lang),
        lead=_lead(overall.lead, lang),
    )
    head = [
        say(lang, "digest.title", week=digest.week, scope=scope, start=start, end=end),
        headline[:1].upper() + headline[1:],  # a sentence: "Sellers outnumber buyers: …"
        say(
            lang,
            "digest.totals",
            sellers=overall.sellers,
            buyers=overall.buyers,
            posts=overall.posts,
            matches=digest.match_count,
        ),
    ]
    return DigestText("\n".join(head), "\n\n".join(_body_sections(digest, lang, rows)))


def digest_replies(
    text: DigestText, chart: bytes | None, *, platform: str, chat_id: str
) -> list[Reply]:
    """The replies that carry a digest (see the module docstring); always fits Telegram."""

    def reply(body: str, image: bytes | None = None) -> Reply:
        return Reply(platform=platform, chat_id=chat_id, text=body, image=image, kind=KIND)

    if chart is None or utf16_len(text.full) <= CAPTION_LIMIT:
        return [reply(text.full, chart)]
    if utf16_len(text.head) > CAPTION_LIMIT:  # cannot happen with our texts; never fail on it
        return [reply("", chart), reply(text.full)]
    return [reply(text.head, chart), reply(text.body)]


def fit(digest: Digest, lang: str, zone: tzinfo, *, this_group: bool = False) -> DigestText:
    """`render_text` with as many table rows as let the body fit one Telegram message."""
    rows = TABLE_ROWS
    text = render_text(digest, lang, zone, this_group=this_group, rows=rows)
    while rows > 1 and utf16_len(text.body) > MESSAGE_LIMIT:
        rows -= 1
        text = render_text(digest, lang, zone, this_group=this_group, rows=rows)
    return text


def compose(
    ledger: Ledger,
    settings: DeskSettings,
    platform: str,
    chat_id: str,
    *,
    now: datetime,
    chart: bool = True,
) -> list[Reply]:
    """The digest of the seven days ending `now`, for one chat, ready to send."""
    chat = ledger.chat(platform, chat_id)
    lang = chat_language(chat, settings)
    digest = load_digest(ledger, settings, chat, start=now - WEEK, end=now)
    text = fit(digest, lang, settings.zone, this_group=chat.scope == "group")
    png = render_chart(digest, lang, settings.zone) if chart and not digest.quiet else None
    return digest_replies(text, png, platform=platform, chat_id=chat_id)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


# -- the body ----------------------------------------------------------------------------------


def _body_sections(digest: Digest, lang: str, rows: int) -> list[str]:
    sections = [_table(digest, lang, rows)]
    for key, offers in (
        ("digest.lowest_asks", digest.lowest_asks),
        ("digest.highest_bids", digest.highest_bids),
    ):
        if offers:
            lines = [say(lang, key)]
            lines.extend(_offer_line(o, digest, lang) for o in offers)
            sections.append("\n".join(lines))
    if digest.largest_lots:
        lines = [say(lang, "digest.largest_lots")]
        lines.extend(_lot_line(o, digest, lang) for o in digest.largest_lots)
        sections.append("\n".join(lines))
    if digest.match_count:
        lines = [say(lang, "digest.matches", n=digest.match_count)]
        for made in digest.matches:
            seller, buyer = made.seller, made.buyer
            lines.append(
                say(
                    lang,
                    "digest.match",
                    gpu=seller.offer.gpu,
                    deal=say(lang, f"deal.{seller.offer.deal.value}"),
                    seller=_name(seller),
                    ask=_unit_price(seller, digest, lang),
                    buyer=_name(buyer),
                    bid=_unit_price(buyer, digest, lang),
                )
            )
        sections.append("\n".join(lines))
    return sections


def _table(digest: Digest, lang: str, rows: int) -> str:
    lines = [say(lang, "digest.models")]
    for pulse in digest.models[:rows]:
        lines.append(
            say(
                lang,
                "digest.model",
                gpu=pulse.gpu,
                deal=say(lang, f"deal.{pulse.deal.value}"),
                sell_posts=pulse.sell_offers,
                sellers=pulse.sellers,
                buy_posts=pulse.buy_offers,
                buyers=pulse.buyers,
                reading=_reading(pulse.reading, lang),
            )
        )
        ask = fmt.unit_money(pulse.median_ask, digest.currency, pulse.unit, lang)
        bid = fmt.unit_money(pulse.median_bid, digest.currency, pulse.unit, lang)
        if pulse.wow_ask is None:
            lines.append(say(lang, "digest.model.prices", ask=ask, bid=bid))
        else:
            change = fmt.percent(pulse.wow_ask, lang)
            lines.append(say(lang, "digest.model.prices_wow", ask=ask, bid=bid, change=change))
    hidden = len(digest.models) - rows
    if hidden > 0:
        lines.append(say(lang, "digest.models.more", n=hidden))
    return "\n".join(lines)


def _offer_line(notable: Notable, digest: Digest, lang: str) -> str:
    """A lowest ask or highest bid: a listing standing in the week, at its party's price."""
    offer = notable.offer
    return say(
        lang,
        "digest.offer",
        model=_model(offer),
        deal=say(lang, f"deal.{offer.deal.value}"),
        price=_listing_price(notable, digest, lang),
        qty=fmt.quantity(offer, lang),
        place=fmt.place(offer.location, lang),
        name=mask_personal(notable.name),
    )


def _lot_line(notable: Notable, digest: Digest, lang: str) -> str:
    """A largest lot: a listing standing in the week, its size in GPUs, at its own price."""
    offer = notable.offer
    return say(
        lang,
        "digest.lot",
        side=say(lang, f"side.{offer.side.value}"),
        model=_model(offer),
        deal=say(lang, f"deal.{offer.deal.value}"),
        qty=say(lang, "qty.gpus", n=notable.gpus),
        price=_listing_price(notable, digest, lang),
        place=fmt.place(offer.location, lang),
        name=mask_personal(notable.name),
    )


def _model(offer: Offer) -> str:
    memory = f"{offer.memory_gb}G" if offer.memory_gb else None
    return " ".join(part for part in (offer.gpu, offer.variant, memory) if part)


def _name(posted: PostedOffer) -> str:
    # A digest goes to a whole group: no phone numbers or WeChat ids in it (issue 9).
    return mask_personal(posted.poster_name or posted.poster_id)


def _listing_price(notable: Notable, digest: Digest, lang: str) -> str:
    if notable.price is None:
        return say(lang, "price.unknown")
    unit = unit_for(notable.listing.lot.deal)
    return fmt.unit_money(notable.price, digest.currency, unit, lang)


def _unit_price(posted: PostedOffer, digest: Digest, lang: str) -> str:
    if posted.unit_price is None:
        return fmt.stated_price(posted.offer, lang)
    unit = unit_for(posted.offer.deal)
    return fmt.unit_money(posted.unit_price, digest.currency, unit, lang)


def _reading(reading: Reading | None, lang: str) -> str:
    return say(lang, "reading.none" if reading is None else f"reading.{reading.value}")


def _ratio(digest: Digest, lang: str) -> str:
    overall = digest.overall
    if overall.ratio is None:
        return say(lang, "digest.ratio.one_side", sellers=overall.sellers, buyers=overall.buyers)
    key = "digest.ratio.sellers" if overall.sellers >= overall.buyers else "digest.ratio.buyers"
    return say(lang, key, ratio=overall.ratio)


def _lead(pulse: Pulse | None, lang: str) -> str:
    if pulse is None or pulse.wow_ask is None:
        return ""
    change = pulse.wow_ask
    if fmt.percent(change, lang) in ("0%", "-0%"):
        move = say(lang, "digest.move.flat")
    else:
        direction = "digest.move.up" if change > 0 else "digest.move.down"
        move = say(lang, direction, change=fmt.percent(abs(change), lang).lstrip("+"))
    return say(
        lang, "digest.lead", gpu=pulse.gpu, deal=say(lang, f"deal.{pulse.deal.value}"), move=move
    )
