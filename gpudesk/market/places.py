"""The gazetteer as data: every canonical place of the contract and the names traders use.

Each canonical place (`Beijing`, `Ulanqab`, `Dallas`, `Iceland`) has a rank (3 a city or
city-state, 2 a province, state or region, 1 a country) and its aliases in Chinese and English;
districts, parks and neighbouring towns map to the place that contains them (亦庄 is Beijing,
贵安 is Guiyang, Reykjavik is Iceland). Short upper-case codes (`LA`, `HK`, `TX`) only count
when written in capitals. `resolve_place()` returns the most specific place a text names:
`内蒙乌兰察布` is Ulanqab, `Dallas, TX` is Dallas. `enclosing()` names the places one lies in
(Ulanqab in Inner Mongolia, Dallas in Texas), so a watch on a region covers its cities.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import ahocorasick

__all__ = [
    "ALIASES",
    "CASED_ALIASES",
    "CHINESE_NAMES",
    "PARENT",
    "PLACES",
    "RANK",
    "Place",
    "enclosing",
    "resolve_place",
]

CITY, REGION, COUNTRY = 3, 2, 1


@dataclass(frozen=True, slots=True)
class Place:
    """A canonical place, how specific it is, and what traders call it (lower case)."""

    name: str
    rank: int
    aliases: tuple[str, ...]
    cased: tuple[str, ...] = ()


_GAZETTEER: tuple[Place, ...] = (
    # Mainland China: cities, then the districts, parks and towns that belong to them.
    Place(
        "Beijing",
        CITY,
        (
            *(
                "beijing",
                "北京",
                "亦庄",
                "海淀",
                "中关村",
                "顺义",
                "昌平",
                "大兴",
                "酒仙桥",
                "望京",
            ),
            *("房山", "怀柔", "门头沟", "石景山", "丰台", "yizhuang", "zhongguancun"),
        ),
    ),
    Place(
        "Shanghai",
        CITY,
        (
            *("shanghai", "上海", "浦东", "临港", "张江", "嘉定", "青浦", "松江", "闵行", "宝山"),
            *("奉贤", "外高桥", "漕河泾", "pudong", "lingang", "zhangjiang"),
        ),
    ),
    Place(
        "Shenzhen",
        CITY,
        (
            *("shenzhen", "深圳", "华强北", "南山", "前海", "龙岗", "宝安", "福田", "龙华", "坪山"),
            *("罗湖", "盐田", "qianhai", "nanshan"),
        ),
    ),
    Place(
        "Guangzhou",
        CITY,
        ("guangzhou", "广州", "南沙", "番禺", "天河", "黄埔区", "花都", "增城", "海珠"),
    ),
    Place(
        "Hangzhou",
        CITY,
        ("hangzhou", "杭州", "萧山", "余杭", "滨江", "临平", "富阳", "未来科技城"),
    ),
    Place(
        "Suzhou",
        CITY,
        ("suzhou", "苏州", "昆山", "吴江", "常熟", "张家港", "太仓", "苏州园区", "相城", "吴中"),
    ),
    Place("Nanjing", CITY, ("nanjing", "南京", "江宁", "浦口")),
    Place("Wuhan", CITY, ("wuhan", "武汉", "光谷", "东西湖", "汉口", "武昌")),
    Place("Chengdu", CITY, ("chengdu", "成都", "天府新区", "双流", "郫都")),
    Place("Chongqing", CITY, ("chongqing", "重庆", "两江新区", "渝北", "西永")),
    Place("Zhengzhou", CITY, ("zhengzhou", "郑州", "航空港")),
    Place("Xi'an", CITY, ("xi'an", "xian", "西安", "西咸", "沣西")),
    Place("Tianjin", CITY, ("tianjin", "天津", "滨海新区", "武清", "西青", "宝坻", "东丽", "津南")),
    Place("Hefei", CITY, ("hefei", "合肥")),
    Place("Wuhu", CITY, ("wuhu", "芜湖")),
    Place("Changsha", CITY, ("changsha", "长沙")),
    Place("Guiyang", CITY, ("guiyang", "贵阳", "贵安", "gui'an", "guian")),
    Place("Ulanqab", CITY, ("ulanqab", "ulanqap", "wulanchabu", "乌兰察布", "集宁", "察右前旗")),
    Place("Hohhot", CITY, ("hohhot", "huhhot", "呼和浩特", "呼市", "和林格尔")),
    Place("Ordos", CITY, ("ordos", "鄂尔多斯", "康巴什", "达拉特")),
    Place("Zhongwei", CITY, ("zhongwei", "中卫", "沙坡头")),
    Place("Yinchuan", CITY, ("yinchuan", "银川")),
    Place("Qingyang", CITY, ("qingyang", "庆阳")),
    Place("Lanzhou", CITY, ("lanzhou", "兰州")),
    Place("Urumqi", CITY, ("urumqi", "乌鲁木齐", "乌市")),
    Place("Kunming", CITY, ("kunming", "昆明")),
    Place("Qingdao", CITY, ("qingdao", "青岛")),
    Place("Jinan", CITY, ("jinan", "济南")),
    Place("Xiamen", CITY, ("xiamen", "厦门")),
    Place(
        "Hong Kong",
        CITY,
        (
            *(
                "hong kong",
                "hongkong",
                "hk",
                "hksar",
                "香港",
                "九龙",
                "新界",
                "将军澳",
                "葵涌",
                "荃湾",
            ),
            *("观塘", "沙田", "柴湾", "kowloon", "kwun tong", "tsuen wan", "kwai chung"),
            *("tseung kwan o", "sha tin", "shatin", "chai wan"),
        ),
    ),
    # Provinces and regions, with towns that are not canonical places themselves.
    Place(
        "Inner Mongolia",
        REGION,
        ("inner mongolia", "内蒙古", "内蒙", "包头", "赤峰", "通辽", "baotou", "nei mongol"),
    ),
    Place("Ningxia", REGION, ("ningxia", "宁夏", "石嘴山", "吴忠")),
    Place(
        "Gansu",
        REGION,
        ("gansu", "甘肃", "张掖", "酒泉", "金昌", "天水", "武威", "zhangye", "jiuquan"),
    ),
    Place("Guizhou", REGION, ("guizhou", "贵州", "遵义", "安顺", "毕节", "六盘水", "zunyi")),
    Place("Xinjiang", REGION, ("xinjiang", "新疆", "克拉玛依", "哈密", "昌吉", "karamay")),
    Place(
        "Hebei",
        REGION,
        (
            *("hebei", "河北", "张家口", "张北", "怀来", "廊坊", "固安", "石家庄", "保定"),
            *("zhangjiakou", "langfang", "huailai", "zhangbei"),
        ),
    ),
    Place(
        "Sichuan",
        REGION,
        ("sichuan", "四川", "雅安", "绵阳", "宜宾", "德阳", "ya'an", "yaan", "mianyang"),
    ),
    Place("Yunnan", REGION, ("yunnan", "云南", "曲靖", "玉溪", "大理")),
    Place("Qinghai", REGION, ("qinghai", "青海", "西宁", "海东")),
    # Asia and the Middle East.
    Place("Singapore", CITY, ("singapore", "新加坡", "狮城", "jurong", "tuas"), ("SG", "SGP")),
    Place("Tokyo", CITY, ("tokyo", "东京", "東京")),
    Place("Seoul", CITY, ("seoul", "首尔", "首爾")),
    Place(
        "Johor",
        REGION,
        ("johor", "johor bahru", "johor baru", "柔佛", "新山", "sedenak", "kulai", "iskandar"),
        ("JB",),
    ),
    Place("Kuala Lumpur", CITY, ("kuala lumpur", "吉隆坡", "cyberjaya"), ("KL",)),
    Place("Jakarta", CITY, ("jakarta", "雅加达")),
    Place("Bangkok", CITY, ("bangkok", "曼谷")),
    Place("Dubai", CITY, ("dubai", "迪拜", "jebel ali")),
    # Europe.
    Place("Frankfurt", CITY, ("frankfurt", "法兰克福", "frankfurt am main"), ("FRA",)),
    Place("London", CITY, ("london", "伦敦", "docklands")),
    Place("Amsterdam", CITY, ("amsterdam", "阿姆斯特丹", "schiphol")),
    Place("Iceland", COUNTRY, ("iceland", "冰岛", "reykjavik", "keflavik", "雷克雅未克")),
    Place("Norway", COUNTRY, ("norway", "挪威", "oslo", "奥斯陆", "stavanger")),
    Place("Finland", COUNTRY, ("finland", "芬兰", "helsinki", "赫尔辛基", "kajaani")),
    # North America: cities, then states.
    Place("Dallas", CITY, ("dallas", "达拉斯", "fort worth"), ("DFW",)),
    Place("Austin", CITY, ("austin", "奥斯汀")),
    Place("Houston", CITY, ("houston", "休斯顿")),
    Place("Phoenix", CITY, ("phoenix", "凤凰城"), ("PHX",)),
    Place("Los Angeles", CITY, ("los angeles", "l.a.", "洛杉矶"), ("LA",)),
    Place("San Jose", CITY, ("san jose", "圣何塞", "圣荷西")),
    Place("Seattle", CITY, ("seattle", "西雅图")),
    Place("Chicago", CITY, ("chicago", "芝加哥")),
    Place("Atlanta", CITY, ("atlanta", "亚特兰大"), ("ATL",)),
    Place(
        "New York",
        CITY,
        ("new york", "new york city", "nyc", "纽约", "manhattan", "brooklyn"),
        ("NY",),
    ),
    Place(
        "New Jersey",
        REGION,
        ("new jersey", "新泽西", "jersey city", "secaucus", "newark", "piscataway", "weehawken"),
        ("NJ",),
    ),
    Place("Ashburn", CITY, ("ashburn", "阿什本")),
    Place(
        "Virginia",
        REGION,
        ("virginia", "northern virginia", "弗吉尼亚", "manassas", "reston", "leesburg"),
        ("VA", "NoVA"),
    ),
    Place(
        "Oregon", REGION, ("oregon", "俄勒冈", "hillsboro", "portland", "the dalles", "prineville")
    ),
    Place("Texas", REGION, ("texas", "德州", "得州", "德克萨斯"), ("TX",)),
    Place(
        "California",
        REGION,
        (
            *("california", "加州", "加利福尼亚", "santa clara", "silicon valley", "bay area"),
            *("san francisco", "palo alto", "fremont", "sunnyvale", "san diego", "sacramento"),
            *("硅谷", "旧金山", "湾区"),
        ),
        ("CA",),
    ),
    Place("Montreal", CITY, ("montreal", "montréal", "蒙特利尔")),
    Place("Toronto", CITY, ("toronto", "多伦多")),
)

# The canonical places that lie in another canonical place (a city in its province or state).
PARENT: Mapping[str, str] = MappingProxyType(
    {
        "Ulanqab": "Inner Mongolia",
        "Hohhot": "Inner Mongolia",
        "Ordos": "Inner Mongolia",
        "Zhongwei": "Ningxia",
        "Yinchuan": "Ningxia",
        "Qingyang": "Gansu",
        "Lanzhou": "Gansu",
        "Guiyang": "Guizhou",
        "Urumqi": "Xinjiang",
        "Chengdu": "Sichuan",
        "Kunming": "Yunnan",
        "Dallas": "Texas",
        "Austin": "Texas",
        "Houston": "Texas",
        "Los Angeles": "California",
        "San Jose": "California",
        "Ashburn": "Virginia",
    }
)

PLACES: tuple[str, ...] = tuple(place.name for place in _GAZETTEER)
# How a Chinese group reads each place: its first alias in Chinese (北京, 乌兰察布, 达拉斯).
CHINESE_NAMES: Mapping[str, str] = MappingProxyType(
    {
        place.name: next(alias for alias in place.aliases if not alias.isascii())
        for place in _GAZETTEER
    }
)
RANK: Mapping[str, int] = MappingProxyType({place.name: place.rank for place in _GAZETTEER})
ALIASES: Mapping[str, str] = MappingProxyType(
    {alias: place.name for place in _GAZETTEER for alias in place.aliases}
)
# Upper-case codes that are ordinary words or syllables in lower case ("la", "ca", "va").
CASED_ALIASES: Mapping[str, str] = MappingProxyType(
    {alias: place.name for place in _GAZETTEER for alias in place.cased}
)


def _build_automaton() -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for alias, name in ALIASES.items():
        automaton.add_word(alias, (len(alias), name, None))
    for alias, name in CASED_ALIASES.items():
        automaton.add_word(alias.lower(), (len(alias), name, alias))
    automaton.make_automaton()
    return automaton


_AUTOMATON = _build_automaton()


def _word_bounded(text: str, start: int, end: int) -> bool:
    """English names must be whole words; Chinese names have no spaces to check."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (
        (text[start].isascii() and before.isascii() and before.isalnum())
        or (text[end - 1].isascii() and after.isascii() and after.isalnum())
    )


def resolve_place(text: str) -> str | None:
    """The most specific canonical place the text names, or None.

    A city beats its province or state (`甘肃庆阳` is Qingyang, `Dallas, TX` is Dallas); between
    equally specific places the first one named wins.
    """
    original = unicodedata.normalize("NFKC", text)
    lowered = original.lower()
    if len(lowered) != len(original):  # rare letters whose lower case is longer; keep offsets
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in original)
    best: str | None = None
    for end, (length, name, cased) in _AUTOMATON.iter_long(lowered):
        start = end + 1 - length
        if not _word_bounded(lowered, start, end + 1):
            continue
        if cased is not None and original[start : end + 1] != cased:
            continue
        if best is None or RANK[name] > RANK[best]:
            best = name
    return best


def enclosing(place: str) -> tuple[str, ...]:
    """`place` and every canonical place it lies in, the most specific first."""
    chain = [place]
    while (parent := PARENT.get(chain[-1])) is not None:
        chain.append(parent)
    return tuple(chain)
