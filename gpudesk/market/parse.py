"""Read buy and sell offers out of a chat message: `parse_offers(text) -> list[Offer]`.

The parser is a pure function of the message text (no I/O, clock or shared mutable state). It
works in a few passes over one normalised copy of the text (NFKC, lower case):

1. **Cues.** One Aho-Corasick automaton, built at import from the catalog, the gazetteer and
   the keyword tables below, finds models, form factors, places, intent words (出, 收, WTS,
   WTB), deal words (租, lease, 出售), price and unit words (月租, 预算, 每卡), distractor words
   (IB, 内存, CPU, 押金), lease terms (for a month), and question, news and finished-deal
   markers in a single scan. News and the like end the reading there, and so does a question
   with no intent it could be asking for; models, variants and places are blanked in the copy
   the numbers are read from.
2. **Numbers.** Each number is read with one anchored regex that takes its multiplier (w/万/k),
   currency and the unit words after it; with the cue just before it, that says whether it is a
   price, a count of GPUs or servers, GPUs per server, memory, or a distractor (phone number,
   date, warranty, network speed, RAM, disk, CPU model). Whole amounts (7.5w) are worked out in
   integers rather than Decimal arithmetic.
3. **Items.** Lines (and `;`/`。` clauses) that name a model are items; a line naming two
   different models is split between them. Lines without a model are headers or footers whose
   intent, place, currency, price unit and GPUs per server apply to the items they frame. A
   message with a single item is read as a whole, so a multi-line post keeps all its details.
4. **Offers.** For each item the counts are resolved against each other (`8卡 … 10台` is ten
   8-GPU servers; `8x H100 nodes, need 4 nodes` is four), the first price gets its unit and
   period, and intent, deal, place and currency come from the item, else its frame, else the
   whole message.

Questions, news, gossip, market talk, vouchers, rules and finished deals give no offers, and
neither does a count with no intent word and no price ("Our 32 H100 just went live"). What the
contract has no value for is left null and the rest kept: a price by the day or the week has no
`price_per`, one in another currency (€, £, HK$, S$) no `currency`, and the price of a whole lot
of several units ("打包价 1.2亿", "$3.1M total") no `price_per`.

Installed with `make install`, this module is compiled to C by mypyc (setup.py) and Python
imports the compiled module in its place; uncompiled, it is the same parser in plain Python. So
it keeps to what mypyc compiles well: `Final` constants, plain classes with an `__init__` of
their own, and annotations that hold at run time (the compiled module checks them).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from typing import Any, Final

import ahocorasick

from gpudesk.market import catalog, places
from gpudesk.market.catalog import ASCII_ALNUM, ASCII_ALPHA, ModelQuery
from gpudesk.market.offer import Currency, Deal, Offer, PricePer, QuantityUnit, Side

__all__ = ["names_foreign_money", "parse_offers"]

# Longer texts are not chat posts (Telegram caps a message at 4,096 characters); reading only
# this much keeps the worst case bounded.
MAX_CHARS: Final = 16_384
_FRAMES: Final = 4  # header or footer lines that can frame one item

SELL: Final = Side.SELL
BUY: Final = Side.BUY
SALE: Final = Deal.SALE
RENT: Final = Deal.RENT
GPU: Final = QuantityUnit.GPU
SERVER: Final = QuantityUnit.SERVER
CNY: Final = Currency.CNY
USD: Final = Currency.USD

# =============================================================================================
# Cues: what a keyword says about a post.
# =============================================================================================

# Cue kinds.
MODEL: Final = 0
VARIANT: Final = 1
PLACE: Final = 2
INTENT: Final = 3
DEAL: Final = 4
FLIP: Final = 5
QUESTION: Final = 6
VETO: Final = 7
DONE: Final = 8
WORD: Final = 9
NUMWORD: Final = 10
MONEY: Final = 11
LEASE: Final = 12  # how long the GPUs are wanted ("for a month"): a rental

# What a cue says about the number right after it (bit flags).
IGNORE_NEXT: Final = 1  # "IB 400G", "内存 512G", "押金 2w", "min order 8": not a count or price
PRICE_NEXT: Final = 2  # "月租 8500", "budget 2000": a price even without a currency
QTY_NEXT: Final = 4  # "qty 10", "数量 8"


@dataclass(frozen=True, slots=True)
class _Cue:
    """The meaning of one keyword. Strong intents beat weak ones (现货, available, 有)."""

    kind: int
    side: Side | None = None
    strong: bool = False
    deal: Deal | None = None
    deal_strong: bool = False
    have: bool = False  # "I have": inside a question ("有 H100 吗?") it asks instead
    rents: bool = False  # a verb of renting: after "anyone" it asks who rents out ("有人租 X 吗")
    before: int = 0  # IGNORE_NEXT / PRICE_NEXT / QTY_NEXT
    span: str | None = None  # "月租": prices after it are per month
    unit: QuantityUnit | None = None  # "每卡": prices after it are per GPU
    value: Any = None  # model query, variant, place, number, currency
    hints: bool = False  # says something about the number after it (set when the table is built)
    vetoes: bool = False  # can veto a count after it ("IB 400G", "min order 8"): set likewise
    total: bool = False  # "打包价", "total": the price after it is for everything counted
    needs_object: bool = False  # "有": an intent only when its clause names a model or a number
    subject: bool = False  # "needs": right after a model name, the model is its subject
    asks_price: bool = False  # a question about the price ("什么价", "how much")


def _words(spellings: str) -> tuple[str, ...]:
    return tuple(spellings.split("|"))


# Keyword tables: "|"-separated lower-case spellings and their meaning. English spellings match
# whole words only; the longest spelling at a position wins (出租 over 出, 收到 over 收).
_KEYWORDS: Final[tuple[tuple[str, _Cue], ...]] = (
    # --- selling ---
    (
        "出|急出|低价出|特价出|现出|wts|selling|sell|offering|provide|providing|can provide"
        "|can supply|we supply",
        _Cue(INTENT, SELL, True),
    ),
    (
        "出售|急售|在售|卖|售|转让|急转|甩卖|甩货|for sale|fs",
        _Cue(INTENT, SELL, True, SALE, True),
    ),
    ("liquidating|liquidate|liquidation|clearance|清仓|清货|甩", _Cue(INTENT, SELL, True, SALE)),
    (
        "出租|招租|对外出租|可租|for rent|for lease|up for lease|leasing|renting|renting out"
        "|rent out|lease out",
        _Cue(INTENT, SELL, True, RENT, True),
    ),
    (  # "does anyone want ...?" is an offer to sell
        "有没有要|谁要|有要的|要的私聊|要的联系|有需要|找买家|寻买家|找下家|有人要|有人需要|有人想要"
        "|who needs|who wants|anyone want|anyone wants|anybody want|anyone interested|any takers"
        "|anyone need"
        "|anyone needs|if you need|if u need|if anyone needs|looking for buyers"
        "|looking for a buyer",
        _Cue(INTENT, SELL, True),
    ),
    (
        "供应|供货|提供|可提供|处理|offer|supply|supplying|有需要的|如有需要|需要的私聊|需要的联系"
        "|需要的找我|有需求|有意者",
        _Cue(INTENT, SELL),
    ),
    (
        "有货|现货|现有|还有|库存|闲置|拥有|available|avail|in stock|have|has|we have|i have|got"
        "|inventory|spot",
        _Cue(INTENT, SELL, have=True),
    ),
    # "有" alone is "there is" as often as "I have" ("有问题可以交流"): it offers only what its
    # clause names
    ("有", _Cue(INTENT, SELL, have=True, needs_object=True)),
    ("ready to ship|new in box|brand new", _Cue(INTENT, SELL, deal=SALE)),
    # --- buying ---
    (
        "收|急收|高价收|长期收|大量收|求货|急求|找|寻找|寻求|需要|急需|想要|谁有|哪里有|哪有"
        "|有多少要多少|有的私聊|有货的|有资源的|能出|能供|wtb|looking for|seeking|sourcing|need"
        "|needed|in need of|want|wanted|bid|bidding|require|requirement|rfq|procure|procuring"
        "|acquire|who has|who's got",
        _Cue(INTENT, BUY, True),
    ),
    # "Client needs 64 H100" buys; in "B200 needs liquid cooling" the GPU is the subject
    ("needs|wants|requires", _Cue(INTENT, BUY, True, subject=True)),
    (
        "求购|收购|回收|高价回收|购买|想买|买|buying|buy|looking to buy|want to buy|wanna buy"
        "|purchasing",
        _Cue(INTENT, BUY, True, SALE, True),
    ),
    (
        "求租|想租|急租|wtl|wtr|looking to rent|looking to lease|want to rent|want to lease"
        "|need to rent",
        _Cue(INTENT, BUY, True, RENT, True),
    ),
    ("求|寻|采购|需求", _Cue(INTENT, BUY)),
    ("预算|budget|target|up to|paying|pay up to", _Cue(INTENT, BUY, before=PRICE_NEXT)),
    # --- "anyone ...": the poster wants what others would offer, or offers what they want ---
    (
        "有人|有没有|有没有人|有谁|谁|哪位|哪个|哪家|anyone|anybody|any1|does anyone|is anyone"
        "|any one",
        _Cue(FLIP),
    ),
    # --- sale against rent ---
    ("租|租赁|租用|lease|rent", _Cue(DEAL, deal=RENT, deal_strong=True, rents=True)),
    (
        "短租|长租|租期|起租|机时|裸金属|leased|rental|rentals|reserved|bare metal|bare-metal"
        "|on-demand|on demand",
        _Cue(DEAL, deal=RENT, deal_strong=True),
    ),
    ("卡时", _Cue(DEAL, deal=RENT, deal_strong=True, span="hour", unit=GPU)),
    ("月租|月付|包月", _Cue(DEAL, deal=RENT, deal_strong=True, before=PRICE_NEXT, span="month")),
    ("年租|年付|包年", _Cue(DEAL, deal=RENT, deal_strong=True, before=PRICE_NEXT, span="year")),
    ("时租", _Cue(DEAL, deal=RENT, deal_strong=True, before=PRICE_NEXT, span="hour")),
    # by the day or week: a rent whose price has no unit in the contract (its price_per is null)
    (
        "日租|天租|按天租|按日租",
        _Cue(DEAL, deal=RENT, deal_strong=True, before=PRICE_NEXT, span="day"),
    ),
    ("租金", _Cue(DEAL, deal=RENT, deal_strong=True, before=PRICE_NEXT)),
    ("monthly|per month", _Cue(DEAL, deal=RENT, deal_strong=True, span="month")),
    ("hourly|per hour", _Cue(DEAL, deal=RENT, deal_strong=True, span="hour")),
    (
        "算力|capacity|compute|instances|instance|gpu cloud|year term|years term|yr term|month term"
        "|months term|mo term|minimum term|min term|term contract",
        _Cue(DEAL, deal=RENT),
    ),
    ("purchase|整机出售", _Cue(DEAL, deal=SALE, deal_strong=True)),
    (
        "二手|全新|used|提货|自提|面交|顺丰|包邮|发货|交货|pickup|pick up|shipping|ship|warehouse"
        "|仓库|delivery|warranty|保修|先款后货",
        _Cue(DEAL, deal=SALE),
    ),
    # --- what a price is for, said before it ---
    ("每月|按月", _Cue(WORD, span="month")),
    ("每年|yearly|annual|annually|per year", _Cue(WORD, span="year")),
    ("每小时", _Cue(WORD, span="hour")),
    ("每天|每日|按天|按日|per day", _Cue(WORD, span="day")),
    ("每周|按周|per week", _Cue(WORD, span="week")),
    ("每卡|单卡|按卡|每张|单张|每片|per gpu|per card", _Cue(WORD, unit=GPU)),
    ("每台|单台|每节点|per node|per server|per box", _Cue(WORD, unit=SERVER)),
    ("单价|价格|报价|售价|price|asking|只要|仅需", _Cue(WORD, before=PRICE_NEXT)),
    (
        "打包价|总价|整体价|total price|lump sum|for the lot",
        _Cue(WORD, before=PRICE_NEXT, total=True),
    ),
    ("qty|quantity|数量|数目", _Cue(WORD, before=QTY_NEXT)),
    # --- numbers after these measure something else ---
    (
        "ib|infiniband|roce|ndr|hdr|nic|ethernet|bandwidth|uplink|ram|ddr4|ddr5|ssd|nvme"
        "|storage|disk|cpu|cpus|xeon|epyc|intel|amd|platinum|tdp|power|deposit|fee|min|min."
        "|minimum|min order|moq|at least|gen|网卡|带宽|网络|以太网|光口|内存|硬盘|存储|系统盘"
        "|数据盘|至强|双路|处理器|铂金|金牌|电费|电价|功耗|电源|押金|定金|订金|保证金|运费|税点"
        "|手续费|最少|起订|最低|至少|最短|第",
        _Cue(WORD, before=IGNORE_NEXT),
    ),
    # --- not an offer: questions, about the price or anything else ---
    (
        "什么价|啥价|多少钱|价多少|价格多少|价格如何|价格怎么样|什么价格|啥价格|怎么卖|多少一"
        "|什么价位|啥价位|价位多少|大概多少|行情如何|什么行情|going for|going rate|how much"
        "|what price|what's the price|price check|selling for|renting for|leasing for|trading at"
        "|trading for",
        _Cue(QUESTION, asks_price=True),
    ),
    (
        "怎么样|如何|请问|求问|求教|请教|有懂的|知道|什么时候|靠谱吗|好不好|值不值|区别"
        "|行不行|any idea|anyone know|does anyone know|is it worth|any good|how is|how's|how are"
        "|thoughts on|what do you think|when will|what are|what is|有报价|报个价|报价吗|求报价"
        "|询价|anyone else|is it just me|how long|how many|how do|how does|how to|why|worth it"
        "|推荐下|推荐一下|求推荐|recommend|recommendation|recommendations",
        _Cue(QUESTION),
    ),
    # --- not an offer: news, gossip, market talk, vouchers, rules, warnings ---
    (
        "听说|据说|传闻|小道消息|heard|rumor|rumour|rumors|reportedly|[链接]|[link]|发布|预计"
        "|宣布|财报|禁令|出口管制|新闻|announced|announces|launched|launches|news|export control"
        "|export controls|掉到|跌到|涨到|降到|跌破|market is|market's|nobody buying"
        "|nobody is buying|no one buying|everyone selling|everyone is selling|everyone's selling"
        "|都在卖|没人买|in some places|算力券|代金券|优惠券|voucher|vouchers|coupon|free credits"
        "|free credit|群规|本群规则|规则|禁止|骗子|冒充|诈骗|scam|scammer|scammers|impersonating"
        "|impersonate|group rules|reminder|congrats|congratulations|恭喜|heads up|price cut"
        "|price cuts|prices to|cut prices|cuts prices|slashed|drop below|dropped to|drops to"
        "|fell to|price war|is selling|is dumping|are dumping|dumping|在甩|没人要|都没人|又有一家"
        "|据悉|量产|发布会|earnings|revenue|went from|dropped from|fell from|rose from"
        "|jumped from|climbed from|down from|market update|market report|market recap"
        "|market summary|price index|gpu index|rates steady|prices steady|holding steady|行情】"
        "|行情播报|行情汇总|行情速递|本周行情|行情价|成交价|banned|get banned|gets banned"
        "|be banned|spamming|spammed|fake wts|fake posts|fake listings|fake sellers"
        "|fake invoices|wts posts|wtb posts|wts post|wtb post|又降了|又涨了|又跌了|还在跌|还在涨"
        "|看到有人|模板|卖爆|大卖|发大财|新年快乐|节日快乐|happy new year|merry christmas"
        "|happy holidays|went live|thanks to everyone|thanks to all|lesson learned|ghosted"
        "|supply is|demand is|供不应求|供过于求|太卷|好卷|都有人做|都有人出",
        _Cue(VETO),
    ),
    # --- not an offer any more: the deal is done ---
    (
        "已出|已售|已租|已成交|成交了|出了|卖了|卖掉|租出去了|已经出|没货了|已下架|出完了|卖完"
        "|卖光|租满|已租满|已订走|已被订|收了|回收了|收购了|买了|购买了|采购了|租了|签了|签约了"
        "|暂时没有|暂无现货|目前没有|没货|sold|just signed|we signed|have signed|has signed"
        "|sold out|deal done|already sold|fully booked|fully leased|fully rented|fully allocated"
        "|booked out|booked up|no longer available|顺利交付|已交付|交付完成|已经交付"
        "|顺利上架|successfully delivered|just delivered|were delivered|was delivered"
        "|been delivered",
        _Cue(DONE),
    ),
    # --- words that contain a cue but mean something else ---
    (
        "出差|出来|出去|出现|出价|输出|出口|推出|支出|出错|出问题|出故障|出厂|出发|出门|收到"
        "|收益|收费|收款|收入|接收|收藏|签收|验收|收货|回收价|税收|找我|找不到|有意|所有|没有"
        "|有限|有点|只有|具有|有的|要求|求助|供需|买卖|卖家|买家|卖方|买方|售后|haven't|havent"
        "|no need|as needed|if needed|please"
        # a contract or report issued; a supplier; "has been"; a price below the market's
        "|出合同|出方案|出结果|出报告|收盘|收官|收工|清关|customs clearance|供应商|供货商|供应链"
        "|提供商|服务商|运营商|代理商|has been|have been|has had|have had|had been"
        "|we have been|we've been|i have been|i've been|have experience|has experience"
        "|any experience|have you tried|have you used|have tried|have used|anyone tried"
        "|anyone used|低于行情价|hk$",
        _Cue(WORD),
    ),
    # --- money named apart from a price ("U 结算", "pay in USDT") ---
    ("usd|usdt|美金|美元|u结算|u 结算|付u|us dollars", _Cue(MONEY, value=USD)),
    ("rmb|cny|人民币", _Cue(MONEY, value=CNY)),
)

# English number words, counted like digits ("one HGX B200 server").
_NUMBER_WORDS: Final = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "a single": 1,
}

# How long the GPUs are wanted, without digits ("for a month", "用半年"): a lease, so a rental,
# like "for 2 weeks". A warranty's term is not one ("warranty for a year").
_LEASE_LEADS: Final = _words("for a|for an|for a few|for a couple of|for several|for the next")
_LEASE_UNITS: Final = ("hour", "day", "week", "month", "quarter", "year")
_LEASE_LEADS_ZH: Final = ("用",)
_LEASE_COUNTS_ZH: Final = tuple("一两二三四五六七八九十半几")
_LEASE_UNITS_ZH: Final = ("个月", "个多月", "周", "个星期", "星期", "天", "年")
_WARRANTY_WORDS: Final = ("warranty", "保修", "质保")


def _lease_phrases() -> list[str]:
    english = [
        f"{lead} {unit}{plural}"
        for lead in _LEASE_LEADS
        for unit in _LEASE_UNITS
        for plural in ("", "s")
    ]
    chinese = [
        lead + count + unit
        for lead in _LEASE_LEADS_ZH
        for count in _LEASE_COUNTS_ZH
        for unit in _LEASE_UNITS_ZH
    ]
    return english + chinese


# How a keyword's edges are checked: not at all (Chinese), as an English word (bit flags: its
# first or last character is a letter or digit, so the character beside it must not be one), as
# a model name (`h100s`, `8xh100`), as a form factor (`h100sxm`), or as an upper-case code
# (`LA`, `HK`). A place that starts with a counter is no place right after a number ("5张北京" is
# five cards in Beijing, not 张北 and 京). A silent keyword (收到) is only there to hide a shorter
# one inside it (收), and is dropped at once.
NO_CHECK: Final = 0
WORD_START: Final = 1
WORD_END: Final = 2
WORD_CHECK: Final = 3
MODEL_CHECK: Final = 4
VARIANT_CHECK: Final = 5
CASED: Final = 6
COUNTED: Final = 7
SILENT: Final = 8
AFTER: Final = 9

# Single characters that a word before them turns into something else: 出 in 寄出 (sent) or 提出
# (raised), 收 in 交收 (settlement), 有 in 会有 (there will be). Checked on the character before
# the keyword rather than listed as longer keywords, which would add to the automaton's root.
_VOIDED_AFTER: Final = {"出": "寄做列指给拿退提发付", "收": "交秋", "有": "会", "有货": "会"}

# What the scan does with a cue it keeps (bit flags): list it for the surveys of intent, deal,
# place and so on; note a model; blank it in the copy the number scan reads (models, variants,
# places, number words); note that it bears on the number after it; note a money or a question
# word; or drop the message (news, gossip, vouchers).
LIST: Final = 1
NOTE_MODEL: Final = 2
BLANK: Final = 4
HINT: Final = 8
NOTE_MONEY: Final = 16
NOTE_QUESTION: Final = 32
DROP: Final = 64

# Model, variant and place names blanked for the number scan: `4090` is not a number, and 天津
# does not start with a day (天).
_MODEL_MARK: Final = "\x01"
_VARIANT_MARK: Final = "\x02"
_PLACE_MARK: Final = "\x03"
_COUNTER_CHARS: Final = frozenset("台张卡片块颗套")

# key -> (length, cue, edge check, what to keep, its blank, its upper-case spelling)
_Entry = tuple[int, _Cue, int, int, "str | None", "str | None"]


def _entry(key: str, cue: _Cue, check: int, cased: str | None = None) -> _Entry:
    """A keyword's automaton entry, with everything the scan needs worked out in advance."""
    kind = cue.kind
    if kind == WORD and not cue.hints:
        check = SILENT
    elif cased is not None:
        check = CASED
    elif kind == PLACE and key[0] in _COUNTER_CHARS:
        check = COUNTED
    elif key in _VOIDED_AFTER:
        check, cased = AFTER, _VOIDED_AFTER[key]  # the characters before it that void it
    elif check == WORD_CHECK:
        starts, ends = key[0] in ASCII_ALNUM, key[-1] in ASCII_ALNUM
        check = (WORD_START if starts else 0) | (WORD_END if ends else 0)
    blank = None
    surveyed = kind in _SURVEYED or cue.deal is not None or cue.span is not None or cue.asks_price
    keep = (LIST if surveyed else 0) | (HINT if cue.hints else 0)
    if kind == MODEL:
        keep, blank = NOTE_MODEL, _MODEL_MARK * len(key)
    elif kind == VARIANT:
        keep, blank = keep | BLANK, _VARIANT_MARK * len(key)
    elif kind == PLACE:
        keep, blank = keep | BLANK, _PLACE_MARK * len(key)
    elif kind == NUMWORD:
        keep, blank = BLANK, str(cue.value).ljust(len(key))
    elif kind == MONEY:
        keep |= NOTE_MONEY
    elif kind == QUESTION:
        keep |= NOTE_QUESTION
    elif kind == VETO:
        keep = DROP
    return len(key), cue, check, keep, blank, cased


# The kinds of cue that `_survey` reads (besides any cue that names a deal or a price span).
_SURVEYED: Final = frozenset({INTENT, PLACE, FLIP, VARIANT, DONE, MONEY, LEASE})


def _build_automaton() -> ahocorasick.Automaton:
    """All dictionary look-ups in one automaton: key -> `_Entry`."""
    entries: dict[str, _Entry] = {}

    def add(key: str, cue: _Cue, check: int, cased: str | None = None) -> None:
        hints = bool(cue.before or cue.span or cue.unit) or (
            cue.kind == VARIANT and cue.value == "PCIe"  # "PCIe 5.0" is a bus version
        )
        cue = replace(cue, hints=hints, vetoes=bool(cue.before & (IGNORE_NEXT | QTY_NEXT)))
        if key in entries and entries[key][1] != cue:
            raise ValueError(f"keyword {key!r} has two meanings")
        entries[key] = _entry(key, cue, check, cased)

    for alias, query in catalog.ALIASES.items():
        add(alias, _Cue(MODEL, value=query), MODEL_CHECK)
    for alias, variant in catalog.VARIANT_ALIASES.items():
        add(alias, _Cue(VARIANT, value=variant), VARIANT_CHECK)
    for alias, name in places.ALIASES.items():
        add(alias, _Cue(PLACE, value=name), WORD_CHECK)
    for alias, name in places.CASED_ALIASES.items():
        add(alias.lower(), _Cue(PLACE, value=name), WORD_CHECK, alias)
    for spellings, cue in _KEYWORDS:
        for key in _words(spellings):
            add(key, cue, WORD_CHECK)
    for word, number in _NUMBER_WORDS.items():
        add(word, _Cue(NUMWORD, value=number), WORD_CHECK)
    warranty = entries["warranty"][1]
    for phrase in _lease_phrases():
        add(phrase, _Cue(LEASE), WORD_CHECK)
        for word in _WARRANTY_WORDS:  # the longer keyword hides the lease inside it
            add(f"{word} {phrase}" if phrase.isascii() else word + phrase, warranty, WORD_CHECK)

    # The automaton looks a character up among a node's children one by one, and the root has
    # hundreds. Spaces, digits, punctuation and Latin letters are most of a post, so they go
    # first, each given a node of its own when no keyword starts with it: a dead end (no text
    # holds an upper-case "A" once lower-cased) that is found at once instead of after a scan
    # of the whole root.
    firsts = {key[0] for key in entries}
    for char in _COMMON_CHARS:
        if char not in firsts:
            entries[char + "A"] = _entry(char + "A", _Cue(WORD), NO_CHECK)
    rank = {char: i for i, char in enumerate(_COMMON_CHARS)}
    automaton = ahocorasick.Automaton()
    for key in sorted(entries, key=lambda key: rank.get(key[0], len(rank))):
        automaton.add_word(key, entries[key])
    automaton.make_automaton()
    return automaton


# Characters in rough order of how often trade posts use them: spaces, digits, punctuation and
# Latin letters, then the counters, units and trade words of Chinese posts.
_COMMON_CHARS: Final = (
    " 0123456789\n,./:-$()@#*+=~%&!?;'\"etaoinsrhldcumfpgwybvkxjqz"
    "台卡张万元月租出收价格机服务器整现货时年片块套节点小"
)


_AUTOMATON: Final = _build_automaton()

# A cue found in the text: (start, end, cue).
_Hit = tuple[int, int, _Cue]

# =============================================================================================
# Numbers: one token per number, classified from its own marks and the words around it.
# =============================================================================================

# Roles a number can play.
(
    PRICE,  # a price (value already multiplied out)
    GPUS,  # a count of GPUs: 100张, 64 GPUs, 300 pcs
    SERVERS,  # a count of servers: 10台, 4 nodes
    CARDS,  # N卡: GPUs per server next to a server count, else a count of GPUs
    PER_SERVER,  # GPUs per server: 8卡整机, 8-GPU, (8x each)
    MEMORY,  # memory per GPU: 80G
    X_MODEL,  # a count right before a model: 64x H100, 512 H100
    X_THING,  # a count of some other thing: "3 x Supermicro ... (8x H100)"
    KUAI,  # N块: cards or yuan, decided by what else the item says
    BARE,  # a number with no marks; a price in a price list ("H100 1.70")
    QTY,  # qty 10
    DURATION,  # "for 2 weeks", "用3个月": how long the GPUs are wanted, so a rental
) = range(12)

# Unit words after a price ("/GPU/hr", "/台/月", " per node per month", "一张", " each") and what
# each one says: per GPU or per server, and per hour, month or year.
_UNIT_MEANINGS: Final[dict[str, tuple[QuantityUnit | None, str | None]]] = {}
for _spellings, _meaning in (
    ("卡时|卡小时|gpuhr|gpuhrs|gpuhour|gpuhours|gpuh", (GPU, "hour")),
    ("个月|月|month|months|mo|mos|mth", (None, "month")),
    ("年|year|years|yr|yrs|annum", (None, "year")),
    ("小时|时|hour|hours|hr|hrs|h", (None, "hour")),
    ("天|日|day|days", (None, "day")),  # by the day or week: no contract unit
    ("周|week|weeks|wk|wks", (None, "week")),
    ("卡|张|片|块|颗|gpu|gpus|card|cards|pc|pcs|piece|pieces|npu|npus", (GPU, None)),
    (
        "台|节点|整机|node|nodes|server|servers|box|boxes|machine|machines|system|systems",
        (SERVER, None),
    ),
):
    _UNIT_MEANINGS.update(dict.fromkeys(_words(_spellings), _meaning))
# "each", "per unit": per whatever the post counts.
_UNIT_MEANINGS.update(dict.fromkeys(("each", "ea", "ea.", "apiece", "unit", "units"), (None, None)))
_UNIT_WORD: Final = (
    r"(?:each|ea\.?|apiece|卡时|卡小时|gpu[\s-]?h(?:ou)?rs?|gpu[\s-]?h|个月|月|months?|mos?|mth"
    r"|年|years?|yrs?|annum|小时|时|hours?|hrs?|h|天|日|days?|周|weeks?|wks?|卡|张|片|块|颗|gpus?"
    r"|cards?|pcs?|pieces?|npus?"
    r"|台|节点|整机|nodes?|servers?|box(?:es)?|machines?|systems?|units?)(?![a-z])"
)
_UNIT_WORDS: Final = re.compile(_UNIT_WORD)
_PER_SEPARATOR: Final = r"(?:/|per\s+|a\s+(?=[a-z])|每\s*|一(?=[台张卡块片]))"
_EACH: Final = r"(?:each|ea\.?|apiece)(?![a-z])"

# One number, read at its first digit: the value (and the low end of a range), a multiplier
# (w/万/k), "+" and a currency; then the units of a price, a counter, or a distractor unit.
# Every number goes through this, so it is written for the regex engine: an optional part is
# `(?:X|)` rather than `(?:X)?` (same match, without the engine's costlier repeat), and a
# lookahead skips a part, or all four after the digits, where it cannot start.
_VALUE: Final = (
    r"(?P<num>\d(?:(?=\d{0,2},)\d{0,2}(?:,\d{3})+(?!\d)|\d*(?:\.\d+)?))"
    r"(?:(?=\s?[-~～到至百万亿千wkm+元块rcu美人刀$e欧港新])"
    r"(?:(?P<range>\s?[-~～到至]\s?\d{1,4}(?:\.\d+)?(?![\d.]))|)"  # "200-250w": the low end counts
    r"(?:\s?(?P<mult>百万|万|亿|千|w(?![a-z])(?!/\s)|k(?![a-z])|m(?![a-z])|mn(?![a-z])"
    r"|million(?![a-z]))(?:(?<=[w万])(?P<tail>\d)(?![\d.,]|\s*+[卡台张片块颗套节])|)|)(?:(?P<plus>\+)|)"
    r"(?:\s?(?P<cur>元|块|rmb|cny|usdt|usd|美元|美金|人民币|刀|u(?![a-z])|\$(?!\s?\d)|eur(?![a-z])"
    r"|欧元|港币|港元|新币|新元)|)|)"
)
_PRICE_UNITS: Final = (
    r"(?=\s*+[/pa每一e])(?P<per>(?:\s*+" + _PER_SEPARATOR + r"\s*+" + _UNIT_WORD + r")+"
    r"(?:\s*" + _EACH + r"|)|\s*+" + _EACH + r")"
)
# Counters come before the distractors (they are the common case); each one refuses what a
# distractor claims: 卡时 is card-hours, "8卡起" a minimum order, "64G内存" RAM. The lookahead
# holds the first characters of all of them.
_COUNTERS: Final = (
    r"\s*+(?=[gcnx卡张片颗p台节套sbmh\-×*ailr现u])(?:"
    r"(?P<each>(?:gpus?|cards?|npus?|卡|x)\s*(?:each|apiece|/\s*(?:node|server|box|台|机)"
    r"|per\s+(?:node|server|box|machine)|每台))"
    r"|(?P<card>卡)(?!时|小时)(?!\s*起(?!价|租\s*\d|租期))(?:(?P<cardbox>\s*(?:整机|服务器|机器"
    r"|主机|机|servers?|nodes?|box(?:es)?|节点)(?![a-z]))|)"
    r"|(?P<gpu>张|片|颗|pcs?|pieces?|cards?|gpus?|npus?)(?![a-z])(?!\s*起(?!价|租\s*\d|租期))"
    r"|(?P<server>台|节点|套|nodes?|servers?|box(?:es)?|machines?|hosts?)(?![a-z])"
    r"(?!\s*起(?!价|租\s*\d|租期))"
    r"|(?P<dash>-\s*(?:gpus?|cards?|npus?|way))(?![a-z])"
    r"|(?P<units>units?)(?![a-z])"
    r"|(?P<x>[x×*])"
    r"|(?P<mem>gb?)(?![a-z0-9])(?!/s|\s*(?:内存|ram|ddr|ssd|nvme|硬盘|存储|disk|ib|infiniband|roce"
    r"|网卡|网络|以太网|带宽|ethernet|nic))"
    r"|(?P<avail>available|avail|in stock|left|remaining|现货)(?![a-z])"
    r")"
)
# Dates, durations, times, percentages, power, network speeds, disks, RAM, CPU models, minimum
# orders ("8卡起") and voucher card-hours are neither counts nor prices. The lookahead holds the
# first characters of all of them.
_DISTRACTORS: Final = (
    r"(?P<skip>\s*+(?=[a-z个月年周天日号小点%度核线路岁分:\-/.卡张台片起功电内硬系数存])"
    r"(?:个多?月|月(?!租|付)|年(?!租|付)|周|天|日|号|个?小时|点|%|度|核|线程|路|岁"
    r"|分钟|:\d|[a-z]{1,2}\+|[-/.]\d{1,2}[-/.]\d|-\d{5,}|/\s*(?:度|kwh)"
    r"|-?\s*(?:months?|mos?|mths?|years?|yrs?|weeks?|wks?|days?|hours?|hrs?|mins?|minutes?"
    r"|am|pm)(?![a-z])|t(?:b|bps)?(?![a-z0-9])|[gm]bps|gb/s"
    r"|[gm]b?\s*(?:ib|infiniband|roce|网卡|网络|以太网|带宽|ethernet|nic)(?![a-z])"
    r"|g?b?\s*(?:内存|ram|ddr\d?|ssd|nvme|硬盘|系统盘|数据盘|存储|disk|hdd)(?![a-z])|kw|mw"
    r"|卡时|卡小时|tdp|功耗|电源|psu|[卡张台片]?\s*起(?!价|租\s*\d|租期)))"
)
# re.ASCII: \d and \s mean ASCII digits and spaces (the text is NFKC-normalised already).
_TOKEN: Final = re.compile(
    _VALUE + "(?:" + _PRICE_UNITS + "|" + _COUNTERS + "|" + _DISTRACTORS + "|)", re.ASCII
)
_NUM: Final = _TOKEN.groupindex["num"]
_MULT: Final = _TOKEN.groupindex["mult"]
_PLUS: Final = _TOKEN.groupindex["plus"]
_CUR: Final = _TOKEN.groupindex["cur"]
_TAIL: Final = _TOKEN.groupindex["tail"]
_GLUED_RUN: Final = re.compile(r"[0-9a-z_.]*")  # the rest of a product code such as nf5688
_PHONE_RUN: Final = re.compile(r"[\d\s-]*")
_MOBILE_TAIL: Final = re.compile(r"[\s-]?\d{4}[\s-]?\d{4}(?!\d)")  # 139 0000 1234
_NETWORK_TAIL: Final = re.compile(r"\s*+[gmt]?b?(?:ps)?\s*+[x×*]\s*+\d+")  # the "×8" of "IB 400G×8"
_DURATION: Final = re.compile(
    r"\s*-?\s*(?:个多?月|周|天|星期|年|months?|weeks?|days?|years?|yrs?|mos?)"
)
_FOR_BEFORE: Final = re.compile(
    r"(?:(?<![a-z])(?<!warranty )for(?:\s+(?:a|about|around|another))?|用)\s*$"
)
_YEAR_BEFORE: Final = re.compile(
    r"(?:q[1-4]|in|by|since|from|until|till|before|after|early|late)\s*$"
)
# Currencies of the contract, and others (euros, Hong Kong or Singapore dollars) whose prices
# are read but given no currency; each other one is listed with the contract currency whose
# scale it is near, for telling a price per GPU from one per server.
_FOREIGN: Final = {
    **dict.fromkeys(("€", "eur", "欧元", "£", "gbp", "s$", "sgd", "新币", "新元"), USD),
    **dict.fromkeys(("a$", "au$", "aud", "c$", "ca$", "cad"), USD),
    **dict.fromkeys(("hk$", "hkd", "港币", "港元", "nt$", "twd"), CNY),
}
# Any of those currencies named in a text (letter codes as whole words): `names_foreign_money`.
_FOREIGN_MONEY: Final = re.compile(
    "|".join(
        re.escape(mark) + (r"(?![a-z])" if mark[-1].isalpha() and mark.isascii() else "")
        for mark in sorted(_FOREIGN, key=len, reverse=True)
    )
)
_CURRENCY_PREFIXES: Final = tuple(
    sorted(
        ("us$", "$", "¥", "usd", "rmb", "cny", "人民币", "美金", "美元", *_FOREIGN),
        key=len,
        reverse=True,  # "hk$" before "$"
    )
)
_USD_MARKS: Final = frozenset({"$", "us$", "usd", "usdt", "美元", "美金", "u", "刀"})
_MULTIPLIERS: Final = {
    "万": 10_000,
    "w": 10_000,
    "亿": 100_000_000,
    "千": 1_000,
    "百万": 1_000_000,
    "k": 1_000,
    "m": 1_000_000,
    "mn": 1_000_000,
    "million": 1_000_000,
}
_CJK_MULTIPLIERS: Final = frozenset({"万", "w", "亿", "千", "百万"})
_MILLIONS: Final = frozenset({"m", "mn", "million"})
_GENERATIONS: Final = frozenset({"3", "4", "5", "6", "3.0", "4.0", "5.0", "6.0"})  # PCIe 5.0

# After a price: it is for everything counted ("$1.2M total", "1.2亿打包").
_TOTAL_AFTER: Final = re.compile(r"\s*+(?:in total|total|for the lot|打包|总价)(?![a-z])")
# "8x80GB": eight GPUs of 80 GB each (a DIMM count such as "4x8G" or "16x64GB" is not one).
_X_MEMORY: Final = re.compile(
    r"\s*+(?:16|24|32|40|48|80|94|96|141|144|180|192|288)\s*+gb?(?![a-z0-9])"
    r"(?!\s*(?:内存|ram|ddr|ssd|nvme|硬盘|存储|disk|hdd))"
)
_FEW_BEFORE_X: Final = re.compile(r"(?<![\d.,])(?:[1-9]|10)\s*$")
_AFTER_X: Final = re.compile(
    r"\s*+(?:(?P<each>each|apiece)|(?P<close>\))|(?P<model>[\x02\s]*+\x01)"
    r"|(?P<cpu>epyc|xeon|intel|amd|cpu|至强|铂金|金牌|platinum|gold|\d{4}(?![\d,])))"
)
_BEFORE_MODEL: Final = re.compile(r"[\s\x02]*+\x01")
_BEFORE_COUNT: Final = re.compile(r"\s+\d+\s*(?:[x×*]|-\s*gpu|卡)")  # "one 8x RTX 4090 box"
_SERVER_BEFORE_X: Final = re.compile(
    r"(?:servers?|nodes?|box(?:es)?|machines?|整机|服务器|机器|主机|台|节点|\d\s*卡"
    r"|\d\s*-\s*(?:gpus?|cards?|way)|(?:each|apiece|gpus?|cards?|npus?|卡)\s*\))\s*[,，]?\s*$"
)
_MODEL_BEFORE: Final = re.compile(r"\x01[\x02\s]*+$")  # "H100 8x": right after a model name
_MODEL_NEXT: Final = re.compile(r"[ \t\x02]*+\x01")  # a model name next, on the same line
_NUMBER_NEXT: Final = re.compile(r"\s*+\d")
# A server noun right after the model: "HGX H100 servers", "8x H100 node".
_SERVER_AFTER_MODEL: Final = re.compile(
    r"[\x01\x02\s-]*+(?:\d+\s*+gb?\s*+)?[\x02\s]*+(?:(?P<plural>servers|nodes|boxes|machines|systems"
    r"|boards)|(?P<single>server|node|box|machine|system|board|整机|服务器|机器|主机|节点))(?![a-z])"
)
_SYSTEM_WORD: Final = re.compile(r"hgx|dgx")
_CN_NUMERAL_CHARS: Final = "一二两三四五六七八九十百千万"
_CN_NUMERALS: Final = re.compile(f"[{_CN_NUMERAL_CHARS}]+")
_CN_COUNTER: Final = re.compile(r"\s*+(台|张|卡(?!时)|片|块|套|节点)")
_CN_NOT_A_COUNT: Final = frozenset("数几多上每单第")
_CN_VAGUE: Final = frozenset("数几多上")
# A price in Chinese numerals ends in 万, 千 or 百, or comes before 元 (月租五万, 三千元).
_CN_PRICE_HINT: Final = re.compile(r"[一二两三四五六七八九十百千万][万千百元]")
_CN_PRICE_TAIL: Final = re.compile(
    r"\s*+(?P<yuan>元|块钱|)(?P<per>(?:\s*+(?:/|每|一(?=[台张卡块片]))\s*+(?:台|张|卡|片|块|个?月|年|天"
    r"|小时|时|周))*+)"
)
_CN_DIGITS: Final = dict(zip("一二两三四五六七八九", (1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
_CN_UNITS: Final = {"十": 10, "百": 100, "千": 1000, "万": 10_000}


# The parser's small records are plain classes with an `__init__` of their own, not dataclasses:
# when the parser is compiled (setup.py), a written `__init__` is compiled, a generated one is not.


class _Num:
    """One number in the text and the role it plays."""

    __slots__ = (
        *("chinese", "currency", "each", "end", "foreign", "paren", "plural", "role"),
        *("server_after", "span", "start", "total", "unit", "value"),
    )

    def __init__(
        self,
        start: int,
        end: int,
        role: int,
        value: Decimal | int,
        unit: QuantityUnit | None = None,
        span: str | None = None,
        currency: Currency | None = None,
        chinese: bool | None = None,
        each: bool = False,
        plural: bool = False,
        server_after: bool = False,
        paren: bool = False,
    ) -> None:
        self.start = start
        self.end = end
        self.role = role
        self.value = value  # Decimal for prices and bare decimals, int for counts
        self.unit = unit  # prices: what one price buys
        self.span = span  # prices: hour / month / year
        self.currency = currency  # prices: stated currency (or implied by 万/w)
        self.chinese = chinese  # prices: units written in Chinese (元/卡时, /台)
        self.each = each  # prices: "each", i.e. per whatever is counted
        self.plural = plural  # model counts: "8x H100 nodes" rather than "8x H100 node"
        self.server_after = server_after  # model counts: a server noun follows the model
        self.paren = paren  # counts: in brackets, "(8 GPUs)"
        self.foreign: Currency | None = None  # prices: in another currency, near this one's scale
        self.total = False  # prices: for everything counted ("打包价 1.2亿", "$1.2M total")

    def __repr__(self) -> str:
        return f"_Num({self.start}, {self.end}, role={self.role}, value={self.value!r})"


class _Context:
    """What the cues just before a number say about it."""

    __slots__ = ("chinese", "generation", "ignore", "price", "qty", "span", "total", "unit")

    def __init__(
        self,
        ignore: bool = False,
        price: bool = False,
        qty: bool = False,
        span: str | None = None,
        unit: QuantityUnit | None = None,
        chinese: bool = False,
        generation: bool = False,
        total: bool = False,
    ) -> None:
        self.ignore = ignore
        self.price = price
        self.qty = qty
        self.span = span
        self.unit = unit
        self.chinese = chinese
        self.generation = generation  # right after "PCIe": a bus version
        self.total = total  # right after "打包价", "total price": the price of everything


_NO_CONTEXT: Final = _Context()
# The token kinds (its last group) with no counter after the number, and with one.
_BARE_KINDS: Final = frozenset(("num", "range", "mult", "plus", "per"))
_COUNTER_KINDS: Final = frozenset(
    ("each", "card", "cardbox", "gpu", "server", "dash", "mem", "avail", "units")
)
_CLAUSE_MARK: Final = re.compile(r"[,，;。\n!?]")
# The currency prefixes by their last character.
_PREFIXES_ENDING: Final = {
    last: tuple(p for p in _CURRENCY_PREFIXES if p.endswith(last))
    for last in {p[-1] for p in _CURRENCY_PREFIXES}
}
# The longer ones by their last two characters ("s$": "us$", "s$"), the single ones alone: most
# "$" have a space before them, and need one look instead of one per dollar prefix.
_PREFIXES_ENDING2: Final = {
    tail: tuple(p for p in _CURRENCY_PREFIXES if len(p) > 1 and p.endswith(tail))
    for tail in {p[-2:] for p in _CURRENCY_PREFIXES if len(p) > 1}
}
_SINGLE_PREFIXES: Final = frozenset(p for p in _CURRENCY_PREFIXES if len(p) == 1)
# Characters before a number that need no further look (most Chinese, brackets, punctuation).
_GLUE: Final = ASCII_ALNUM | frozenset("_.")  # characters that make a number part of a product code
_PLAIN_BEFORE: Final = frozenset(" \n\t,，:：;(（)）[]【】/、~\x01\x02\x03租价约为是共有收出")


_Units = tuple[QuantityUnit | None, str | None, bool, bool]


def _read_units(per: str) -> _Units:
    """What the unit words after a price say: (per GPU or server, per hour/month/year, "each",
    written in Chinese)."""
    unit: QuantityUnit | None = None
    span: str | None = None
    each = chinese = False
    for word in _UNIT_WORDS.findall(per):
        word_unit, word_span = _UNIT_MEANINGS[word.replace(" ", "").replace("-", "")]
        unit = unit or word_unit
        span = span or word_span
        each = each or (word_unit is None and word_span is None)
        chinese = chinese or not word.isascii()
    return unit, span, each, chinese


def _unit_spellings() -> dict[str, _Units]:
    """The usual ways of writing the units after a price (`/台`, `/gpu/hr`, ` per node per
    month`, ` each`), each read once."""
    words = list(_UNIT_MEANINGS)
    counted = [word for word in words if _UNIT_MEANINGS[word][1] is None]
    timed = [word for word in words if _UNIT_MEANINGS[word][1] is not None]
    spellings = [sep + word for sep in ("/", " per ", "per ", "每", "一", " ") for word in words]
    for first, second in ((counted, timed), (timed, counted)):
        for sep, then in (("/", "/"), (" per ", " per "), ("/", " per ")):
            spellings += [sep + a + then + b for a in first for b in second]
    return {spelling: _read_units(spelling) for spelling in spellings}


_UNIT_SPELLINGS: Final = _unit_spellings()


def _amount(plain: str, mult: str | None) -> Decimal:
    """A price's digits (`7.5`) times its multiplier (`w`), as `_whole` writes it; exact whole
    amounts are worked out in integers, the rest in Decimal."""
    if mult is None:
        return Decimal(int(plain)) if "." not in plain else _whole(Decimal(plain))
    factor = _MULTIPLIERS[mult]
    if len(plain) <= 15:
        if "." not in plain:
            return Decimal(int(plain) * factor)
        whole, _, fraction = plain.partition(".")
        amount, rest = divmod(int(whole + fraction) * factor, 10 ** len(fraction))
        if not rest:
            return Decimal(amount)
    return _whole(Decimal(plain) * factor)


def _is_cpu_model(digits: str, kind: str | None) -> bool:
    """8480+, 6430+: four digits and a plus with no unit; round numbers (1000+) are counts."""
    return len(digits) == 4 and kind == "plus" and not digits.endswith("00")


def _whole(value: Decimal) -> Decimal:
    """75000.0 -> 75000 and 1.70 -> 1.7, so the contract's numbers stay tidy."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _chinese_number(text: str) -> int | None:
    """两 -> 2, 十 -> 10, 二十 -> 20, 两百 -> 200, 千 -> 1000, 万 -> 10,000; a last digit
    counts in the unit below the one before it (一万八 -> 18,000, 三千五 -> 3,500); None for "两三"
    and the like."""
    total, section, digit, last = 0, 0, None, 10
    for char in text:
        if char in _CN_DIGITS:
            if digit is not None:
                return None
            digit = _CN_DIGITS[char]
        else:
            unit = _CN_UNITS[char]
            if unit == 10_000:
                total = ((total + section + (digit or 0)) or 1) * unit  # 万卡 is 10,000
                section = 0
            else:
                section += (1 if digit is None else digit) * unit
            digit = None
            last = unit
    return total + section + (digit or 0) * (last // 10)


class _Scanner:
    """Reads every number of one message, in text order (the number reading of `_Message`)."""

    __slots__ = ()
    low: str
    marked: str
    hints: list[_Hit]  # only cues that say something about the next number (IB, 月租, 每卡...)
    hint_ends: list[int]
    vetoes: bool  # whether any of those can veto a count ("IB 400G", "min order 8 GPUs")
    totals: bool  # whether a price may be followed by "total" or "打包"

    def scan(self) -> list[_Num]:
        numbers: list[_Num] = []
        marked = self.marked
        # One regex scanner carries on where the last number ended; it is set up again only
        # when a number asks to go on elsewhere (after a phone number, or inside a product code).
        search = _TOKEN.scanner(marked).search  # type: ignore[attr-defined]
        while (token := search()) is not None:
            num, pos = self._read(token.start(), token)
            if num is not None:
                numbers.append(num)
            if pos != token.end():
                search = _TOKEN.scanner(marked, pos).search  # type: ignore[attr-defined]
        low = self.low
        if (
            "台" in low
            or "张" in low
            or "卡" in low
            or "片" in low
            or "套" in low
            or (("万" in low or "千" in low or "元" in low) and _CN_PRICE_HINT.search(low))
        ):
            self._add_chinese_counts(numbers)
        return numbers

    def _read(self, start: int, token: re.Match[str]) -> tuple[_Num | None, int]:
        """One number: (its reading or None, where to continue scanning)."""
        kind = token.lastgroup  # which suffix matched: "per", "skip", "card", "gpu", ... or none
        end = token.end()
        if kind == "skip":
            if _DURATION.match(token.group("skip")) and _FOR_BEFORE.search(
                self.marked, max(0, start - 12), start
            ):
                return _Num(start, end, DURATION, 0), end
            return None, end
        marked = self.marked
        lead, prefix, after_x = start, None, False
        j = start
        prev = marked[j - 1] if j else "\n"  # the start of the text is like a line break
        if prev == " ":
            j -= 1
            while j and marked[j - 1] == " ":
                j -= 1
            prev = marked[j - 1] if j else "\n"
        if prev not in _PLAIN_BEFORE:
            if prev in _PREFIXES_ENDING:
                longer = _PREFIXES_ENDING2.get(marked[j - 2 : j]) if j > 1 else None
                if longer is not None:
                    for p in longer:
                        if marked.startswith(p, j - len(p)):
                            prefix = p
                            lead = j - len(p)
                            break
                if prefix is None and prev in _SINGLE_PREFIXES:
                    prefix = prev
                    lead = j - 1
            elif prev in "x×*" and not (j > 1 and marked[j - 2] in ASCII_ALPHA):
                lead, after_x = j - 1, True
            if prefix is None and not after_x and j == start:
                if prev == "+":  # an international phone number
                    return None, _PHONE_RUN.match(marked, start).end()  # type: ignore[union-attr]
                if prev in _GLUE or (prev == "-" and j > 1 and marked[j - 2] in ASCII_ALPHA):
                    # part of a product code: NF5688, SYS-821GE
                    return None, _GLUED_RUN.match(marked, start).end()  # type: ignore[union-attr]

        digits, mult, plus, cur, tail = token.group(_NUM, _MULT, _PLUS, _CUR, _TAIL)
        if tail is not None and "." not in digits:
            digits = digits + "." + tail  # "1w8" is 1.8w, 18,000
        counter = kind in _COUNTER_KINDS
        if (
            counter
            and not self.vetoes
            and mult is cur is plus is None
            and len(digits) < 9
            and digits.isdigit()
        ):
            # The common case ("8卡", "10台", "100张", "80G"): a whole number and its counter.
            value = int(digits)
            if not value:
                return None, end
            return self._count(lead, token, kind, value, after_x, _NO_CONTEXT), end
        plain = digits.replace(",", "") if "," in digits else digits
        if len(plain) >= 9 and "." not in plain:
            return None, end  # phone numbers and account numbers
        if plus and _is_cpu_model(plain, kind) and not _BEFORE_MODEL.match(marked, end):
            return None, end  # a CPU model such as 8480+; "1000+ GPUs" is a count
        if len(plain) == 3 and plain[0] == "1" and plain[1] in "3456789":
            tail = _MOBILE_TAIL.match(marked, token.end("num"))
            if tail is not None:
                return None, tail.end()
        if not self.hint_ends or (counter and not self.vetoes):
            context = _NO_CONTEXT
        else:
            context = self._context(lead)
        if context.ignore or (context.generation and plain in _GENERATIONS and kind == "num"):
            tail = _NETWORK_TAIL.match(marked, token.end("num"))
            return None, max(end, tail.end() if tail else end)
        if (
            len(plain) == 4
            and plain.startswith("20")
            and mult is None
            and (
                _YEAR_BEFORE.search(marked, max(0, lead - 8), lead) or marked.startswith("年", end)
            )
        ):
            return None, end  # "Q1 2026", "2025年": a year

        if cur == "u" and mult is None and kind != "per" and plain.isdigit() and int(plain) <= 10:
            return None, end  # a 4U chassis, not 4 USDT
        if not after_x and (
            prefix is not None
            or mult is not None
            or cur is not None
            or kind == "per"
            or context.price
        ):
            price = self._price(lead, token, kind, plain, mult, cur, prefix, context)
            if price is not None:
                return price, end
        if mult is not None:
            if mult in _MILLIONS:
                return None, end
            scaled = Decimal(plain) * _MULTIPLIERS[mult]
            if scaled != scaled.to_integral_value():
                return None, end
            plain = str(int(scaled))  # "1k GPUs" counts a thousand
        if "." in plain:
            if after_x or cur == "块":
                return None, end
            return _Num(lead, end, BARE, Decimal(plain)), end  # maybe a price in a price list
        value = int(plain)
        if value <= 0:
            return None, end
        if cur == "块":
            return _Num(lead, end, KUAI, value), end
        return self._count(lead, token, kind, value, after_x, context), end

    def _context(self, lead: int) -> _Context:
        """The cues just before a number (same clause, within a dozen characters)."""
        cue_ends = self.hint_ends
        i = bisect_right(cue_ends, lead) - 1
        if i < 0 or cue_ends[i] < lead - 14:
            return _NO_CONTEXT
        hits, low = self.hints, self.low
        ignore = price = qty = chinese = generation = total = False
        span: str | None = None
        unit: QuantityUnit | None = None
        first = True
        while i >= 0:
            hit_start, hit_end, cue = hits[i]
            if hit_end < lead - 14:
                break
            gap = low[hit_end:lead]
            if gap and _CLAUSE_MARK.search(gap):
                if first:
                    return _NO_CONTEXT  # the cue is in another clause
                break
            if first and not gap.strip(" :=\t"):
                before = cue.before
                ignore = bool(before & IGNORE_NEXT)
                price = bool(before & PRICE_NEXT)
                qty = bool(before & QTY_NEXT)
                generation = cue.kind == VARIANT and cue.value == "PCIe"
                total = cue.total
            if cue.span is not None and span is None:
                span = cue.span
                chinese = not low[hit_start].isascii()
            if cue.unit is not None and unit is None:
                unit = cue.unit
            first = False
            lead = hit_start
            i -= 1
        return _Context(ignore, price, qty, span, unit, chinese, generation, total)

    def _price(
        self,
        lead: int,
        token: re.Match[str],
        kind: str | None,
        plain: str,
        mult: str | None,
        cur: str | None,
        prefix: str | None,
        context: _Context,
    ) -> _Num | None:
        """The number as a price, if anything marks it as one."""
        unit: QuantityUnit | None = None
        span: str | None = None
        each = False
        chinese = False
        if kind == "per":
            per = token.group("per")
            units = _UNIT_SPELLINGS.get(per)
            unit, span, each, chinese = _read_units(per) if units is None else units
        money = prefix is not None or (cur is not None and cur != "块")
        if not (money or mult in _CJK_MULTIPLIERS or unit is not None or span is not None):
            if each and (mult in ("k", "m") or Decimal(plain) >= 100):
                pass  # "25k each"
            elif not (context.price and mult in (None, "k") and kind in _BARE_KINDS):
                return None
        if mult is not None and mult in _MILLIONS and not money:
            return None
        foreign = _FOREIGN.get(prefix or cur or "")
        if foreign is not None:
            currency: Currency | None = None  # "€1.85/GPU/hr", "HK$19,800": not a contract currency
        elif prefix in _USD_MARKS or cur in _USD_MARKS:
            currency = USD
        elif prefix is not None or cur is not None or mult in _CJK_MULTIPLIERS:
            currency = CNY
        else:
            currency = None
        if span is None and context.span is not None:
            span, chinese = context.span, chinese or context.chinese
        if unit is None:
            unit = context.unit
        script = chinese if (kind == "per" or context.span is not None) else None
        value = _amount(plain, mult)
        price = _Num(lead, token.end(), PRICE, value, unit, span, currency, script, each)
        price.foreign = foreign
        price.total = context.total or (
            self.totals and _TOTAL_AFTER.match(self.marked, token.end()) is not None
        )
        return price

    def _count(
        self,
        lead: int,
        token: re.Match[str],
        kind: str | None,
        value: int,
        after_x: bool,
        context: _Context,
    ) -> _Num | None:
        """The number as a count of GPUs or servers, GPUs per server, or memory."""
        if kind not in _COUNTER_KINDS and kind != "x":
            return self._other_count(lead, token.end(), value, after_x, context)
        if kind == "server":
            return _Num(lead, token.end(), SERVERS, value)
        if kind == "units":
            return _Num(lead, token.end(), QTY, value)  # "20 units": of what the item counts
        if kind == "avail":
            return _Num(lead, token.end(), QTY, value)  # "5 available": of what the item counts
        if kind == "card" or kind == "gpu":
            # "(8 GPUs)": in brackets, maybe after a space
            marked = self.marked
            paren = lead > 0 and (
                marked[lead - 1] == "("
                or (lead > 1 and marked[lead - 2] == "(" and marked[lead - 1].isspace())
            )
            if kind == "card":
                return _Num(lead, token.end("card"), CARDS, value, paren=paren)
            return _Num(lead, token.end(), GPUS, value, paren=paren)
        if kind == "mem":
            if value not in catalog.MEMORY_SIZES:
                return None
            if after_x and (
                value < 16 or not _FEW_BEFORE_X.search(self.marked, max(0, lead - 4), lead)
            ):
                return None  # "4x8G", "16x64GB": memory modules; "8x80GB" is eight 80 GB GPUs
            return _Num(lead, token.end(), MEMORY, value)
        if kind == "cardbox":
            return _Num(lead, token.end("card"), PER_SERVER, value)
        end = token.end()
        if kind == "each":
            return _Num(lead, end, PER_SERVER, value)
        if kind == "dash":
            return _Num(lead, end, PER_SERVER if value <= 16 else GPUS, value)
        if not after_x:  # "x": "8x ..."
            return self._x_count(lead, end, value)
        return self._times(lead, end, value)

    def _times(self, lead: int, end: int, value: int) -> _Num:
        """`x 6` after a server or a GPU count: how many servers (`8卡 x 6`), else GPUs."""
        server = _SERVER_BEFORE_X.search(self.low, max(0, lead - 16), lead)
        return _Num(lead, end, SERVERS if server else GPUS, value)

    def _other_count(
        self, lead: int, end: int, value: int, after_x: bool, context: _Context
    ) -> _Num:
        """A number without a counter of its own: `x 6`, `64 H100`, `qty 10`, or bare."""
        marked = self.marked
        if after_x and not _MODEL_NEXT.match(marked, end):  # "16 nodes x 8 H200" counts H200s
            return self._times(lead, end, value)
        if _BEFORE_MODEL.match(marked, end):
            return self._model_count(lead, end, value)
        if context.qty:
            return _Num(lead, end, QTY, value)
        if _BEFORE_COUNT.match(marked, end):
            return _Num(lead, end, X_THING, value)
        return _Num(lead, end, BARE, value)

    def _x_count(self, lead: int, end: int, value: int) -> _Num | None:
        """`8x ...`: a count of what follows, or GPUs per server (`(8x each)`)."""
        after = _AFTER_X.match(self.marked, end)
        if after is not None and after.group("cpu"):
            return None  # "2x EPYC 9654", "2x 8480+": the CPUs of a server
        if after is not None and (after.group("each") or after.group("close")):
            return _Num(lead, after.end(), PER_SERVER, value)
        if after is not None and after.group("model"):
            return self._model_count(lead, end, value)
        if not _NUMBER_NEXT.match(self.marked, end) and _MODEL_BEFORE.search(
            self.marked, max(0, lead - 12), lead
        ):
            return _Num(lead, end, X_MODEL, value)  # "H100 8x": eight of the model ("4x8G": no)
        if value <= 10 and _X_MEMORY.match(self.marked, end):
            return _Num(lead, end, GPUS, value)  # "8x80GB": eight GPUs
        return _Num(lead, end, X_THING, value)

    def _model_count(self, lead: int, end: int, value: int) -> _Num:
        """`64x H100`, `512 H100`, `2x HGX H100 servers`: notes a server noun after the model."""
        marked = self.marked
        model_end = marked.find(_MODEL_MARK, end)
        while model_end < len(marked) and marked[model_end] == _MODEL_MARK:
            model_end += 1
        noun = _SERVER_AFTER_MODEL.match(marked, model_end)
        # "2 × DGX H100", "3x HGX B200": a few DGX or HGX are whole 8-GPU systems.
        system = value <= 16 and _SYSTEM_WORD.search(self.low, end, model_end) is not None
        return _Num(
            lead,
            end,
            X_MODEL,
            value,
            server_after=noun is not None or system,
            plural=system or (noun is not None and noun.group("plural") is not None),
        )

    def _add_chinese_counts(self, numbers: list[_Num]) -> None:
        """两台, 十台, 一台, 千卡: counts written in Chinese numerals; and prices (月租五万,
        三千元/卡)."""
        # The prices read so far, in text order, and the first one that does not end before
        # the run at hand: runs come in text order, so one pass over them is enough.
        prices = [n for n in numbers if n.role == PRICE]
        p = 0
        added_end = 0  # the end of the last price read here ("五万一台" holds 一台)
        added = False
        low = self.low
        for run in _CN_NUMERALS.finditer(low):
            start = run.start()
            while p < len(prices) and prices[p].end <= start:
                p += 1
            if start < added_end or (p < len(prices) and prices[p].start <= start):
                continue  # "75w一台" is per server, not one server
            counter = _CN_COUNTER.match(low, run.end())
            text = run.group()
            stop = run.end()
            if counter is not None and len(text) > 2 and text[-1] == "一" and text[-2] in "万千":
                stop -= 1  # "二十六万一台": 260,000 a server, not 260,001 servers
                counter = None
            if counter is None:
                if not ("万" in text or "千" in text or low.startswith("元", stop)):
                    continue
                if start > 0 and (low[start - 1] in _CN_VAGUE or low[start - 1] in _GLUE):
                    continue  # 数万, 几千; the 万 of "7.5万"
                price = self._chinese_price(start, stop)
                if price is not None:
                    numbers.append(price)
                    added_end = price.end
                    added = True
                continue
            if start > 0 and low[start - 1] in _CN_NOT_A_COUNT:
                continue  # 几十台, 每台, 单张: not a count
            value = _chinese_number(run.group())
            if not value:
                continue
            unit = counter.group(1)
            role = SERVERS if unit in ("台", "套", "节点") else CARDS if unit == "卡" else GPUS
            numbers.append(_Num(start, counter.end(), role, value))
            added = True
        if added:
            numbers.sort(key=lambda n: n.start)

    def _chinese_price(self, start: int, stop: int) -> _Num | None:
        """The Chinese numerals `low[start:stop]` as a price, when 元, a unit (`/台`, `一台`) or
        a price word before them (月租, 预算, 单价) says they are one: "十万火急" is no price."""
        tail = _CN_PRICE_TAIL.match(self.low, stop)
        if tail is None:
            return None
        per = tail.group("per")
        context = self._context(start) if self.hint_ends else _NO_CONTEXT
        if not (tail.group("yuan") or per or context.price or context.span):
            return None
        value = _chinese_number(self.low[start:stop])
        if not value:
            return None
        unit: QuantityUnit | None = None
        span: str | None = None
        if per:
            unit, span, _, _ = _read_units(per)
        price = _Num(start, tail.end(), PRICE, Decimal(value), unit or context.unit)
        price.span = span or context.span
        price.currency = CNY
        price.chinese = True
        return price


# =============================================================================================
# The message: normalised text, cues, numbers; items and the frames around them.
# =============================================================================================

# Links, e-mail addresses, @handles, messenger IDs and user_names. Each alternative starts with
# the character it needs, and looks behind only after it (`x(?<!y.)` is `(?<!y)x`), so the
# engine passes over the other characters quickly.
_CONTACT: Final = re.compile(
    r"https?://\S+|www\.\S+|[a-z0-9._%+-](?<![a-z0-9._%+-].)[a-z0-9._%+-]*@[a-z0-9-]+"
    r"(?:\.[a-z0-9-]+)+|@(?<![\w@].)[\w.]+|[vw微t](?<![a-z0-9_].)(?:(?<=v)(?:x|信)"
    r"|(?<=w)(?:x|echat|eixin|hatsapp)|(?<=微)信号?|(?<=t)(?:g|elegram))\s*+[:：]?\s*+[a-z0-9_+-]{4,}"
    r"|[a-z](?<![a-z0-9_].)[a-z0-9]*+(?:_[a-z0-9]+)+"
)
_CONTACT_HINT: Final = re.compile(r"@|_|://|www\.|vx|wx|微信|v信|wechat|tg|telegram|whatsapp")
# What any contact needs ("@ $235k" is a price, not a handle); every alternative starts with a
# fixed character, so the engine only stops at those.
_CONTACT_NEEDS: Final = re.compile(
    r"://|www\.|@[\w.-]|vx|wx|v信|微信|wechat|weixin|tg|telegram|whatsapp|_(?<=[a-z0-9]_)[a-z0-9]"
)
_FULL_WIDTH: Final = (
    ("，", ","),
    ("：", ":"),
    ("；", ";"),
    ("（", "("),
    ("）", ")"),
    ("！", "!"),
    ("？", "?"),
)
_SEGMENT_BREAK: Final = re.compile(r"[\n\r;。]+")
_CLAUSE_BREAK: Final = re.compile(r"[\n\r;。!?]")
_SPLIT_MARK: Final = re.compile(r"[,，、;|!?]|\.\s")
_COUNT_TAIL: Final = re.compile(r"(?<![\d,.])\d[\d,.]*+\s*+[x×*]?\s*+$")
_LIST_GAP: Final = re.compile(r"[\s\x02/、,，&+|]*+(?:和|及|与|或|or|and)?[\s\x02/、,，&+|]*+")
_SERVER_WORD: Final = re.compile(
    r"台|整机|服务器|机器|节点|主机|卡机|servers?(?![a-z])|nodes?(?![a-z])|box(?:es)?(?![a-z])"
    r"|machines?(?![a-z])|systems?(?![a-z])|(?:base)?boards?(?![a-z])|dgx|hgx"
)
_PER_HINT: Final = re.compile(
    r"(?:per|/|每)\s*(?:(?P<gh>gpu[\s-]?h(?:ou)?rs?|卡时)|(?P<gpu>gpu|card|卡|张)|(?P<server>node"
    r"|server|box|台))(?:\s*+(?:per|/|每)?\s*+(?:(?P<hour>hours?|hrs?|h|小时|时)|(?P<month>months?"
    r"|mo|月)|(?P<year>years?|yr|年)))?|(?P<ch>卡时)"
)
_HAN: Final = re.compile(r"[\u4e00-\u9fff]")
_OBJECT: Final = re.compile(r"[\x01\d]")  # a model name or a digit
_HEADING: Final = re.compile(r"[^\d:]*[^\s\d:][^\d:]*")  # words before a colon, no numbers
_PLACE_RANK: Final = dict(places.RANK)  # a plain dict: read for every place a survey meets
_COMMA_BREAKS: Final = (",", "，", "\n", ";", "。", "?", "!")


class _Message(_Scanner):
    """One message read once: its text, cues and numbers. Indexes are built on first use."""

    __slots__ = (
        *("_clause_breaks", "_hit_starts", "_number_starts", "hint_ends", "hints", "hits"),
        *("low", "marked", "models", "money", "numbers", "question", "totals", "vetoes"),
    )

    def __init__(self, low: str, marked: str, hits: list[_Hit], models: list[_Hit]) -> None:
        self.low = low  # lower case, contacts blanked
        self.marked = marked  # models, variants and places blanked, number words as digits
        self.hits = hits  # the cues the surveys read (intent, deal, place...)
        self.models = models
        self.hints: list[_Hit] = []  # the cues that say something about the number after them
        self.hint_ends: list[int] = []
        self.vetoes = False  # whether any of those can veto a count ("IB 400G", "min order 8")
        self.totals = False  # whether a price may be followed by "total" or "打包" (set by scan)
        self.money: Currency | None = None  # a currency named anywhere ("U 结算")
        self.question = False
        self.numbers: list[_Num] = []
        self._hit_starts: list[int] | None = None
        self._number_starts: list[int] | None = None
        self._clause_breaks: list[int] | None = None

    def hits_in(self, start: int, end: int) -> list[_Hit]:
        if self._hit_starts is None:
            self._hit_starts = [hit[0] for hit in self.hits]
        i = bisect_left(self._hit_starts, start)
        return self.hits[i : bisect_left(self._hit_starts, end, i)]

    def numbers_in(self, start: int, end: int) -> list[_Num]:
        if self._number_starts is None:
            self._number_starts = [n.start for n in self.numbers]
        i = bisect_left(self._number_starts, start)
        return self.numbers[i : bisect_left(self._number_starts, end, i)]

    @property
    def clause_breaks(self) -> list[int]:
        if self._clause_breaks is None:
            self._clause_breaks = [m.start() for m in _CLAUSE_BREAK.finditer(self.low)]
        return self._clause_breaks


class _Item:
    """A stretch of text about one model (or about a list of models sharing the same words)."""

    __slots__ = ("end", "line", "models", "prefix", "start")

    def __init__(
        self,
        start: int,
        end: int,
        models: list[_Hit],
        prefix: tuple[int, int] | None = None,
    ) -> None:
        self.start = start
        self.end = end
        self.models = models
        self.prefix = prefix  # a later model in a line: the line's opening words
        self.line: tuple[int, int] | None = None  # a line split between models: the whole line


class _Frame:
    """What a header or footer line says about the items it frames."""

    __slots__ = (
        *("deal", "deal_strong", "money", "per_server", "place", "side", "side_strong"),
        *("span", "unit"),
    )

    def __init__(
        self,
        side: Side | None,
        side_strong: bool,
        deal: Deal | None,
        deal_strong: bool,
        place: str | None,
    ) -> None:
        self.side = side
        self.side_strong = side_strong
        self.deal = deal
        self.deal_strong = deal_strong
        self.place = place
        self.unit: QuantityUnit | None = None
        self.span: str | None = None
        self.per_server: int | None = None
        self.money: Currency | None = None


def _normalise(text: str) -> tuple[str, str]:
    """(NFKC text, its lower case with contact details blanked), both with the same offsets."""
    original = text
    if not unicodedata.is_normalized("NFKC", original):
        # Full-width punctuation is most of what needs normalising; replacing it is cheap.
        for wide, narrow in _FULL_WIDTH:
            if wide in original:
                original = original.replace(wide, narrow)
        if not unicodedata.is_normalized("NFKC", original):
            original = unicodedata.normalize("NFKC", original)
    low = original.lower()
    if len(low) != len(original):  # a few letters grow when lower-cased; keep offsets aligned
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in original)
    if _CONTACT_HINT.search(low) and _CONTACT_NEEDS.search(low):
        low = _CONTACT.sub(lambda m: " " * (m.end() - m.start()), low)
    return original, low


def _scan_cues(original: str, low: str) -> _Message | None:
    """All cues in one pass of the automaton; None when the message cannot hold an offer (it
    names no model, or it is news, gossip, a voucher or the like)."""
    hits: list[_Hit] = []
    models: list[_Hit] = []
    hints: list[_Hit] = []
    hint_ends: list[int] = []
    blanks: list[tuple[int, int, str]] = []
    vetoes = question = False
    money: Currency | None = None
    size = len(low)
    alnum = ASCII_ALNUM
    scan = _AUTOMATON.iter_long(low)
    while scan is not None:
        matches, scan = scan, None
        for last, (length, cue, check, keep, blank, cased) in matches:
            end = last + 1
            start = end - length
            if check:
                if check <= WORD_CHECK:
                    if check & WORD_START and start and low[start - 1] in alnum:
                        continue
                    if check & WORD_END and end < size and low[end] in alnum:
                        continue
                elif check == SILENT:
                    continue
                elif check == MODEL_CHECK:
                    if not catalog.model_bounded(low, start, end):
                        continue
                elif check == VARIANT_CHECK:
                    if not catalog.variant_bounded(low, start, end):
                        continue
                elif check == COUNTED:
                    if _after_number(low, start):
                        scan = _AUTOMATON.iter_long(low, start + 1)  # read on past the counter
                        break
                elif check == AFTER:
                    if start and low[start - 1] in cased:  # type: ignore[operator]
                        continue  # 寄出, 交收, 会有
                elif (
                    (start and low[start - 1] in alnum)
                    or (end < size and low[end] in alnum)
                    or original[start:end] != cased
                ):
                    continue  # CASED: "LA" or "HK" as a word, in capitals
            hit = (start, end, cue)
            if keep & LIST:
                hits.append(hit)
            if keep > LIST:
                if keep & NOTE_MODEL:
                    models.append(hit)
                    blanks.append((start, end, blank))
                    continue
                if keep & DROP:
                    return None  # news, gossip, a voucher...
                if keep & BLANK:
                    blanks.append((start, end, blank))
                if keep & HINT:
                    hints.append(hit)
                    hint_ends.append(end)  # hits do not overlap: sorted by end too
                    vetoes = vetoes or cue.vetoes
                if keep & NOTE_MONEY:
                    money = money or cue.value
                if keep & NOTE_QUESTION:
                    question = True
    if not models:
        return None
    question = question or "?" in low
    if question and not _may_assert(hits):
        return None  # "H100 现货什么价?": a question with no intent it could be asking for
    msg = _Message(low, _mark(low, blanks), hits, models)
    msg.totals = "tot" in low or "打包" in low or "总价" in low or "lot" in low
    msg.hints = hints
    msg.hint_ends = hint_ends
    msg.vetoes = vetoes
    msg.money = money
    msg.question = question
    return msg


def _may_assert(hits: list[_Hit]) -> bool:
    """Whether the cues could make a strong intent, which a question needs to be an offer: a
    strong intent word, an "I have" that may ask (有 H100 吗?), or "anyone" before an intent or
    a verb of renting (有人出 4090 吗, 有人租 L40S 吗)."""
    intent = flip = False
    for _, _, cue in hits:
        kind = cue.kind
        if kind == INTENT:
            if cue.strong or cue.have:
                return True
            intent = True
        elif kind == FLIP:
            flip = True
        elif cue.rents:
            intent = True
    return flip and intent


def _after_number(low: str, pos: int) -> bool:
    """Whether a number (in digits or Chinese numerals) ends right before `pos`, spaces aside."""
    while pos and low[pos - 1] == " ":
        pos -= 1
    return pos > 0 and (low[pos - 1].isdigit() or low[pos - 1] in _CN_NUMERAL_CHARS)


def _mark(low: str, blanks: list[tuple[int, int, str]]) -> str:
    """Blank model, variant and place names (so `4090` is not a number) and write number words as
    digits (so `one HGX B200 server` is counted)."""
    pieces: list[str] = []
    pos = 0
    for start, end, blank in blanks:
        pieces.append(low[pos:start])
        pieces.append(blank)
        pos = end
    pieces.append(low[pos:])
    return "".join(pieces)


def _read_message(text: str) -> _Message | None:
    """Normalise and scan; None when the message cannot hold an offer."""
    original, low = _normalise(text)
    msg = _scan_cues(original, low)
    if msg is not None:
        msg.numbers = msg.scan()
    return msg


def _segments(low: str) -> list[tuple[int, int]]:
    """Lines and `;`/`。` clauses: the spans between breaks."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _SEGMENT_BREAK.finditer(low):
        if m.start() > pos:
            spans.append((pos, m.start()))
        pos = m.end()
    if pos < len(low):
        spans.append((pos, len(low)))
    return spans


def _gpu(hit: _Hit) -> str:
    query: ModelQuery = hit[2].value
    return query.gpu


def _items(msg: _Message, models: list[_Hit]) -> tuple[list[_Item], list[tuple[int, int]]]:
    """Items, and the model-free lines (headers and footers) around them."""
    items: list[_Item] = []
    frames: list[tuple[int, int]] = []
    low = msg.low
    count = len(models)
    i = 0
    for start, end in _segments(low):
        mine: list[_Hit] = []
        while i < count and models[i][0] < end:
            if models[i][0] >= start:
                mine.append(models[i])
            i += 1
        if mine:
            colon = low.rfind(":", start, mine[0][0])
            if colon > start and _HEADING.fullmatch(low, start, colon):
                # "今日特价 深圳: 4090 …; 4090D …": the words before the colon head every item
                frames.append((start, colon))
                start = colon + 1
        if len(mine) == 1:
            items.append(_Item(start, end, mine))
        elif mine:
            items.extend(_split_line(msg, start, end, mine))
        elif not low[start:end].isspace():
            frames.append((start, end))
    return items, frames


def _split_line(msg: _Message, start: int, end: int, models: list[_Hit]) -> list[_Item]:
    """One item per model a line names; a list of models (`H100/H800 现货`) shares its words."""
    items = [_Item(start, end, [models[0]])]
    for hit in models[1:]:
        prev = items[-1]
        if _gpu(hit) == _gpu(prev.models[-1]):
            prev.models.append(hit)
            continue
        gap_start, gap_end = prev.models[-1][1], hit[0]
        gap = msg.marked[gap_start:gap_end]
        if _LIST_GAP.fullmatch(gap):
            prev.models.append(hit)
            continue
        cut = _split_point(msg, gap_start, gap_end, gap)
        prev.end = cut
        items.append(_Item(cut, end, [hit], prefix=(start, models[0][0])))
    # A later model with no numbers and no intent of its own is only mentioned ("比 H800 便宜"):
    # its words stay with the model before it.
    kept = [items[0]]
    for item in items[1:]:
        if _has_evidence(msg, item):
            kept.append(item)
        else:
            kept[-1].end = item.end
    if len(kept) > 1:
        for item in kept:
            item.line = (start, end)  # "H100 … + H800 … 打包出 北京": the place is shared
    return kept


def _has_evidence(msg: _Message, item: _Item) -> bool:
    if any(cue.kind == INTENT for _, _, cue in msg.hits_in(item.start, item.end)):
        return True
    return any(n.role not in (MEMORY, BARE, QTY) for n in msg.numbers_in(item.start, item.end))


def _split_point(msg: _Message, gap_start: int, gap_end: int, gap: str) -> int:
    """Where the words about one model end and those about the next begin."""
    marks = list(_SPLIT_MARK.finditer(gap))
    if marks:
        return gap_start + marks[-1].end()
    intents = [start for start, _, cue in msg.hits_in(gap_start, gap_end) if cue.kind == INTENT]
    if intents:
        return intents[-1]
    tail = _COUNT_TAIL.search(gap)
    return gap_end - (len(tail.group(0)) if tail else 0)


# =============================================================================================
# Reading one item.
# =============================================================================================


# What the cues of one stretch of text say (an item, a header, or the whole message):
# (side, side strong, deal, deal strong, place, variant, price span, money, done, lease, price
# question).
_Survey = tuple[
    Side | None,
    bool,
    Deal | None,
    bool,
    str | None,
    str | None,
    str | None,
    Currency | None,
    bool,
    bool,
    bool,
]


def _survey(msg: _Message, hits: Sequence[_Hit]) -> _Survey:
    """One pass over the cues: intent (the first strong one, else the first weak one, turned
    round inside "anyone ...?"), deal (strong before weak), the most specific place, and so on."""
    side: Side | None = None
    deal: Deal | None = None
    side_strong = deal_strong = done = lease = False
    weak_side: Side | None = None
    weak_deal: Deal | None = None
    place = variant = span = None
    money: Currency | None = None
    flip_at = -1
    rank = 0
    asked = False  # only the first "have" in a question is checked: "有 H100 吗?"
    intent_at = -1  # where the strong intent was stated, unless it was turned round
    price_asks: list[int] | None = None
    clause = (0, -1, False)  # the last clause looked at for "有", and whether it names anything
    for start, end, cue in hits:
        kind = cue.kind
        if kind == INTENT:
            if not side_strong:
                if cue.needs_object:
                    if not clause[0] <= start < clause[1]:
                        clause = _names_object(msg, start)
                    if not clause[2]:
                        continue  # "有问题可以交流": nothing on offer
                if cue.subject and _MODEL_BEFORE.search(msg.marked, max(0, start - 12), start):
                    continue  # "B200 needs liquid cooling"
                cue_side: Side = cue.side  # type: ignore[assignment]
                strong = cue.strong
                turned = True
                if flip_at >= 0 and _same_clause(msg, flip_at, start):
                    # "有人出 4090 吗", "anyone selling H200?"
                    cue_side, strong = cue_side.opposite, True
                elif cue.have and not asked:
                    asked = True
                    if _asks(msg, end) and _names_model(msg, start):
                        cue_side, strong = cue_side.opposite, True  # "有 H100 吗?" asks for one
                    else:
                        turned = False
                else:
                    turned = False
                if strong:
                    side, side_strong = cue_side, True
                    if not turned:
                        intent_at = start
                elif weak_side is None:
                    weak_side = cue_side
        elif kind == QUESTION:
            if price_asks is None:
                price_asks = []
            price_asks.append(start)  # only questions about the price are listed
        elif kind == PLACE:
            if _PLACE_RANK[cue.value] > rank:
                place = cue.value
                rank = _PLACE_RANK[place]
        elif kind == FLIP:
            flip_at = start
        elif kind == VARIANT:
            variant = variant or cue.value
        elif kind == DONE:
            done = True
        elif kind == MONEY:
            money = money or cue.value
        elif kind == LEASE:
            lease = True
        elif cue.rents and flip_at >= 0 and not side_strong and _same_clause(msg, flip_at, start):
            side, side_strong = BUY, True  # "有人租 L40S 吗": asks who rents one out
        if cue.deal is not None and not deal_strong:
            if cue.deal_strong:
                deal, deal_strong = cue.deal, True
            elif weak_deal is None:
                weak_deal = cue.deal
        if span is None:
            span = cue.span
    price_question = False
    if price_asks is not None and intent_at >= 0:
        for at in price_asks:  # "H100 现在回收什么价位?": the trade word is in the question
            if _same_clause(msg, min(at, intent_at), max(at, intent_at)):
                price_question = True
                break
    return (
        weak_side if side is None else side,
        side_strong,
        weak_deal if deal is None else deal,
        deal_strong,
        place,
        variant,
        span,
        money,
        done,
        lease,
        price_question,
    )


def _same_clause(msg: _Message, a: int, b: int) -> bool:
    i = bisect_left(msg.clause_breaks, a)
    return i >= len(msg.clause_breaks) or msg.clause_breaks[i] > b


def _names_object(msg: _Message, pos: int) -> tuple[int, int, bool]:
    """The comma-delimited clause around `pos` as (start, stop), and whether it names a model
    or holds a number."""
    low = msg.low
    start = max(low.rfind(c, 0, pos) for c in _COMMA_BREAKS) + 1
    stops = [i for i in (low.find(c, pos) for c in _COMMA_BREAKS) if i >= 0]
    stop = min(stops) if stops else len(low)
    return start, stop, _OBJECT.search(msg.marked, start, stop) is not None


def _names_model(msg: _Message, pos: int) -> bool:
    """Whether the comma-delimited clause around `pos` names a model."""
    low = msg.low
    start = max(low.rfind(c, 0, pos) for c in _COMMA_BREAKS) + 1
    stops = [i for i in (low.find(c, pos) for c in _COMMA_BREAKS) if i >= 0]
    stop = min(stops) if stops else len(low)
    return _MODEL_MARK in msg.marked[start:stop]


def _asks(msg: _Message, pos: int) -> bool:
    """Whether the clause around `pos` is a question."""
    i = bisect_left(msg.clause_breaks, pos)
    stop = msg.clause_breaks[i] if i < len(msg.clause_breaks) else len(msg.low)
    if stop < len(msg.low) and msg.low[stop] == "?":
        return True
    return msg.low[pos:stop].rstrip().endswith(("吗", "么", "嘛"))


def _frame(msg: _Message, start: int, end: int) -> _Frame:
    """Read a header or footer line."""
    side, side_strong, deal, deal_strong, place, _, span, money, _, _, _ = _survey(
        msg, msg.hits_in(start, end)
    )
    frame = _Frame(side, side_strong, deal, deal_strong, place)
    frame.money = money
    line = msg.low[start:end]
    per = None
    if "/" in line or "per" in line or "每" in line or "卡时" in line:  # all it can start with
        per = _PER_HINT.search(line)
    if per is not None:
        if per.group("gh") or per.group("ch"):
            frame.unit, frame.span = GPU, "hour"
        else:
            frame.unit = GPU if per.group("gpu") else SERVER
            frame.span = next((s for s in ("hour", "month", "year") if per.group(s)), None)
    frame.span = frame.span or span
    if frame.span is not None and not frame.deal_strong:
        frame.deal, frame.deal_strong = RENT, True
    for num in msg.numbers_in(start, end):
        if num.role == PER_SERVER:
            frame.per_server = int(num.value)
            break
    return frame


# How many of what an item offers: (quantity, its unit, GPUs per server).
_Counts = tuple[int | None, QuantityUnit | None, int | None]


def _server_words(low: str, start: int, end: int) -> bool:
    """Whether `low[start:end]` speaks of servers (台, 整机, nodes, boxes...)."""
    return _SERVER_WORD.search(low, start, end) is not None


def _counts(nums: Sequence[_Num], low: str, start: int, end: int) -> _Counts:
    """Resolve the counts of an item against each other.

    A count of servers makes small GPU counts (`8卡`, `8x`, `(8 GPUs)`) the GPUs per server;
    `N x <thing>` counts servers when the thing is described by its GPUs; `8卡` alone gives the
    GPUs per server, a bigger `N卡` is a count of GPUs; `N块` counts cards when the price is
    stated elsewhere. Whether the item (`low[start:end]`) speaks of servers is looked up only
    when it matters.
    """
    servers: int | None = None
    gpus: int | None = None
    per_server: int | None = None
    priced = False
    things: list[_Num] = []
    models: list[_Num] = []
    others: list[_Num] = []
    for n in nums:
        role = n.role
        if role == PRICE:
            priced = True
        elif role == SERVERS:
            if servers is None:
                servers = int(n.value)
        elif role == PER_SERVER:
            if per_server is None and n.value <= 16:
                per_server = int(n.value)
        elif role in (CARDS, GPUS, KUAI, QTY):
            others.append(n)
        elif role == X_MODEL:
            models.append(n)
        elif role == X_THING:
            things.append(n)
    if not (things or models or others):
        if servers is not None:
            return servers, SERVER, per_server
        return None, None, per_server
    for n in things:
        if servers is None and (per_server or models or _server_words(low, start, end)):
            servers = int(n.value)
        elif servers is None and gpus is None:
            gpus = int(n.value)
    for n in models:
        value = int(n.value)
        if servers is not None:
            if per_server is None and value <= 16:
                per_server = value
        elif n.server_after and (per_server is not None or n.plural or value == 1 or value > 16):
            servers = value  # "2x HGX H100 servers", "one HGX B200 server"
        elif n.server_after:
            per_server = per_server or value  # "8x H100 node"
        elif gpus is None:
            gpus = value
    for n in others:
        value = int(n.value)
        role = n.role
        if role == KUAI:
            if priced and gpus is None and servers is None:
                gpus = value  # "300块 8.8w/块"
        elif role == QTY:
            if servers is None and gpus is None:
                if _server_words(low, start, end):
                    servers = value
                else:
                    gpus = value
        elif servers is not None:
            if per_server is None and value <= 16:
                per_server = value
        elif gpus is None:
            if role == CARDS and value <= 8:
                per_server = per_server or value  # "H100 8卡": an 8-GPU box
            elif role == GPUS and n.paren and value <= 16 and _server_words(low, start, end):
                per_server = per_server or value  # "1 node B200 (8 GPUs)"
            else:
                gpus = value
    if servers is not None:
        return servers, SERVER, per_server
    if gpus is not None:
        return gpus, GPU, per_server
    return None, None, per_server


def _pick_price(nums: Sequence[_Num], quantity: int | None, frame: _Frame | None) -> _Num | None:
    """The first price stated; `N块` or a bare number only when nothing else can be the price."""
    for n in nums:
        if n.role == PRICE:
            return n
    for n in nums:
        if n.role == KUAI and (quantity is not None or n.value >= 1000):
            amount = _whole(Decimal(n.value))
            return _Num(n.start, n.end, PRICE, amount, None, None, CNY, True)
    if frame is not None and (frame.money or frame.unit or frame.span):
        for n in nums:  # "H100 1.70" under "Price list (USD per GPU hour)"
            if n.role == BARE:
                return _Num(n.start, n.end, PRICE, _whole(Decimal(n.value)))
    return None


# Beyond these a price is for a whole server rather than one GPU.
_HOURLY_GPU_MAX: Final = {USD: Decimal(12), CNY: Decimal(60)}
_MONTHLY_GPU_MAX: Final = {USD: Decimal(4000), CNY: Decimal(25000)}


def _serverish(
    counted: QuantityUnit | None, per_server: int | None, item: tuple[str, int, int]
) -> bool:
    """Whether an item is about servers: it counts them, says how many GPUs each has, or names
    them."""
    return counted is SERVER or per_server is not None or _server_words(*item)


def _price_per(
    price: _Num,
    deal: Deal,
    counted: QuantityUnit | None,
    per_server: int | None,
    currency: Currency,
    item: tuple[str, int, int],
    frame: _Frame | None,
) -> PricePer | None:
    """What one price buys: a GPU or a server, and for rent an hour, a month or a year; None
    for a price by the day or the week, which the contract has no unit for. `counted` is what
    the item counts, GPUs or servers; `per_server` its own GPUs per server; `item` the text of
    the item, as (text, start, end); `currency` the currency whose scale the price is in."""
    unit = price.unit
    span = price.span
    if unit is None and price.each and counted is not None:
        unit = counted
    if frame is not None:
        unit = unit or frame.unit
        span = span or frame.span
    if span == "day" or span == "week":
        return None  # "45元/卡/天", "$420/day per box"
    if deal is SALE and span is None:
        if unit is None:
            unit = counted or (SERVER if _serverish(counted, per_server, item) else GPU)
        return PricePer.SERVER if unit is SERVER else PricePer.GPU
    if unit is None:
        if span == "hour":
            unit = GPU if price.value <= _HOURLY_GPU_MAX[currency] else SERVER
        elif counted is not None:
            unit = counted
        elif _serverish(counted, per_server, item):
            unit = SERVER
        else:
            unit = GPU if price.value <= _MONTHLY_GPU_MAX[currency] else SERVER
    if span is None:
        limit = _HOURLY_GPU_MAX[currency] * (8 if unit is SERVER else 1)
        span = "hour" if price.value <= limit else "month"
    return _PRICE_PER[unit is SERVER, span]


_PRICE_PER: Final = {
    (False, "hour"): PricePer.GPU_HOUR,
    (False, "month"): PricePer.GPU_MONTH,
    (False, "year"): PricePer.GPU_YEAR,
    (True, "hour"): PricePer.SERVER_HOUR,
    (True, "month"): PricePer.SERVER_MONTH,
    (True, "year"): PricePer.SERVER_YEAR,
}


def _currency(msg: _Message, price: _Num, frame: _Frame | None) -> Currency | None:
    """Stated with the price, else named in the message, else by the language of the post;
    None for a price in another currency (euros, Hong Kong dollars)."""
    if price.currency is not None:
        return price.currency
    if price.foreign is not None:
        return None
    if msg.money is not None:
        return msg.money
    if frame is not None and frame.money is not None:
        return frame.money
    if price.chinese is not None:
        return CNY if price.chinese else USD
    return CNY if _HAN.search(msg.low) else USD


class _Scope:
    """Where an item's missing details come from: its frames, then the whole message, then
    the item before it on the same side (a list whose first line says 出租 is all for rent)."""

    __slots__ = ("frames", "line_places", "sibling_deal", "side", "side_strong")

    def __init__(
        self,
        frames: Sequence[_Frame],
        side: Side | None,
        side_strong: bool,
        sibling_deal: dict[Side, Deal],
        line_places: dict[tuple[int, int], str | None],
    ) -> None:
        self.frames = frames
        self.side = side  # the whole message's intent
        self.side_strong = side_strong
        self.sibling_deal = sibling_deal
        self.line_places = line_places


def _item_side(side: Side | None, strong: bool, scope: _Scope) -> tuple[Side | None, bool]:
    for frame in scope.frames:
        if frame.side is not None and (side is None or (not strong and frame.side_strong)):
            side, strong = frame.side, frame.side_strong
    if scope.side is not None and (side is None or (not strong and scope.side_strong)):
        side, strong = scope.side, scope.side_strong
    return side, strong


def _dealt(own: Deal | None, scope: _Scope | None) -> bool:
    """Whether an item, or a frame around it, names a deal (租, 出售, rental, 二手...)."""
    if own is not None:
        return True
    if scope is not None:
        for frame in scope.frames:
            if frame.deal is not None:
                return True
    return False


def _has_role(nums: Sequence[_Num], role: int) -> bool:
    for n in nums:  # noqa: SIM110 -- a plain loop: no generator to set up on the hot path
        if n.role == role:
            return True
    return False


def _item_deal(
    own: Deal | None,
    own_strong: bool,
    lease: bool,
    price: _Num | None,
    nums: Sequence[_Num],
    side: Side,
    scope: _Scope | None,
) -> Deal:
    """Sale or rent: from the price, a lease duration, the item's own words (`own`), its
    frames, or the item before it on the same side."""
    if price is not None and price.span is not None:
        deal: Deal | None = RENT  # a price per hour or month is a rent
    elif not own_strong and (lease or _has_role(nums, DURATION)):
        deal = RENT  # "need 64 H100s for 2 weeks", "for a month"
    else:
        deal, strong = own, own_strong
        if scope is None:
            return deal or SALE
        for frame in scope.frames:
            if frame.deal is not None and (deal is None or (not strong and frame.deal_strong)):
                deal, strong = frame.deal, frame.deal_strong
        if deal is None:
            deal = scope.sibling_deal.get(side)
    if scope is not None and deal is not None and (own is not None or price is not None):
        scope.sibling_deal[side] = deal
    return deal or SALE


def _read_item(
    msg: _Message,
    start: int,
    end: int,
    models: Sequence[_Hit],
    scope: _Scope | None = None,
    line: tuple[int, int] | None = None,
) -> list[Offer]:
    """The offers of the item `msg.low[start:end]` (one per model it names), or none. Without
    a scope the item is the whole message; `line` is the whole line when the item is part of
    one."""
    if scope is None:
        hits, nums = msg.hits, msg.numbers
    else:
        hits, nums = msg.hits_in(start, end), msg.numbers_in(start, end)
    side, strong, own_deal, own_deal_strong, place, variant, _, _, done, lease, asking = _survey(
        msg, hits
    )
    if done:
        return []  # "H100 已出": sold already
    if scope is not None:
        side, strong = _item_side(side, strong, scope)
    quantity, counted, own_per_server = _counts(nums, msg.low, start, end)
    frame = None
    if scope is not None:
        for candidate in scope.frames:
            if candidate.unit or candidate.span or candidate.money:
                frame = candidate
                break
    price = _pick_price(nums, quantity, frame)
    if asking and price is None and quantity is None:
        return []  # "H100 8卡整机 现在回收什么价位?": a question about the price
    if side is None:
        if msg.question or (price is None and (quantity is None or not _dealt(own_deal, scope))):
            return []  # "Our 32 H100 just went live in Dallas": a count alone offers nothing
        side = SELL  # a listing with a price, or a count and a deal, is stock on offer
    elif not strong and msg.question:
        return []  # "H100 现货什么价?": a question, not an offer

    deal = _item_deal(own_deal, own_deal_strong, lease, price, nums, side, scope)
    memory = None
    for n in nums:
        if n.role == MEMORY:
            memory = n.value
            break
    per_server = own_per_server
    if scope is not None:
        if per_server is None:
            for around in scope.frames:
                if around.per_server:
                    per_server = around.per_server
                    break
        if place is None and line is not None:
            place = scope.line_places.get(line)
        if place is None:
            for around in scope.frames:
                if around.place:
                    place = around.place
                    break

    amount: Decimal | None = None
    currency: Currency | None = None
    per: PricePer | None = None
    if price is not None:
        currency = _currency(msg, price, frame)
        scale: Currency = currency or price.foreign or USD
        if price.total and price.unit is None and quantity != 1:
            per = None  # "打包价 1.2亿" for 64 servers: the price of the lot, not of one
        else:
            item = (msg.low, start, end)
            per = _price_per(price, deal, counted, own_per_server, scale, item, frame)
        amount = price.value  # type: ignore[assignment]

    offers: list[Offer] = []
    seen: set[str] = set()
    for hit in models:
        query: ModelQuery = hit[2].value
        if query.gpu in seen:
            continue
        seen.add(query.gpu)
        offer: Offer = _NEW_OFFER(Offer)
        _SET_SIDE(offer, side)
        _SET_DEAL(offer, deal)
        _SET_GPU(offer, query.gpu)
        _SET_VARIANT(offer, query.variant or variant)
        _SET_MEMORY(offer, memory)
        _SET_QUANTITY(offer, quantity)
        _SET_UNIT(offer, counted)
        _SET_PER_SERVER(offer, per_server)
        _SET_PRICE(offer, amount)
        _SET_CURRENCY(offer, currency)
        _SET_PRICE_PER(offer, per)
        _SET_LOCATION(offer, place)
        offers.append(offer)
    return offers


# `Offer` is a frozen dataclass with slots. Its generated `__init__` sets each field through
# `object.__setattr__`, and runs as interpreted code even when this module is compiled; an offer
# is made for every item read, so `_read_item` sets the slots itself, which gives the same
# object in a fraction of the time. A field added to `Offer` stops the import here rather than
# be left unset.
_OFFER_SLOTS: Final[dict[str, Any]] = {
    field.name: getattr(Offer, field.name).__set__ for field in fields(Offer)
}
if list(_OFFER_SLOTS) != [
    *("side", "deal", "gpu", "variant", "memory_gb", "quantity", "quantity_unit"),
    *("gpus_per_server", "price", "currency", "price_per", "location"),
] or hasattr(Offer, "__post_init__"):
    raise TypeError("Offer's fields have changed: set the new ones in parse._read_item")
_NEW_OFFER: Final = object.__new__
_SET_SIDE: Final = _OFFER_SLOTS["side"]
_SET_DEAL: Final = _OFFER_SLOTS["deal"]
_SET_GPU: Final = _OFFER_SLOTS["gpu"]
_SET_VARIANT: Final = _OFFER_SLOTS["variant"]
_SET_MEMORY: Final = _OFFER_SLOTS["memory_gb"]
_SET_QUANTITY: Final = _OFFER_SLOTS["quantity"]
_SET_UNIT: Final = _OFFER_SLOTS["quantity_unit"]
_SET_PER_SERVER: Final = _OFFER_SLOTS["gpus_per_server"]
_SET_PRICE: Final = _OFFER_SLOTS["price"]
_SET_CURRENCY: Final = _OFFER_SLOTS["currency"]
_SET_PRICE_PER: Final = _OFFER_SLOTS["price_per"]
_SET_LOCATION: Final = _OFFER_SLOTS["location"]


def _one_offer(msg: _Message, items: Sequence[_Item]) -> bool:
    """One item about one model, or several lines about the same model with one set of numbers
    between them (a post spread over lines)."""
    gpus = {_gpu(hit) for item in items for hit in item.models}
    if len(gpus) != 1:
        return False
    if len(items) == 1:
        return True
    with_numbers = 0
    for item in items:
        if any(
            n.role in (PRICE, GPUS, SERVERS, CARDS) for n in msg.numbers_in(item.start, item.end)
        ):
            with_numbers += 1
    return with_numbers <= 1


def names_foreign_money(text: str) -> bool:
    """Whether `text` names a currency outside the contract (€, £, HK$, S$, 港币...): its
    prices are read with no currency, and must not be taken for the group's own."""
    return _FOREIGN_MONEY.search(text.lower()) is not None


def parse_offers(text: str) -> list[Offer]:
    """Every buy or sell offer in one chat message, in the order the message states them.

    Returns an empty list for chat that is not an offer: questions, news, gossip, market talk,
    vouchers, rules and finished deals. Never raises on any string.
    """
    msg = _read_message(text[:MAX_CHARS])
    if msg is None:
        return []
    models = msg.models
    if len(models) == 1:  # most posts: one model, one offer, read as a whole
        return _read_item(msg, 0, len(msg.low), models)
    items, frame_spans = _items(msg, models)
    if not items:
        return []
    if _one_offer(msg, items):
        kept = [hit for item in items for hit in item.models]
        return _read_item(msg, 0, len(msg.low), kept)

    side, side_strong = _survey(msg, msg.hits)[:2]
    frames = [(span, _frame(msg, *span)) for span in frame_spans]
    # Footers are the frame lines after the last item; headers the ones just before an item.
    footers = [frame for (start, _), frame in frames if start >= items[-1].end][:_FRAMES]
    sibling_deal: dict[Side, Deal] = {}
    line_places: dict[tuple[int, int], str | None] = {}
    offers: list[Offer] = []
    f = 0
    for item in items:
        while f < len(frames) and frames[f][0][0] < item.start:
            f += 1
        around = [frame for _, frame in reversed(frames[max(0, f - _FRAMES) : f])] + footers
        if item.prefix is not None and item.prefix[1] > item.prefix[0]:
            around.insert(0, _frame(msg, *item.prefix))  # "Our DC in Houston has ..., and ..."
        if item.line is not None and item.line not in line_places:
            line_places[item.line] = _survey(msg, msg.hits_in(*item.line))[4]
        scope = _Scope(around, side, side_strong, sibling_deal, line_places)
        offers.extend(_read_item(msg, item.start, item.end, item.models, scope, item.line))
    return offers
