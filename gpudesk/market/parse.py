"""Read buy and sell offers out of a chat message: `parse_offers(text) -> list[Offer]`.

The parser is a pure function over the message text (no I/O, clock or shared state). It works
in passes over one normalised copy of the text (NFKC, lower case):

1. **Cues.** One Aho-Corasick automaton, built at import from the catalog, the gazetteer and
   the keyword tables below, finds models, form factors, places, intent words (出/收/WTS/WTB),
   deal words (租/lease/出售), question, news and finished-deal markers in a single scan.
2. **Numbers.** One regex finds every number with its currency, multiplier (w/万/k) and the
   words around it; each is classified on its own as a price, a count of GPUs or servers,
   GPUs per server, memory, or a distractor (phone, date, network speed, RAM, CPU model...).
3. **Items.** Lines (and `;`/`。` clauses) that name a model are items; a line naming two
   different models is split between them. Lines without a model are headers or footers whose
   intent, place, currency and price unit apply to the items they frame. A message with one item
   is read as a whole, so a multi-line post about one offer keeps all its details.
4. **Offers.** For each item the counts are resolved against each other (`8卡 … 10台` is ten
   8-GPU servers; `8x H100 nodes, 4 nodes` is four), the first price gets its unit and period,
   and intent, deal, place and currency come from the item, else its frame, else the message.

Questions, news, gossip, market talk, vouchers and finished deals give no offers.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import ahocorasick

from gpudesk.market import catalog, places
from gpudesk.market.offer import Currency, Deal, Offer, PricePer, QuantityUnit, Side

__all__ = ["parse_offers"]

SELL, BUY = Side.SELL, Side.BUY
SALE, RENT = Deal.SALE, Deal.RENT
GPU, SERVER = QuantityUnit.GPU, QuantityUnit.SERVER
CNY, USD = Currency.CNY, Currency.USD

# ---------------------------------------------------------------------------------------------
# Cues: what a keyword says about a post.
# ---------------------------------------------------------------------------------------------

MODEL, VARIANT, PLACE, INTENT, DEAL, FLIP, QUESTION, VETO, DONE, NEUTRAL, NUMWORD, MONEY = range(
    12
)


@dataclass(frozen=True, slots=True)
class _Cue:
    """The meaning of one keyword. `strong` intents beat weak ones (现货, available, 有)."""

    kind: int
    side: Side | None = None
    strong: bool = False
    deal: Deal | None = None
    deal_strong: bool = False
    have: bool = False  # "I have": inside a question ("有 H100 吗?") it asks instead
    value: object = None


def _cue(kind: int, **fields: object) -> _Cue:
    return _Cue(kind, **fields)  # type: ignore[arg-type]


# Keyword tables: (spellings, meaning). Spellings are lower case; English ones match whole
# words only. Longer spellings win over the shorter ones inside them (出租 over 出, 收到 over 收).
_KEYWORDS: tuple[tuple[tuple[str, ...], _Cue], ...] = (
    # --- selling ---
    (
        ("出", "急出", "低价出", "特价出", "现出", "wts", "selling", "sell", "offering"),
        _cue(INTENT, side=SELL, strong=True),
    ),
    (
        ("出售", "急售", "在售", "卖", "售", "转让", "急转", "甩卖", "甩货", "for sale"),
        _cue(INTENT, side=SELL, strong=True, deal=SALE, deal_strong=True),
    ),
    (
        ("liquidating", "liquidate", "liquidation", "clearance", "清仓", "清货", "甩"),
        _cue(INTENT, side=SELL, strong=True, deal=SALE),
    ),
    (
        (
            "出租",
            "招租",
            "对外出租",
            "可租",
            "for rent",
            "for lease",
            "leasing",
            "renting",
            "renting out",
            "rent out",
            "lease out",
        ),
        _cue(INTENT, side=SELL, strong=True, deal=RENT, deal_strong=True),
    ),
    (
        ("有没有要", "谁要", "有要的", "要的私聊", "要的联系", "who needs", "anyone need"),
        _cue(INTENT, side=SELL, strong=True),
    ),
    (
        ("anyone needs", "if you need", "if u need", "if anyone needs"),
        _cue(INTENT, side=SELL, strong=True),
    ),
    (
        ("供应", "供货", "提供", "可提供", "处理", "offer", "supply", "supplying"),
        _cue(INTENT, side=SELL),
    ),
    (
        ("有需要的", "如有需要", "需要的私聊", "需要的联系", "需要的找我", "有需求", "有意者"),
        _cue(INTENT, side=SELL),
    ),
    (
        (
            "有",
            "有货",
            "现货",
            "现有",
            "还有",
            "库存",
            "闲置",
            "拥有",
            "available",
            "avail",
            "in stock",
            "have",
            "we have",
            "i have",
            "got",
            "inventory",
            "spot",
        ),
        _cue(INTENT, side=SELL, have=True),
    ),
    (("ready to ship", "new in box", "brand new"), _cue(INTENT, side=SELL, deal=SALE)),
    # --- buying ---
    (
        (
            "收",
            "急收",
            "高价收",
            "长期收",
            "大量收",
            "求货",
            "急求",
            "找",
            "寻找",
            "寻求",
            "需要",
            "急需",
            "想要",
            "谁有",
            "哪里有",
            "哪有",
            "有多少要多少",
            "有的私聊",
            "有货的",
            "有资源的",
            "能出",
            "能供",
            "wtb",
            "looking for",
            "seeking",
            "sourcing",
            "need",
            "needs",
            "needed",
            "in need of",
            "want",
            "wants",
            "wanted",
            "bid",
            "bidding",
            "require",
            "requires",
            "requirement",
            "rfq",
            "procure",
            "procuring",
            "acquire",
            "who has",
            "who's got",
        ),
        _cue(INTENT, side=BUY, strong=True),
    ),
    (
        (
            "求购",
            "收购",
            "回收",
            "高价回收",
            "购买",
            "想买",
            "买",
            "buying",
            "buy",
            "looking to buy",
            "want to buy",
            "wanna buy",
            "purchasing",
        ),
        _cue(INTENT, side=BUY, strong=True, deal=SALE, deal_strong=True),
    ),
    (
        (
            "求租",
            "想租",
            "急租",
            "wtl",
            "wtr",
            "looking to rent",
            "looking to lease",
            "want to rent",
            "want to lease",
            "need to rent",
        ),
        _cue(INTENT, side=BUY, strong=True, deal=RENT, deal_strong=True),
    ),
    (
        ("求", "寻", "采购", "需求", "预算", "budget", "target", "up to", "paying"),
        _cue(INTENT, side=BUY),
    ),
    # --- "anyone ...": the poster wants what the others would offer ---
    (
        ("有人", "有没有", "有没有人", "有谁", "谁", "哪位", "哪个", "哪家"),
        _cue(FLIP),
    ),
    (("anyone", "anybody", "any1", "does anyone", "is anyone", "any one"), _cue(FLIP)),
    # --- sale against rent ---
    (
        (
            "租",
            "租赁",
            "租用",
            "月租",
            "年租",
            "短租",
            "长租",
            "起租",
            "租期",
            "日租",
            "时租",
            "包月",
            "卡时",
            "机时",
            "裸金属",
            "lease",
            "leased",
            "rental",
            "rentals",
            "rent",
            "reserved",
            "bare metal",
            "bare-metal",
            "hourly",
            "per hour",
            "per month",
            "monthly",
            "on-demand",
            "on demand",
        ),
        _cue(DEAL, deal=RENT, deal_strong=True),
    ),
    (
        ("算力", "capacity", "compute", "instances", "instance", "gpu cloud"),
        _cue(DEAL, deal=RENT),
    ),
    (("purchase", "整机出售"), _cue(DEAL, deal=SALE, deal_strong=True)),
    (
        (
            "二手",
            "全新",
            "used",
            "提货",
            "自提",
            "面交",
            "顺丰",
            "包邮",
            "发货",
            "交货",
            "pickup",
            "pick up",
            "shipping",
            "ship",
            "warehouse",
            "仓库",
            "delivery",
            "warranty",
            "保修",
            "先款后货",
        ),
        _cue(DEAL, deal=SALE),
    ),
    # --- not an offer: questions ---
    (
        (
            "什么价",
            "啥价",
            "多少钱",
            "价多少",
            "价格多少",
            "价格如何",
            "价格怎么样",
            "什么价格",
            "啥价格",
            "怎么卖",
            "多少一",
            "行情如何",
            "什么行情",
            "怎么样",
            "如何",
            "请问",
            "有懂的",
            "知道",
            "什么时候",
            "靠谱吗",
            "好不好",
            "值不值",
            "区别",
            "going for",
            "going rate",
            "how much",
            "what price",
            "what's the price",
            "price check",
            "any idea",
            "anyone know",
            "does anyone know",
            "is it worth",
            "any good",
            "how is",
            "how's",
            "how are",
            "thoughts on",
            "what do you think",
            "when will",
        ),
        _cue(QUESTION),
    ),
    # --- not an offer: news, gossip, market talk, vouchers, rules, warnings ---
    (
        (
            "听说",
            "据说",
            "传闻",
            "小道消息",
            "heard",
            "rumor",
            "rumour",
            "rumors",
            "reportedly",
            "[链接]",
            "[link]",
            "发布",
            "预计",
            "宣布",
            "财报",
            "禁令",
            "出口管制",
            "新闻",
            "announced",
            "announces",
            "launched",
            "launches",
            "news",
            "export control",
            "export controls",
            "掉到",
            "跌到",
            "涨到",
            "降到",
            "跌破",
            "market is",
            "market's",
            "nobody buying",
            "nobody is buying",
            "no one buying",
            "everyone selling",
            "everyone is selling",
            "everyone's selling",
            "都在卖",
            "没人买",
            "in some places",
            "算力券",
            "代金券",
            "优惠券",
            "voucher",
            "vouchers",
            "coupon",
            "free credits",
            "free credit",
            "群规",
            "本群规则",
            "规则",
            "禁止",
            "骗子",
            "冒充",
            "诈骗",
            "scam",
            "scammer",
            "scammers",
            "impersonating",
            "impersonate",
            "group rules",
            "reminder",
            "congrats",
            "congratulations",
            "恭喜",
        ),
        _cue(VETO),
    ),
    # --- not an offer any more: the deal is done ---
    (
        (
            "已出",
            "已售",
            "已租",
            "已成交",
            "成交了",
            "出了",
            "卖了",
            "卖掉",
            "租出去了",
            "已经出",
            "没货了",
            "已下架",
            "sold",
            "sold out",
            "deal done",
            "already sold",
        ),
        _cue(DONE),
    ),
    # --- words that contain a cue but mean something else ---
    (
        (
            "出差",
            "出来",
            "出去",
            "出现",
            "出价",
            "输出",
            "出口",
            "推出",
            "支出",
            "出错",
            "出问题",
            "出故障",
            "出厂",
            "出发",
            "出门",
            "收到",
            "收益",
            "收费",
            "收款",
            "收入",
            "接收",
            "收藏",
            "签收",
            "验收",
            "收货",
            "回收价",
            "税收",
            "找我",
            "找不到",
            "有意",
            "所有",
            "没有",
            "有限",
            "有点",
            "只有",
            "具有",
            "有的",
            "要求",
            "求助",
            "供需",
            "买卖",
            "卖家",
            "买家",
            "卖方",
            "买方",
            "售后",
            "售价",
            "haven't",
            "havent",
            "no need",
            "as needed",
            "if needed",
            "please",
        ),
        _cue(NEUTRAL),
    ),
    # --- money named apart from a price ("U 结算", "pay in USDT") ---
    (("usd", "usdt", "美金", "美元", "u结算", "u 结算", "付u", "us dollars"), _cue(MONEY, value=USD)),
    (("rmb", "cny", "人民币"), _cue(MONEY, value=CNY)),
)

# English number words become digits for counting ("one HGX B200 server").
_NUMBER_WORDS = {
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


def _ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _word_bounded(text: str, start: int, end: int) -> bool:
    """An English keyword must be a whole word: no ASCII letter or digit glued on either side."""
    return not (
        (start > 0 and _ascii_alnum(text[start]) and _ascii_alnum(text[start - 1]))
        or (end < len(text) and _ascii_alnum(text[end - 1]) and _ascii_alnum(text[end]))
    )


_Check = Callable[[str, int, int], bool]


def _build_automaton() -> ahocorasick.Automaton:
    """All dictionary look-ups in one automaton: value (length, cue, boundary check, cased)."""
    entries: dict[str, tuple[int, _Cue, _Check | None, str | None]] = {}

    def add(key: str, cue: _Cue, check: _Check | None, cased: str | None = None) -> None:
        if key in entries and entries[key][1] != cue:
            raise ValueError(f"keyword {key!r} has two meanings")
        if check is _word_bounded and not (_ascii_alnum(key[0]) or _ascii_alnum(key[-1])):
            check = None  # Chinese words have no word boundaries to check
        entries[key] = (len(key), cue, check, cased)

    for alias, query in catalog.ALIASES.items():
        add(alias, _Cue(MODEL, value=query), catalog.model_bounded)
    for alias, variant in catalog.VARIANT_ALIASES.items():
        add(alias, _Cue(VARIANT, value=variant), catalog.variant_bounded)
    for alias, name in places.ALIASES.items():
        add(alias, _Cue(PLACE, value=name), _word_bounded)
    for alias, name in places.CASED_ALIASES.items():
        add(alias.lower(), _Cue(PLACE, value=name), _word_bounded, alias)
    for spellings, cue in _KEYWORDS:
        for key in spellings:
            add(key, cue, _word_bounded)
    for word, number in _NUMBER_WORDS.items():
        add(word, _Cue(NUMWORD, value=number), _word_bounded)

    automaton = ahocorasick.Automaton()
    for key, value in entries.items():
        automaton.add_word(key, value)
    automaton.make_automaton()
    return automaton


_AUTOMATON = _build_automaton()


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int
    cue: _Cue


# ---------------------------------------------------------------------------------------------
# Numbers: one token per number, classified from the words right around it.
# ---------------------------------------------------------------------------------------------

# Roles a number can play.
PRICE, GPUS, SERVERS, CARDS, PER_SERVER, MEMORY, X_MODEL, X_THING, KUAI, BARE, QTY = range(11)

_MODEL_MARK, _VARIANT_MARK = "\x01", "\x02"  # model/variant names blanked out for number scans

_NUMBER = re.compile(
    r"(?:(?P<x>(?<![a-z])[x×*])\s*"  # "x 24", "*8": a count after a model
    r"|(?P<cur>us\$|\$|¥|(?<![a-z])(?:usd|rmb|cny)|人民币|美金|美元)\s*"
    r"|(?<![a-z0-9_])(?<![a-z]-)(?<!\d\.))"  # not glued to a product code (NF5688, SYS-821GE)
    r"(?P<num>\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?)"
    r"(?:\s?(?P<mult>百万|万|亿|千|w(?![a-z])(?!/\s)|k(?![a-z])|m(?![a-z])|mn(?![a-z])"
    r"|million(?![a-z])))?"
    r"(?:\s?(?P<cur2>元|块|rmb|cny|usdt|usd|美元|美金|人民币|刀|u(?![a-z])))?"
)
_MULTIPLIERS = {
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
_CJK_MULTIPLIERS = frozenset({"万", "w", "亿", "千", "百万"})
_USD_MARKS = frozenset({"$", "us$", "usd", "usdt", "美元", "美金", "u", "刀"})
_CNY_MARKS = frozenset({"¥", "rmb", "cny", "人民币", "元", "块"})

# After a number: dates, durations, speeds, disks, RAM, CPU models, percentages, times of day.
_NOT_A_COUNT_AFTER = re.compile(
    r"\s*(?:个多?月|月(?!租|付)|年(?!租|付)|周|天|日|号|个?小时|点|%|度|核|线程|路|岁|分钟"
    r"|:\d|\+|[a-z]{1,2}\+|[-/.]\d{1,2}[-/.]\d|-\d{5,}"
    r"|/\s*(?:度|kwh)"
    r"|-?\s*(?:months?|mos?|mths?|years?|yrs?|weeks?|wks?|days?|hours?|hrs?|mins?|minutes?"
    r"|am|pm)(?![a-z])"
    r"|t(?:b|bps)?(?![a-z0-9])|[gm]bps|gb/s|[gm]b?\s*(?:ib|infiniband|roce|网卡|网络|以太网|带宽"
    r"|ethernet|nic)(?![a-z])|g?b?\s*(?:内存|ram|ddr\d?|ssd|nvme|硬盘|系统盘|数据盘|存储|disk|hdd)"
    r"|kw|mw|卡时)"
)
# Before a number: the thing it measures is not a GPU count or price.
_NOT_A_COUNT_BEFORE = re.compile(
    r"(?:(?<![a-z])(?:ib|infiniband|roce|ndr|hdr|nic|ethernet|bandwidth|uplink|ram|ddr\d?|ssd"
    r"|nvme|storage|disk|cpu|xeon|epyc|intel|amd|platinum|tdp|power|deposit|fee"
    r"|min(?:imum)?\.?(?:\s*order)?|moq|at least|v|ver|version)"
    r"|网卡|带宽|网络|以太网|光口|内存|硬盘|存储|系统盘|数据盘|至强|双路|处理器|铂金|金牌"
    r"|电费|电价|功耗|电源|押金|定金|订金|保证金|运费|税点|手续费"
    r"|最少|起订|最低|至少|起租|最短|第|\+)\s*[:：]?\s*[x×*]?\s*$"
)
_GENERATION_BEFORE = re.compile(r"(?:pcie|pci-e|gen)\s*$")  # "PCIe 5.0" is a bus version
_YEAR_BEFORE = re.compile(r"(?:q[1-4]|in|by|since|from|until|till|before|after|early|late|mid)\s*$")
_MIN_AFTER = re.compile(r"\s*(?:[卡张台片]\s*)?起(?!价|租\s*\d|租期)")

# The unit right after a count.
_COUNTER = re.compile(
    r"\s*(?:"
    r"(?P<each>(?:gpus?|cards?|npus?|卡|x)\s*(?:each|apiece|/\s*(?:node|server|box|台|机)"
    r"|per\s+(?:node|server|box|machine)|每台))"
    r"|(?P<card>卡(?!时))(?P<cardbox>\s*(?:整机|服务器|机器|主机|机|servers?|nodes?|box(?:es)?"
    r"|节点)(?![a-z]))?"
    r"|(?P<gpu>张|片|颗|pcs?(?![a-z])|pieces?(?![a-z])|cards?(?![a-z])|gpus?(?![a-z])"
    r"|npus?(?![a-z]))"
    r"|(?P<server>台|节点|套|nodes?(?![a-z])|servers?(?![a-z])|box(?:es)?(?![a-z])"
    r"|machines?(?![a-z])|hosts?(?![a-z]))"
    r"|(?P<dash>-\s*(?:gpus?|cards?|npus?|way)(?![a-z])|卡机)"
    r"|(?P<x>[x×*])"
    r"|(?P<mem>gb?(?![a-z0-9]))"
    r"|(?P<avail>available|avail|in stock|left|remaining|现货)(?![a-z])"
    r")"
)
# "one 8x RTX 4090 box": the first number counts what the second describes.
_BEFORE_COUNT = re.compile(r"\s+\d+\s*(?:[x×*]|-\s*gpu|卡)")
_AFTER_X = re.compile(r"\s*(?:(?P<each>each|apiece)|(?P<close>\))|(?P<model>[\x02\s]*\x01))")
_BEFORE_MODEL = re.compile(r"[\s\x02]*\x01")
_SERVER_BEFORE_X = re.compile(
    r"(?:servers?|nodes?|box(?:es)?|machines?|整机|服务器|机器|主机|台|节点|\d\s*卡)\s*[,，]?\s*$"
)
# Whether the model is followed by a server noun: "HGX H100 servers", "H800 8卡 nodes".
_SERVER_AFTER_MODEL = re.compile(
    r"[\x01\x02\s-]*(?:\d+\s*gb?\s*)?[\x02\s]*(?:(?P<plural>servers|nodes|boxes|machines|systems)"
    r"|(?P<single>server|node|box|machine|system|整机|服务器|机器|主机|节点))(?![a-z])"
)
_QTY_BEFORE = re.compile(r"(?:qty|quantity|数量|数目|count)\s*[:：]?\s*$")

# A price's unit and period: "/GPU/hr", "/台/月", " per node per month", "一张", " each".
_PER_ATOM = re.compile(
    r"\s*(?P<sep>/|per\s+|a\s+(?=[a-z])|每\s*|一(?=[台张卡块片]))?\s*"
    r"(?:(?P<gh>卡时|卡小时|gpu[\s-]?h(?:ou)?rs?(?![a-z])|gpu[\s-]?h(?![a-z]))"
    r"|(?P<month>个月|月|months?(?![a-z])|mos?(?![a-z])|mth(?![a-z]))"
    r"|(?P<year>年|years?(?![a-z])|yrs?(?![a-z])|annum(?![a-z]))"
    r"|(?P<hour>小时|时|hours?(?![a-z])|hrs?(?![a-z])|h(?![a-z]))"
    r"|(?P<gpu>卡|张|片|块|颗|gpus?(?![a-z])|cards?(?![a-z])|pcs?(?![a-z])|pieces?(?![a-z])"
    r"|npus?(?![a-z]))"
    r"|(?P<server>台|节点|整机|nodes?(?![a-z])|servers?(?![a-z])|box(?:es)?(?![a-z])"
    r"|machines?(?![a-z])|systems?(?![a-z])|units?(?![a-z]))"
    r"|(?P<each>each(?![a-z])|ea(?![a-z])\.?|apiece(?![a-z])))"
)
# Words before a price that say what it is for: "月租 7w", "每卡每月 3500元", "单卡 9.6w".
_SPAN_BEFORE = re.compile(
    r"(?P<month>月租|月付|每月|包月|按月|monthly|per month)|(?P<year>年租|年付|每年|包年|yearly"
    r"|annual|per year)|(?P<hour>时租|每小时|hourly|per hour)"
)
_UNIT_BEFORE = re.compile(
    r"(?P<gpu>每卡|单卡|按卡|每张|单张|每片|per gpu|per card)|(?P<server>每台|单台|每节点|整机"
    r"|per node|per server|per box)"
)
_PRICE_BEFORE = re.compile(
    r"(?:月租|年租|租金|预算|单价|价格|报价|售价|价|budget|target|price|up to|paying|pay|@|at"
    r"|rate|cost|asking|只要|仅)\s*[:：]?\s*$"
)
_CLAUSE_CUT = re.compile(r".*[,，;。\n!?]", re.S)

_CN_COUNT = re.compile(
    r"(?<![数几多上每单第])([一二两三四五六七八九十百千万]+)\s*(台|张|卡(?!时)|片|块|套|节点)"
)
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8}
_CN_DIGITS["九"] = 9
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000}

_PHONE = re.compile(
    r"(?<![\d.])(?:\+\d{1,3}[\s-]?\d{2,5}(?:[\s-]?\d{2,5}){1,3}|1[3-9]\d(?:[\s-]?\d{4}){2}"
    r"|0\d{2,3}-\d{7,8})(?![\d.])"
)
_CONTACT = re.compile(
    r"https?://\S+|www\.\S+|(?<![a-z0-9._%+-])[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+"
    r"|(?<![\w@])@[\w.]+|(?<![a-z0-9_])(?:vx|wx|v信|微信号?|wechat|weixin|tg|telegram|whatsapp)"
    r"\s*[:：]?\s*[a-z0-9_+-]{4,}|(?<![a-z0-9_])[a-z][a-z0-9]*(?:_[a-z0-9]+)+"
)
_SEGMENT_BREAK = re.compile(r"[\n\r;。]+")
_CLAUSE_BREAK = re.compile(r"[\n\r;。!?]")
_SPLIT_MARK = re.compile(r"[,，、;|!?]|\.\s")
_COUNT_TAIL = re.compile(r"(?:\d[\d,.]*\s*[x×*]?\s*)$")
_LIST_GAP = re.compile(r"[\s\x02/、,，&+|]*(?:和|及|与|或|or|and)?[\s\x02/、,，&+|]*")
_BARE_ITEM = re.compile(r"[\s\x01\x02\-•*·>()]*(?:\d+\s*gb?)?[\s\x01\x02\-•*·>():：]*")
_SERVER_WORD = re.compile(
    r"台|整机|服务器|机器|节点|主机|卡机|(?<![a-z])(?:servers?|nodes?|box(?:es)?|machines?)(?![a-z])"
)
_PER_HINT = re.compile(
    r"(?:per|/|每)\s*(?:(?P<gh>gpu[\s-]?h(?:ou)?rs?|卡时)|(?P<gpu>gpu|card|卡|张)|(?P<server>node"
    r"|server|box|台))(?:\s*(?:per|/|每)?\s*(?:(?P<hour>hours?|hrs?|h|小时|时)|(?P<month>months?"
    r"|mo|月)|(?P<year>years?|yr|年)))?|卡时"
)


@dataclass(slots=True)
class _Num:
    """One number in the text and the role it plays."""

    start: int
    end: int
    role: int
    value: Decimal
    unit: QuantityUnit | None = None  # prices: what one price buys
    span: str | None = None  # prices: hour / month / year
    currency: Currency | None = None  # prices: stated currency (or implied by 万/w)
    chinese: bool | None = None  # prices: written with Chinese units (元/卡时, /台)
    each: bool = False  # prices: "each" (per whatever is counted)
    plural: bool = False  # model counts: "8x H100 nodes" vs "8x H100 node"
    server_after: bool = False  # model counts: a server noun follows the model
    paren: bool = False  # counts: inside brackets, "(8 GPUs)"


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None


def _whole(value: Decimal) -> Decimal:
    """75000.0 -> 75000, 1.70 -> 1.7; keeps the contract's numbers tidy."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _chinese_number(text: str) -> int | None:
    """两 -> 2, 十 -> 10, 二十 -> 20, 两百 -> 200, 千 -> 1000; None for "两三" and the like."""
    total, section, digit = 0, 0, None
    for char in text:
        if char in _CN_DIGITS:
            if digit is not None:
                return None
            digit = _CN_DIGITS[char]
        elif char in _CN_UNITS:
            unit = _CN_UNITS[char]
            if unit == 10_000:
                total = (total + section + (digit or 0)) * unit
                section = 0
            else:
                section += (1 if digit is None else digit) * unit
            digit = None
        else:
            return None
    return total + section + (digit or 0)


def _window(text: str, start: int, size: int = 14) -> str:
    """The words just before `start`, cut at the last clause break."""
    window = text[max(0, start - size) : start]
    cut = _CLAUSE_CUT.match(window)
    return window[cut.end() :] if cut else window


def _read_per(text: str, pos: int) -> tuple[int, QuantityUnit | None, str | None, bool, bool]:
    """Unit atoms after a price: (end, unit, span, each, chinese)."""
    unit: QuantityUnit | None = None
    span: str | None = None
    each = False
    chinese = False
    while True:
        m = _PER_ATOM.match(text, pos)
        if m is None or (m.group("sep") is None and m.group("each") is None):
            break
        kind = m.lastgroup
        if kind == "gh":
            unit, span = unit or GPU, span or "hour"
        elif kind in ("month", "year", "hour"):
            span = span or kind
        elif kind == "gpu":
            unit = unit or GPU
        elif kind == "server":
            unit = unit or SERVER
        else:
            each = True
        chinese = chinese or not m.group(kind)[0].isascii()
        pos = m.end()
    return pos, unit, span, each, chinese


def _scan_numbers(low: str, marked: str, phones: Sequence[tuple[int, int]]) -> list[_Num]:
    """Every number of the message with its role, in text order."""
    numbers: list[_Num] = []
    skip_until = 0
    for m in _NUMBER.finditer(marked):
        start, end = m.start(), m.end()
        if start < skip_until or any(a <= m.start("num") < b for a, b in phones):
            continue
        num = _classify(low, marked, m)
        if num is not None:
            numbers.append(num)
            skip_until = num.end
    if _has_cjk_count(low):
        _add_chinese_counts(low, numbers)
    return numbers


def _has_cjk_count(low: str) -> bool:
    return any(c in low for c in "台张卡片块套点")


def _add_chinese_counts(low: str, numbers: list[_Num]) -> None:
    """两台, 十台, 一台, 千卡: counts written in Chinese numerals."""
    taken = [(n.start, n.end) for n in numbers if n.role == PRICE]
    added = False
    for m in _CN_COUNT.finditer(low):
        if any(a <= m.start() < b for a, b in taken):
            continue  # "75w一台" is per server, not one server
        value = _chinese_number(m.group(1))
        if not value:
            continue
        counter = m.group(2)
        role = SERVERS if counter in ("台", "套", "节点") else CARDS if counter == "卡" else GPUS
        numbers.append(_Num(m.start(), m.end(), role, Decimal(value)))
        added = True
    if added:
        numbers.sort(key=lambda n: n.start)


def _classify(low: str, marked: str, m: re.Match[str]) -> _Num | None:
    """What one number is, from its own marks and the words right before and after it."""
    start, end = m.start(), m.end()
    digits = m.group("num")
    mult = m.group("mult")
    cur = m.group("cur")
    cur2 = m.group("cur2")
    x = m.group("x")

    if _NOT_A_COUNT_AFTER.match(low, end) or _MIN_AFTER.match(low, end):
        return None
    if mult == "w" and re.match(r"\s*(?:tdp|功耗|电源|psu)", low[end : end + 6]):
        return None  # 700W is a power rating
    before = _window(low, start)
    if _NOT_A_COUNT_BEFORE.search(before):
        return None
    if _GENERATION_BEFORE.search(before) and digits in ("3", "4", "5", "6", "3.0", "4.0", "5.0"):
        return None
    plain = digits.replace(",", "")
    if len(plain) >= 9 and "." not in plain:
        return None  # account numbers, IDs
    if len(plain) == 4 and plain.startswith("20") and mult is None and cur is None:
        if _YEAR_BEFORE.search(before) or low.startswith("年", end):
            return None
    value = _decimal(digits)
    if value is None:
        return None
    if cur2 == "u" and mult is None and value == value.to_integral_value() and value <= 10:
        if not low.startswith(("/", "每"), end):
            return None  # 4U chassis, not 4 USDT

    if x is None:
        price = _as_price(low, marked, m, value, before)
        if price is not None:
            return price
    if mult in ("m", "mn", "million"):
        return None
    if mult is not None:
        value = value * _MULTIPLIERS[mult]
    if cur2 == "块":
        return _Num(start, end, KUAI, value)
    if value <= 0 or x is not None and value != value.to_integral_value():
        return None
    if value != value.to_integral_value():
        return _Num(start, end, BARE, value)  # not a count; maybe a price in a price list
    return _as_count(low, marked, start, end, value, x is not None, before)


def _as_price(
    low: str, marked: str, m: re.Match[str], value: Decimal, before: str
) -> _Num | None:
    """The number as a price, if anything marks it as one."""
    mult, cur, cur2 = m.group("mult"), m.group("cur"), m.group("cur2")
    end, unit, span, each, chinese = _read_per(marked, m.end())
    marked_money = cur is not None or (cur2 is not None and cur2 != "块")
    has_sep = end > m.end() and not each
    if not (marked_money or mult in _CJK_MULTIPLIERS or has_sep):
        if each and (mult in ("k", "m") or value >= 100):
            pass
        elif _PRICE_BEFORE.search(before) and not _COUNTER.match(low, m.end()):
            if mult not in (None, "k"):
                return None
        else:
            return None
    if mult in ("m", "mn", "million") and not marked_money:
        return None
    if mult is not None:
        value = value * _MULTIPLIERS[mult]
    currency: Currency | None = None
    for mark in (cur, cur2):
        if mark is not None:
            mark = mark.strip()
            if mark in _USD_MARKS:
                currency = USD
            elif mark in _CNY_MARKS and currency is None:
                currency = CNY
    if currency is None and mult in _CJK_MULTIPLIERS:
        currency = CNY
    if span is None or unit is None:
        hint_span = _SPAN_BEFORE.search(before)
        if span is None and hint_span is not None:
            span = hint_span.lastgroup
            chinese = chinese or not hint_span.group(0).isascii()
        hint_unit = _UNIT_BEFORE.search(before)
        if unit is None and hint_unit is not None:
            unit = GPU if hint_unit.lastgroup == "gpu" else SERVER
    if unit is not None or span is not None:
        script: bool | None = chinese
    else:
        script = None
    return _Num(
        m.start(),
        end,
        PRICE,
        _whole(value),
        unit=unit,
        span=span,
        currency=currency,
        chinese=script,
        each=each,
    )


def _as_count(
    low: str, marked: str, start: int, end: int, value: Decimal, after_x: bool, before: str
) -> _Num | None:
    """The number as a count of GPUs or servers, GPUs per server, or memory."""
    paren = before.rstrip().endswith("(")
    c = _COUNTER.match(marked, end)
    kind = c.lastgroup if c is not None else None
    if kind == "cardbox":
        kind = "card"
    if c is not None and kind is not None:
        stop = c.end()
        if kind == "each":
            return _Num(start, stop, PER_SERVER, value)
        if kind == "card":
            role = PER_SERVER if c.group("cardbox") else CARDS
            return _Num(start, c.end("card"), role, value, paren=paren)
        if kind in ("gpu", "avail"):
            return _Num(start, stop, GPUS, value, paren=paren)
        if kind == "server":
            return _Num(start, stop, SERVERS, value)
        if kind == "dash":
            return _Num(start, stop, PER_SERVER if value <= 16 else GPUS, value)
        if kind == "mem":
            if after_x or int(value) not in catalog.MEMORY_SIZES:
                return None
            return _Num(start, stop, MEMORY, value)
        if kind == "x" and not after_x:
            return _x_count(marked, start, stop, value)
    if after_x:
        role = SERVERS if _SERVER_BEFORE_X.search(low, max(0, start - 16), start) else GPUS
        return _Num(start, end, role, value)
    if _BEFORE_MODEL.match(marked, end):
        return _model_count(marked, start, end, value, X_MODEL)
    if _QTY_BEFORE.search(before):
        return _Num(start, end, QTY, value)
    if _BEFORE_COUNT.match(marked, end):
        return _Num(start, end, X_THING, value)
    return _Num(start, end, BARE, value)


def _x_count(marked: str, start: int, stop: int, value: Decimal) -> _Num:
    """`8x ...`: a count of what follows, or GPUs per server (`(8x each)`)."""
    after = _AFTER_X.match(marked, stop)
    if after is not None and (after.group("each") or after.group("close")):
        return _Num(start, after.end(), PER_SERVER, value)
    if after is not None and after.group("model"):
        return _model_count(marked, start, stop, value, X_MODEL)
    return _Num(start, stop, X_THING, value)


def _model_count(marked: str, start: int, stop: int, value: Decimal, role: int) -> _Num:
    """`64x H100`, `512 H100`, `2x HGX H100 servers`: notes the server noun after the model."""
    model_at = marked.find(_MODEL_MARK, stop)
    model_end = model_at
    while model_end < len(marked) and marked[model_end] == _MODEL_MARK:
        model_end += 1
    noun = _SERVER_AFTER_MODEL.match(marked, model_end)
    return _Num(
        start,
        stop,
        role,
        value,
        server_after=noun is not None,
        plural=noun is not None and noun.group("plural") is not None,
    )


# ---------------------------------------------------------------------------------------------
# The message: normalised text, cues, numbers, items and their frames.
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Message:
    original: str  # NFKC text, original case (for "LA", "HK")
    low: str  # lower case, contacts blanked
    marked: str  # `low` with model and variant names blanked, number words as digits
    hits: list[_Hit]
    hit_starts: list[int]
    numbers: list[_Num]
    number_starts: list[int]
    clause_breaks: list[int]
    question: bool
    money: Currency | None

    def hits_in(self, start: int, end: int) -> list[_Hit]:
        i = bisect_left(self.hit_starts, start)
        j = bisect_left(self.hit_starts, end, i)
        return self.hits[i:j]

    def numbers_in(self, start: int, end: int) -> list[_Num]:
        i = bisect_left(self.number_starts, start)
        j = bisect_left(self.number_starts, end, i)
        return self.numbers[i:j]


@dataclass(slots=True)
class _Item:
    """A stretch of text about one model (or a list of models sharing the same words)."""

    start: int
    end: int
    models: list[_Hit]
    needs_evidence: bool = False  # a second model in a line must bring its own numbers or intent


@dataclass(slots=True)
class _Frame:
    """What a header or footer line says about the items it frames."""

    side: Side | None = None
    side_strong: bool = False
    deal: Deal | None = None
    deal_strong: bool = False
    place: str | None = None
    unit: QuantityUnit | None = None
    span: str | None = None
    per_server: int | None = None
    money: Currency | None = None


def _normalise(text: str) -> tuple[str, str]:
    original = unicodedata.normalize("NFKC", text)
    low = original.lower()
    if len(low) != len(original):  # a few letters grow when lower-cased; keep offsets aligned
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in original)
    if "@" in low or "://" in low or "www." in low or "_" in low or "vx" in low or "微信" in low:
        low = _CONTACT.sub(lambda m: " " * (m.end() - m.start()), low)
    return original, low


def _scan_cues(original: str, low: str) -> list[_Hit]:
    hits: list[_Hit] = []
    for last, (length, cue, check, cased) in _AUTOMATON.iter_long(low):
        start, end = last + 1 - length, last + 1
        if check is not None and not check(low, start, end):
            continue
        if cased is not None and original[start:end] != cased:
            continue
        hits.append(_Hit(start, end, cue))
    return hits


def _mark(low: str, hits: Iterable[_Hit]) -> str:
    """Blank model and variant names (so `4090` is not a number) and write number words as
    digits (so `one HGX B200 server` is counted)."""
    pieces: list[str] = []
    pos = 0
    for hit in hits:
        kind = hit.cue.kind
        if kind not in (MODEL, VARIANT, NUMWORD):
            continue
        pieces.append(low[pos : hit.start])
        width = hit.end - hit.start
        if kind == MODEL:
            pieces.append(_MODEL_MARK * width)
        elif kind == VARIANT:
            pieces.append(_VARIANT_MARK * width)
        else:
            digits = str(hit.cue.value)
            pieces.append(digits + " " * (width - len(digits)))
        pos = hit.end
    if not pieces:
        return low
    pieces.append(low[pos:])
    return "".join(pieces)


def _read_message(text: str) -> _Message | None:
    """Normalise and scan; None when the message cannot hold an offer."""
    original, low = _normalise(text)
    hits = _scan_cues(original, low)
    if not any(hit.cue.kind == MODEL for hit in hits):
        return None
    if any(hit.cue.kind == VETO for hit in hits):
        return None
    marked = _mark(low, hits)
    phones = [m.span() for m in _PHONE.finditer(low)] if any(c.isdigit() for c in low) else []
    numbers = _scan_numbers(low, marked, phones)
    money = next((hit.cue.value for hit in hits if hit.cue.kind == MONEY), None)
    return _Message(
        original=original,
        low=low,
        marked=marked,
        hits=hits,
        hit_starts=[hit.start for hit in hits],
        numbers=numbers,
        number_starts=[n.start for n in numbers],
        clause_breaks=[m.start() for m in _CLAUSE_BREAK.finditer(low)],
        question=any(hit.cue.kind == QUESTION for hit in hits) or "?" in low,
        money=money,  # type: ignore[arg-type]
    )


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


def _split_items(msg: _Message, start: int, end: int, models: list[_Hit]) -> list[_Item]:
    """One item per model named in a line; a list of models (`H100/H800`) shares the words."""
    groups: list[list[_Hit]] = [[models[0]]]
    for hit in models[1:]:
        if hit.cue.value.gpu == groups[-1][-1].cue.value.gpu:  # type: ignore[attr-defined]
            groups[-1].append(hit)
        else:
            groups.append([hit])
    if len(groups) == 1:
        return [_Item(start, end, models)]
    items: list[_Item] = [_Item(start, end, groups[0])]
    for group in groups[1:]:
        prev = items[-1]
        gap_start, gap_end = prev.models[-1].end, group[0].start
        gap = msg.marked[gap_start:gap_end]
        if _LIST_GAP.fullmatch(gap):
            prev.models.extend(group)  # "H100/H800 现货": one item per model, same words
            continue
        cut = _split_point(msg, gap_start, gap_end, gap)
        prev.end = cut
        items.append(_Item(cut, end, group, needs_evidence=True))
    return items


def _split_point(msg: _Message, gap_start: int, gap_end: int, gap: str) -> int:
    """Where the words of one model end and the next model's begin."""
    marks = list(_SPLIT_MARK.finditer(gap))
    if marks:
        return gap_start + marks[-1].end()
    intents = [hit.start for hit in msg.hits_in(gap_start, gap_end) if hit.cue.kind == INTENT]
    if intents:
        return intents[-1]
    tail = _COUNT_TAIL.search(gap)
    return gap_end - (len(tail.group(0)) if tail else 0)


def _items(msg: _Message) -> tuple[list[_Item], list[tuple[int, int]]]:
    """Items, and the model-free lines (headers and footers) around them."""
    items: list[_Item] = []
    frames: list[tuple[int, int]] = []
    models = [hit for hit in msg.hits if hit.cue.kind == MODEL]
    i = 0
    for start, end in _segments(msg.low):
        mine: list[_Hit] = []
        while i < len(models) and models[i].start < end:
            if models[i].start >= start:
                mine.append(models[i])
            i += 1
        if mine:
            items.extend(_split_items(msg, start, end, mine))
        elif msg.low[start:end].strip():
            frames.append((start, end))
    return items, frames


# ---------------------------------------------------------------------------------------------
# Reading one item.
# ---------------------------------------------------------------------------------------------


def _side(msg: _Message, hits: Sequence[_Hit]) -> tuple[Side | None, bool]:
    """The first strong intent (else the first weak one), turned round inside "anyone ...?"."""
    weak: Side | None = None
    flip_at: int | None = None
    for hit in hits:
        cue = hit.cue
        if cue.kind == FLIP:
            flip_at = hit.start
            continue
        if cue.kind != INTENT or cue.side is None:
            continue
        side = cue.side
        if flip_at is not None and _same_clause(msg, flip_at, hit.start):
            side = side.opposite
        elif cue.have and _asks(msg, hit.end):
            side = side.opposite  # "有 H100 吗?" asks for one
        if cue.strong:
            return side, True
        if weak is None:
            weak = side
    return weak, False


def _same_clause(msg: _Message, a: int, b: int) -> bool:
    i = bisect_left(msg.clause_breaks, a)
    return i >= len(msg.clause_breaks) or msg.clause_breaks[i] > b


def _asks(msg: _Message, pos: int) -> bool:
    """Whether the clause around `pos` is a question."""
    i = bisect_left(msg.clause_breaks, pos)
    stop = msg.clause_breaks[i] if i < len(msg.clause_breaks) else len(msg.low)
    if stop < len(msg.low) and msg.low[stop] == "?":
        return True
    return msg.low[pos:stop].rstrip().endswith(("吗", "么", "嘛"))


def _deal(hits: Sequence[_Hit]) -> tuple[Deal | None, bool]:
    """Strong deal words beat weak ones; at equal strength the first wins."""
    weak: Deal | None = None
    for hit in hits:
        cue = hit.cue
        if cue.deal is None:
            continue
        if cue.deal_strong:
            return cue.deal, True
        if weak is None:
            weak = cue.deal
    return weak, False


def _place(hits: Sequence[_Hit]) -> str | None:
    """The most specific place named; the first at equal rank."""
    best: str | None = None
    for hit in hits:
        if hit.cue.kind == PLACE:
            name: str = hit.cue.value  # type: ignore[assignment]
            if best is None or places.RANK[name] > places.RANK[best]:
                best = name
    return best


def _frame(msg: _Message, start: int, end: int) -> _Frame:
    hits = msg.hits_in(start, end)
    side, side_strong = _side(msg, hits)
    deal, deal_strong = _deal(hits)
    frame = _Frame(side, side_strong, deal, deal_strong, _place(hits))
    per = _PER_HINT.search(msg.low, start, end)
    if per is not None:
        if per.group("gh") or per.group(0) == "卡时":
            frame.unit, frame.span = GPU, "hour"
        else:
            frame.unit = GPU if per.group("gpu") else SERVER if per.group("server") else None
            frame.span = per.group("hour") and "hour" or per.group("month") and "month"
            frame.span = frame.span or (per.group("year") and "year") or None
        frame.deal = frame.deal or (RENT if frame.span else None)
    for num in msg.numbers_in(start, end):
        if num.role == PER_SERVER:
            frame.per_server = int(num.value)
            break
    frame.money = next(
        (hit.cue.value for hit in hits if hit.cue.kind == MONEY),  # type: ignore[misc]
        None,
    )
    return frame


@dataclass(slots=True)
class _Counts:
    quantity: int | None = None
    unit: QuantityUnit | None = None
    per_server: int | None = None


def _counts(msg: _Message, nums: Sequence[_Num], start: int, end: int) -> _Counts:
    """Resolve the counts of an item against each other."""
    servers: int | None = None
    gpus: int | None = None
    per_server: int | None = None
    for n in nums:
        if n.role == PER_SERVER and per_server is None and n.value <= 16:
            per_server = int(n.value)
        elif n.role == SERVERS and servers is None:
            servers = int(n.value)
    priced = any(n.role == PRICE for n in nums)
    things = [n for n in nums if n.role == X_THING]
    models = [n for n in nums if n.role == X_MODEL]
    server_words = _SERVER_WORD.search(msg.low, start, end) is not None
    if servers is None and things and (per_server or models or server_words):
        servers = int(things[0].value)
    elif things and gpus is None and servers is None:
        gpus = int(things[0].value)
    for n in models:
        value = int(n.value)
        if servers is not None:
            if per_server is None and value <= 16:
                per_server = value
        elif n.server_after and (per_server is not None or n.plural or value > 16):
            servers = value
        elif n.server_after and value == 1:
            servers = 1  # "one HGX B200 server"
        elif n.server_after and value <= 16:
            per_server = per_server or value
        elif gpus is None:
            gpus = value
    for n in nums:
        value = int(n.value)
        if n.role == CARDS:
            if servers is not None:
                if per_server is None and value <= 16:
                    per_server = value
            elif value <= 8 and gpus is None:
                per_server = per_server or value
            elif gpus is None:
                gpus = value
        elif n.role == GPUS:
            if servers is not None:
                if per_server is None and value <= 16:
                    per_server = value
            elif gpus is None:
                if n.paren and value <= 16 and server_words:
                    per_server = per_server or value
                else:
                    gpus = value
        elif n.role == KUAI and priced and gpus is None and servers is None:
            gpus = value  # "300块 8.8w/块": 块 counts cards when the price is elsewhere
        elif n.role == QTY and servers is None and gpus is None:
            if server_words:
                servers = value
            else:
                gpus = value
    if servers is not None:
        return _Counts(servers, SERVER, per_server)
    if gpus is not None:
        return _Counts(gpus, GPU, per_server)
    return _Counts(None, None, per_server)


def _pick_price(nums: Sequence[_Num], counts: _Counts, frame: _Frame | None) -> _Num | None:
    """The item's price: the first one stated; `N块` and bare numbers only when nothing else fits."""
    prices = [n for n in nums if n.role == PRICE]
    if prices:
        return prices[0]
    for n in nums:
        if n.role == KUAI and (counts.quantity is not None or n.value >= 1000):
            return _Num(n.start, n.end, PRICE, _whole(n.value), currency=CNY, chinese=True)
    if frame is not None and (frame.money or frame.unit or frame.span):
        for n in nums:  # "H100 1.70" under "Price list (USD per GPU hour)"
            if n.role == BARE:
                return _Num(n.start, n.end, PRICE, _whole(n.value))
    return None


_HOURLY_GPU_MAX = {USD: Decimal(12), CNY: Decimal(60)}
_MONTHLY_GPU_MAX = {USD: Decimal(4000), CNY: Decimal(25000)}


def _price_per(
    price: _Num,
    deal: Deal,
    counts: _Counts,
    currency: Currency,
    server_words: bool,
    frame: _Frame | None,
) -> PricePer:
    """What one price buys: per GPU or server, and per hour, month or year when rented."""
    unit = price.unit
    span = price.span
    if unit is None and price.each and counts.unit is not None:
        unit = counts.unit
    if frame is not None:
        unit = unit or frame.unit
        span = span or frame.span
    serverish = counts.unit is SERVER or server_words or counts.per_server is not None
    if deal is SALE and span is None:
        if unit is None:
            unit = counts.unit or (SERVER if serverish else GPU)
        return PricePer.SERVER if unit is SERVER else PricePer.GPU
    if unit is None:
        if span == "hour":
            unit = GPU if price.value <= _HOURLY_GPU_MAX[currency] else SERVER
        elif counts.unit is not None:
            unit = counts.unit
        elif serverish:
            unit = SERVER
        else:
            unit = GPU if price.value <= _MONTHLY_GPU_MAX[currency] else SERVER
    if span is None:
        limit = _HOURLY_GPU_MAX[currency] * (8 if unit is SERVER else 1)
        span = "hour" if price.value <= limit else "month"
    return PricePer(f"{'server' if unit is SERVER else 'gpu'}_{span}")


def _currency(msg: _Message, price: _Num, frame: _Frame | None) -> Currency:
    if price.currency is not None:
        return price.currency
    if msg.money is not None:
        return msg.money
    if frame is not None and frame.money is not None:
        return frame.money
    if price.chinese is not None:
        return CNY if price.chinese else USD
    return CNY if any("\u4e00" <= c <= "\u9fff" for c in msg.low) else USD


def _variant(hits: Sequence[_Hit], models: Sequence[_Hit]) -> str | None:
    for hit in models:
        if hit.cue.value.variant:  # type: ignore[attr-defined]
            return hit.cue.value.variant  # type: ignore[attr-defined, no-any-return]
    for hit in hits:
        if hit.cue.kind == VARIANT:
            return hit.cue.value  # type: ignore[return-value]
    return None


def _offers(
    msg: _Message,
    item: _Item,
    span: tuple[int, int],
    frames: Sequence[_Frame],
    message_side: tuple[Side | None, bool],
    message_deal: tuple[Deal | None, bool],
) -> list[Offer]:
    start, end = span
    hits = msg.hits_in(start, end)
    if any(hit.cue.kind == DONE for hit in hits):
        return []
    nums = msg.numbers_in(start, end)
    own_side, own_strong = _side(msg, hits)
    if item.needs_evidence and own_side is None and not nums:
        return []

    side, strong = own_side, own_strong
    for frame in frames:
        if side is None or (not strong and frame.side_strong):
            if frame.side is not None:
                side, strong = frame.side, frame.side_strong
    if side is None or not strong:
        if message_side[0] is not None and (side is None or message_side[1]):
            side, strong = message_side
    counts = _counts(msg, nums, start, end)
    frame = next((f for f in frames if f.unit or f.span or f.money), None)
    price = _pick_price(nums, counts, frame)
    if side is None:
        if msg.question or (price is None and counts.quantity is None):
            return []
        side = SELL  # a bare listing with numbers is stock on offer
    elif not strong and msg.question:
        return []

    deal, deal_strong = _deal(hits)
    if price is not None and price.span is not None:
        deal, deal_strong = RENT, True
    for f in frames:
        if deal is None or (not deal_strong and f.deal_strong):
            if f.deal is not None:
                deal, deal_strong = f.deal, f.deal_strong
    if deal is None or not deal_strong:
        if message_deal[0] is not None and (deal is None or message_deal[1]):
            deal = message_deal[0]
    deal = deal or SALE

    per_server = counts.per_server
    if per_server is None:
        per_server = next((f.per_server for f in frames if f.per_server), None)
    memory = next((int(n.value) for n in nums if n.role == MEMORY), None)
    place = _place(hits) or next((f.place for f in frames if f.place), None)

    amount: Decimal | None = None
    currency: Currency | None = None
    per: PricePer | None = None
    if price is not None:
        currency = _currency(msg, price, frame)
        server_words = _SERVER_WORD.search(msg.low, start, end) is not None
        per = _price_per(price, deal, counts, currency, server_words, frame)
        amount = price.value

    variant = _variant(hits, item.models)
    seen: set[str] = set()
    offers: list[Offer] = []
    for model in item.models:
        gpu: str = model.cue.value.gpu  # type: ignore[attr-defined]
        if gpu in seen:
            continue
        seen.add(gpu)
        offers.append(
            Offer(
                side=side,
                deal=deal,
                gpu=gpu,
                variant=variant,
                memory_gb=memory,
                quantity=counts.quantity,
                quantity_unit=counts.unit,
                gpus_per_server=per_server,
                price=amount,
                currency=currency,
                price_per=per,
                location=place,
            )
        )
    return offers


def parse_offers(text: str) -> list[Offer]:
    """Every buy or sell offer in one chat message, in the order the message states them.

    Returns an empty list for chat that is not an offer: questions, news, gossip, market talk,
    vouchers, rules and finished deals. Never raises on any string.
    """
    msg = _read_message(text)
    if msg is None:
        return []
    items, frame_spans = _items(msg)
    if not items:
        return []
    message_side = _side(msg, msg.hits)
    message_deal = _deal(msg.hits)
    if _one_offer(msg, items):
        whole = _Item(0, len(msg.low), [m for item in items for m in item.models])
        return _offers(msg, whole, (0, len(msg.low)), (), message_side, message_deal)

    frames = [(span, _frame(msg, *span)) for span in frame_spans]
    offers: list[Offer] = []
    for item in items:
        before = [f for (s, _), f in reversed(frames) if s < item.start]
        after = [f for (s, _), f in frames if s >= item.end]
        offers.extend(
            _offers(msg, item, (item.start, item.end), before + after, message_side, message_deal)
        )
    return offers


def _one_offer(msg: _Message, items: Sequence[_Item]) -> bool:
    """One item, or several lines about the same model with one set of numbers between them."""
    if len(items) == 1:
        return len({m.cue.value.gpu for m in items[0].models}) == 1  # type: ignore[attr-defined]
    gpus = {m.cue.value.gpu for item in items for m in item.models}  # type: ignore[attr-defined]
    if len(gpus) != 1:
        return False
    with_numbers = sum(
        1
        for item in items
        if any(n.role in (PRICE, GPUS, SERVERS, CARDS) for n in msg.numbers_in(item.start, item.end))
    )
    return with_numbers <= 1
