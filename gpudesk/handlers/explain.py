"""`explain`: the parties behind one week's pulse of one GPU, and the posts behind each party.

For a (gpu, deal) and an ISO week, `explain_text` lists the pulse's figures, then every listing
standing in the week, sellers first, each with its party, quantity, place and price that week,
the posts that advertised it (group, poster, time, an excerpt, and whether each was the
original, a repost, a cross-post, a price change or a broker's repost) and what ended it. Every
figure of the pulse can be traced to these lines: the parties are the listings' parties, the
prices are the ones marked as counted. `gpudesk explain` prints it whole; `/explain` in a chat
keeps it to a phone screen or two.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from gpudesk.handlers import format as fmt
from gpudesk.handlers.texts import say
from gpudesk.market.listings import (
    DEFAULT_THRESHOLDS,
    Advert,
    Closing,
    Listing,
    Role,
    Standing,
    Week,
    micros,
    moment,
    pulse_of,
    standing_in,
)
from gpudesk.market.normalise import unit_for
from gpudesk.market.offer import Deal, Side
from gpudesk.market.pulse import Pulse, ReadingThresholds
from gpudesk.storage.ledger import Ledger, ListingPost

EXCERPT_CHARS = 60


@dataclass(frozen=True, slots=True)
class Limits:
    """How much to show: everything on the command line, a screenful or two in a chat."""

    listings: int | None = None  # per side
    posts: int | None = None  # per listing
    excerpt: int = EXCERPT_CHARS


WHOLE = Limits()
CHAT_LIMITS = Limits(listings=6, posts=3, excerpt=40)


def explain_text(
    ledger: Ledger,
    *,
    gpu: str,
    deal: Deal,
    week: Week,
    now: datetime,
    lifetime: timedelta,
    lang: str,
    thresholds: ReadingThresholds = DEFAULT_THRESHOLDS,
    chat: tuple[str | None, str] | None = None,
    limits: Limits = WHOLE,
    scope_note: str = "",
) -> str:
    """The explanation of `gpu`/`deal` in `week`, from what the ledger holds up to `now`.

    Later posts never change a past week's figures (listings are read in time order), but they
    do say how its listings ended, so everything up to `now` is read.
    """
    book = ledger.listings(
        until=now, lifetime=lifetime, gpu=gpu, deal=deal, chat=chat, keep_posts=True
    )
    currency = ledger.valuation.currency
    pulse = pulse_of(book, gpu, deal, week, currency=currency, thresholds=thresholds)
    standing = standing_in(book, gpu, deal, week)
    sides = {side: [s for s in standing if s.listing.side is side] for side in Side}
    shown = {side: items[: limits.listings] for side, items in sides.items()}
    posts = ledger.listing_posts(
        adverts=[
            advert[0]  # by position: the ledger's rows are plain tuples in Advert's order
            for items in shown.values()
            for item in items
            for advert, _ in item.listing.adverts
            if advert[2] < micros(week.end)
        ],
        withdrawals=[
            item.listing.closed_by.id
            for items in shown.values()
            for item in items
            if item.listing.closed_by is not None
        ],
    )
    priced = {side: sum(s.counted_price for s in items) for side, items in sides.items()}
    writer = _Writer(lang, week, now, lifetime, limits, posts, pulse)
    lines = writer.head(scope_note, priced)
    for side, key in ((Side.SELL, "explain.sellers"), (Side.BUY, "explain.buyers")):
        lines += ["", say(lang, key)]
        if not shown[side]:
            lines.append(say(lang, "explain.none"))
        for number, item in enumerate(shown[side], start=1):
            lines.extend(writer.listing(number, item))
    hidden = sum(len(sides[side]) - len(shown[side]) for side in Side)
    if hidden:
        more = say(lang, "explain.more", n=hidden, gpu=gpu, deal=deal.value, week=week.label)
        lines += ["", more]
    return "\n".join(lines)


class _Writer:
    """The lines of one explanation, in one language."""

    def __init__(
        self,
        lang: str,
        week: Week,
        now: datetime,
        lifetime: timedelta,
        limits: Limits,
        posts: dict[tuple[str, int], ListingPost],
        pulse: Pulse,
    ):
        self.lang, self.week, self.now, self.limits = lang, week, now, limits
        self.days = lifetime.days
        self.posts, self.pulse = posts, pulse

    def money(self, amount: Decimal | None) -> str:
        return fmt.unit_money(amount, self.pulse.currency, unit_for(self.pulse.deal), self.lang)

    def when(self, at: int) -> str:
        return fmt.local_time(moment(at), self.week.zone)

    def head(self, scope_note: str, priced: dict[Side, int]) -> list[str]:
        lang, pulse, week = self.lang, self.pulse, self.week
        reading = "reading.none" if pulse.reading is None else f"reading.{pulse.reading.value}"
        sunday = week.monday + timedelta(days=6)
        lines = [
            say(
                lang,
                "explain.title",
                gpu=pulse.gpu,
                deal=say(lang, f"deal.{pulse.deal.value}"),
                week=week.label,
                start=week.monday.strftime("%m-%d"),
                end=sunday.strftime("%m-%d"),
                scope=scope_note,
            ),
            say(
                lang,
                "explain.parties",
                sellers=pulse.sellers,
                buyers=pulse.buyers,
                reading=say(lang, reading),
            ),
        ]
        for key, side in (("explain.asks", Side.SELL), ("explain.bids", Side.BUY)):
            if (quotes := pulse.quotes(side)) is None:
                continue
            shown = {name: self.money(amount) for name, amount in quotes._asdict().items()}
            if side is Side.SELL:
                wow = pulse.wow_ask
                shown["wow"] = (
                    "" if wow is None else say(lang, "explain.wow", change=fmt.percent(wow, lang))
                )
            lines.append(say(lang, key, n=priced[side], **shown))
        lines.append(
            say(
                lang,
                "explain.raw",
                sell_posts=pulse.sell_offers,
                sell_posters=pulse.sell_posters,
                buy_posts=pulse.buy_offers,
                buy_posters=pulse.buy_posters,
            )
        )
        return lines

    def listing(self, number: int, standing: Standing) -> list[str]:
        lang, listing = self.lang, standing.listing
        original = self.posts.get(("advert", listing.id))
        if standing.price is None:
            price = say(lang, "explain.no_price")
        else:
            price = say(lang, "explain.price_week", price=self.money(standing.price))
        counted = ""
        if standing.price is not None and not standing.counted_price:
            counted = say(lang, "explain.not_counted")
        if listing.gpus is None:
            qty = say(lang, "qty.unknown")
        else:
            qty = say(lang, "qty.gpus", n=listing.gpus)
        lines = [
            say(
                lang,
                "explain.listing",
                n=number,
                name=original.poster_name if original else listing.party[1],
                qty=qty,
                place=fmt.place(listing.place, lang),
                price=price,
                counted=counted,
            ),
            say(
                lang,
                "explain.stands",
                start=self.when(listing.first_at),
                end=self.when(listing.ends_at),
                ending=self.ending(listing),
            ),
        ]
        end = micros(self.week.end)
        adverts = [(Advert._make(a), r) for a, r in listing.adverts if a[2] < end]
        later = len(listing.adverts) - len(adverts)
        limit = self.limits.posts
        if limit is not None and len(adverts) > limit:
            # The original, then the latest: how it began and what it says now.
            hidden = len(adverts) - limit
            lines.append(self.advert(*adverts[0]))
            lines.append(say(lang, "explain.more_posts", n=hidden))
            lines.extend(self.advert(a, r) for a, r in adverts[len(adverts) - (limit - 1) :])
        else:
            lines.extend(self.advert(a, r) for a, r in adverts)
        if later:
            lines.append(say(lang, "explain.later", n=later))
        return lines

    def advert(self, advert: Advert, role: Role) -> str:
        post = self.posts.get(("advert", advert.id))
        return say(
            self.lang,
            "explain.advert",
            when=self.when(advert.at),
            chat=_chat_name(post, advert.chat),
            name=post.poster_name if post else str(advert.party),
            role=say(self.lang, f"role.{role.value}"),
            text=_excerpt(post.text if post else "", self.limits.excerpt),
        )

    def ending(self, listing: Listing) -> str:
        lang, closing = self.lang, listing.closed_by
        if closing is not None:
            when = self.when(closing.at)
            if closing.kind is not Closing.SAID:
                return say(lang, "explain.closed_command", command=f"/{closing.kind}", when=when)
            post = self.posts.get(("withdrawal", closing.id))
            return say(
                lang,
                "explain.closed",
                name=post.poster_name if post else closing.party[1],
                chat=_chat_name(post, closing.chat),
                when=when,
                text=_excerpt(post.text if post else "", self.limits.excerpt),
            )
        if listing.ends_at <= micros(self.now):
            return say(lang, "explain.lapsed", days=self.days)
        return say(lang, "explain.standing", days=self.days)


def _chat_name(post: ListingPost | None, chat: Hashable) -> str:
    """The group's title, else its id; `chat` (a listing's own key, which may be a compact
    code) is the last resort."""
    if post is not None:
        return post.chat_title or post.chat[1]
    return chat[1] if isinstance(chat, tuple) else str(chat)


def _excerpt(text: str, limit: int) -> str:
    flat = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
