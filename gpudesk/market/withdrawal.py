"""Withdrawals: messages that end a deal ("H100已出，谢谢各位", "Update: fully booked").

`detect_withdrawal(text)` says whether a message ends one of its poster's deals and what it
names: the model, the deal, the side, the place and the size in GPUs, each None when unsaid. It
is for messages the parser found no offers in (the parser's contract is unchanged: a withdrawal
is never an offer), and it leans towards silence: a question ("H100已出了吗？"), hearsay
("听说老王的H100已出了"), a negation ("还没出", "not sold yet") or news ("NVIDIA sold 1M
H100s") is not a withdrawal. What a withdrawal closes is `market/listings.py`'s business.

The size and the place are read by the offer parser itself, from the note with its closing
words replaced by a side word, so that a broker's "H100 8卡10台 北京 租赁 已出" names 80 GPUs
in Beijing exactly as the listing it closes was read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpudesk.market.catalog import normalize, resolve_model
from gpudesk.market.normalise import gpu_count
from gpudesk.market.offer import Deal, Side
from gpudesk.market.parse import parse_offers
from gpudesk.market.places import resolve_place

# A closing note is a line or two; a long text that says "sold" is news or a story.
MAX_NOTE_CHARS = 300


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """What a closing message names; None for what it leaves unsaid."""

    words: str  # the words that end the deal, as written ("已出", "fully booked")
    side: Side | None = None  # "已出" ends a sale or a rental offer; "已找到" a request
    deal: Deal | None = None
    gpu: str | None = None
    variant: str | None = None
    place: str | None = None
    gpus: int | None = None  # the size named, in GPUs


@dataclass(frozen=True, slots=True)
class _Phrase:
    pattern: str
    side: Side | None
    deal: Deal | None


# Longer phrases first where one contains another (已租到 is a buyer's, 已租 a seller's).
_PHRASES: tuple[_Phrase, ...] = (
    # Chinese: a seller's
    _Phrase(r"已租出|租出去了|已出租|租掉了|已租(?![到给用])", Side.SELL, Deal.RENT),
    _Phrase(r"已约满|约满了|已满租|满租了", Side.SELL, Deal.RENT),
    _Phrase(
        r"已售出|已售罄|售罄|已售(?![后价])|售出了|已卖出|已卖掉|卖掉了|已卖(?![价家])",
        Side.SELL,
        Deal.SALE,
    ),
    _Phrase(
        r"已出掉|出掉了|已出手|已出(?![货价厂口现来过去品资力])|已下架|下架了|不出了",
        Side.SELL,
        None,
    ),
    # Chinese: a buyer's
    _Phrase(r"已租到|租到了", Side.BUY, Deal.RENT),
    _Phrase(r"已买到|买到了", Side.BUY, Deal.SALE),
    _Phrase(r"已找到|找到了|不需要了|不用了|不收了", Side.BUY, None),
    # Chinese: either
    _Phrase(
        r"已成交|成交了|(?<!价)(?<!价格)(?<!时间)(?<!日期)已定(?![价制])|已订(?![购阅])|已被定|已被订|已预定|已锁定",
        None,
        None,
    ),
    # English: a seller's
    _Phrase(
        r"(?:\b(?:fully|all|now|already)\s+booked\b|\bbooked\s+(?:out|up)\b)"
        r"(?!\s+(?:a|an|the|my|our|your|for|in|on|at|with|\d)\b)",
        Side.SELL,
        Deal.RENT,
    ),
    _Phrase(r"\b(?:rented|leased)\s+out\b", Side.SELL, Deal.RENT),
    _Phrase(
        r"\bsold\s+out\b|\bsold\b(?!\s*(?:\d|a\b|an\b|the\b|to\b|for\b|over\b|more\b|about\b"
        r"|around\b|nearly\b|almost\b|some\b|many\b|most\b|all\b|units?\b|by\b|as\b|at\b))",
        Side.SELL,
        None,
    ),
    _Phrase(
        r"\bno\s+longer\s+available\b|\bnot\s+available\s+any\s*more\b|\boff\s+the\s+market\b"
        r"|\ball\s+gone\b|\b(?:has\s+been|have\s+been|is|are)\s+taken\b|\bwithdrawn\b",
        Side.SELL,
        None,
    ),
    # English: a buyer's
    _Phrase(
        r"\bno\s+longer\s+(?:needed|looking|required)\b|\bnot\s+needed\s+any\s*more\b"
        r"|\bfound\s+(?:one|it|a\s+supplier|a\s+provider|what\s+(?:we|i)\s+needed)\b"
        r"|\b(?:need|request|requirement)\s+(?:is\s+)?filled\b|\bsourced\b",
        Side.BUY,
        None,
    ),
    # English: either
    _Phrase(r"\bdeal\s+(?:is\s+)?(?:done|closed)\b|\bdone\s+deal\b", None, None),
)
_COMPILED = tuple((re.compile(p.pattern), p) for p in _PHRASES)

# Words before the phrase that say the opposite: "还没出", "not sold yet", "isn't booked".
_NEGATION = re.compile(r"(?:没有?|未|还没|尚未|并未|不是|\bnot|n't|\bnever|\bnor)\s*(?:\w+\s+)?$")
_NOT_YET = re.compile(r"^\s*(?:yet\b|吗|么|没)")
# Someone else's deal, or a question: not the poster closing their own.
_HEARSAY = re.compile(
    r"听说|据说|好像|貌似|传闻|传言|有人说|据悉|恭喜|是不是|是否|谁的|别人的"
    r"|\bi\s+heard\b|\bheard\b|\brumou?rs?\b|\bapparently\b|\breportedly\b|\bcongrat"
    r"|\bsomeone\s+said\b|\bwhose\b"
)
_QUESTION = re.compile(r"[?？]|吗|\bdid\b|\bis\s+it\b|\banyone\b|\bany\s+one\b")

_RENT_WORDS = re.compile(r"租|包月|\brent|\brental|\blease|\bleasing|/\s*(?:hr|hour|h|月|month)")
_SALE_WORDS = re.compile(r"出售|售|卖|\bsale\b|\bselling\b|\bpurchase\b")


def detect_withdrawal(text: str) -> Withdrawn | None:
    """What `text` withdraws, or None when it is not its poster ending a deal."""
    if not text.strip() or len(text) > MAX_NOTE_CHARS:
        return None
    low = normalize(text)
    if _HEARSAY.search(low) or _QUESTION.search(low):
        return None
    found = _phrase(low)
    if found is None:
        return None
    start, end, phrase = found
    rest = f"{low[:start]} {low[end:]}"
    model = resolve_model(low)
    side_word = "收" if phrase.side is Side.BUY else "出"
    read = parse_offers(f"{side_word} {rest}")
    named = next((o for o in read if model is not None and o.gpu == model.gpu), None)
    place = (named.location if named is not None else None) or resolve_place(rest)
    return Withdrawn(
        words=text[start:end] if len(low) == len(text) else low[start:end],
        side=phrase.side,
        deal=phrase.deal or _deal(rest),
        gpu=None if model is None else model.gpu,
        variant=None if model is None else model.variant,
        place=place,
        gpus=None if named is None else gpu_count(named),
    )


def _phrase(low: str) -> tuple[int, int, _Phrase] | None:
    """The first closing phrase that is not negated, with where it stands."""
    best: tuple[int, int, _Phrase] | None = None
    for pattern, phrase in _COMPILED:
        for match in pattern.finditer(low):
            start, end = match.span()
            if _NEGATION.search(low[max(0, start - 12) : start]) or _NOT_YET.match(low[end:]):
                continue
            if best is None or start < best[0]:
                best = (start, end, phrase)
            break
    return best


def _deal(rest: str) -> Deal | None:
    rent, sale = bool(_RENT_WORDS.search(rest)), bool(_SALE_WORDS.search(rest))
    if rent == sale:
        return None
    return Deal.RENT if rent else Deal.SALE
