"""Tests for the gazetteer: every contract place, aliases, sub-places, most specific wins."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpudesk.market.places import (
    ALIASES,
    CASED_ALIASES,
    CHINESE_NAMES,
    PARENT,
    PLACES,
    RANK,
    enclosing,
    resolve_place,
)

CONTRACT = Path(__file__).parents[2] / "shared" / "contract" / "offer-json.md"


def test_places_match_the_contract_document() -> None:
    if not CONTRACT.exists():
        pytest.skip(f"contract not found at {CONTRACT}")
    text = CONTRACT.read_text(encoding="utf-8")
    section = text.split("## Places", 1)[1].split("The most specific place wins", 1)[0]
    names = [name for name in re.findall(r"`([^`]+)`", section) if name != "location"]
    assert sorted(names) == sorted(PLACES)


def test_every_place_resolves_by_its_own_name() -> None:
    for name in PLACES:
        assert resolve_place(name) == name
        assert resolve_place(name.lower()) == name


def test_every_alias_names_a_canonical_place() -> None:
    for name in {**ALIASES, **CASED_ALIASES}.values():
        assert name in PLACES
        assert name in RANK


PLACE_QUERIES = [
    ("北京", "Beijing"),
    ("北京亦庄", "Beijing"),
    ("海淀", "Beijing"),
    ("上海临港", "Shanghai"),
    ("深圳南山", "Shenzhen"),
    ("内蒙乌兰察布", "Ulanqab"),
    ("内蒙古", "Inner Mongolia"),
    ("内蒙古和林格尔", "Hohhot"),
    ("包头", "Inner Mongolia"),
    ("宁夏中卫", "Zhongwei"),
    ("甘肃庆阳", "Qingyang"),
    ("庆阳", "Qingyang"),
    ("贵安", "Guiyang"),
    ("贵州", "Guizhou"),
    ("河北怀来", "Hebei"),
    ("四川雅安", "Sichuan"),
    ("新疆乌鲁木齐", "Urumqi"),
    ("郑州航空港", "Zhengzhou"),
    ("Xi'an", "Xi'an"),
    ("香港", "Hong Kong"),
    ("HK", "Hong Kong"),
    ("hk", "Hong Kong"),
    ("Dallas, TX", "Dallas"),
    ("Texas", "Texas"),
    ("TX", "Texas"),
    ("Ashburn, VA", "Ashburn"),
    ("Northern Virginia", "Virginia"),
    ("LA", "Los Angeles"),
    ("Los Angeles", "Los Angeles"),
    ("Reykjavik", "Iceland"),
    ("Oslo, Norway", "Norway"),
    ("Helsinki", "Finland"),
    ("Johor Bahru", "Johor"),
    ("KL", "Kuala Lumpur"),
    ("NYC", "New York"),
    ("San Jose, CA", "San Jose"),
    ("California", "California"),
    ("Montréal", "Montreal"),
    ("ＳＧ", "Singapore"),  # full width
    ("新加坡", "Singapore"),
]


@pytest.mark.parametrize(("text", "place"), PLACE_QUERIES)
def test_resolve_place(text: str, place: str) -> None:
    assert resolve_place(text) == place


@pytest.mark.parametrize(
    "text", ["", "anywhere", "la la land", "ca.", "Dallasite", "va bene", "不限地区", "东莞"]
)
def test_resolve_place_finds_nothing(text: str) -> None:
    assert resolve_place(text) is None


def test_first_place_wins_between_equals() -> None:
    assert resolve_place("成都/重庆均可") == "Chengdu"
    assert resolve_place("Dallas or Austin") == "Dallas"


def test_every_containing_place_is_canonical_and_less_specific() -> None:
    for place, area in PARENT.items():
        assert place in PLACES and area in PLACES
        assert RANK[place] > RANK[area], (place, area)


def test_enclosing_lists_a_place_then_what_contains_it() -> None:
    assert enclosing("Ulanqab") == ("Ulanqab", "Inner Mongolia")
    assert enclosing("Dallas") == ("Dallas", "Texas")
    assert enclosing("Beijing") == ("Beijing",)


def test_every_place_has_a_chinese_name_for_chinese_groups() -> None:
    assert set(CHINESE_NAMES) == set(PLACES)
    assert all(not name.isascii() for name in CHINESE_NAMES.values())
    assert (CHINESE_NAMES["Ulanqab"], CHINESE_NAMES["Hong Kong"], CHINESE_NAMES["Dallas"]) == (
        "乌兰察布",
        "香港",
        "达拉斯",
    )
