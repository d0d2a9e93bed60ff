"""Matching counterparties, reposts and broker look-alikes (gpudesk.market.match)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpudesk.market.book import PostedOffer
from gpudesk.market.match import (
    Match,
    MatchPolicy,
    compatible,
    find_matches,
    is_repost,
    looks_alike,
)
from gpudesk.market.offer import Deal, Offer, Side
from tests import factories

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


def posted(side: str = "sell", *, hours: float = 0, **fields: Any) -> PostedOffer:
    """A posted offer (see `tests.factories.posted`), `hours` after T0."""
    return factories.posted(side, at=T0 + timedelta(hours=hours), **fields)


def names(matches: list[Match]) -> list[str]:
    return [m.offer.poster_name for m in matches]


# --- compatible ---------------------------------------------------------------------------------


def spec(
    side: str,
    *,
    gpu: str = "H100",
    deal: str = "rent",
    variant: str | None = None,
    memory_gb: int | None = None,
) -> Offer:
    return Offer(Side(side), Deal(deal), gpu, variant=variant, memory_gb=memory_gb)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param(spec("sell"), spec("buy"), True, id="a sell and a buy of one gpu match"),
        pytest.param(spec("sell"), spec("sell"), False, id="two sellers never match"),
        pytest.param(spec("sell"), spec("buy", gpu="H200"), False, id="another gpu never matches"),
        pytest.param(spec("sell"), spec("buy", deal="sale"), False, id="rent never matches sale"),
        pytest.param(
            spec("sell", variant="SXM"), spec("buy"), True, id="an unstated variant matches SXM"
        ),
        pytest.param(
            spec("sell"), spec("buy", variant="PCIe"), True, id="SXM unstated matches PCIe"
        ),
        pytest.param(
            spec("sell", variant="SXM"),
            spec("buy", variant="PCIe"),
            False,
            id="SXM does not match PCIe",
        ),
        pytest.param(
            spec("sell", memory_gb=80), spec("buy"), True, id="unstated memory matches 80G"
        ),
        pytest.param(
            spec("sell", memory_gb=80),
            spec("buy", memory_gb=96),
            False,
            id="80G does not match 96G",
        ),
        pytest.param(
            spec("sell", variant="SXM", memory_gb=80),
            spec("buy", variant="SXM", memory_gb=80),
            True,
            id="identical stated specs match",
        ),
    ],
)
def test_compatible(a: Offer, b: Offer, expected: bool) -> None:
    assert compatible(a, b) == expected
    assert compatible(b, a) == expected


# --- find_matches: who and at what price ---------------------------------------------------------


def test_same_poster_never_matches_even_from_another_chat() -> None:
    new = posted("buy", who="alice", price="10")
    mine = replace(posted("sell", who="alice", price="9"), chat_id="other chat")
    assert find_matches(new, [mine], MatchPolicy()) == []


def test_same_user_id_on_another_platform_is_another_party() -> None:
    new = posted("buy", who="alice", platform="telegram", price="10")
    other = posted("sell", who="alice", platform="wechat", price="9")
    assert [m.offer for m in find_matches(new, [other], MatchPolicy())] == [other]


def test_incompatible_candidates_are_rechecked() -> None:
    new = posted("buy", variant="PCIe", price="10")
    candidates = [posted("sell", who="bob", variant="SXM", price="9"), posted("buy", who="carol")]
    assert find_matches(new, candidates, MatchPolicy()) == []


@pytest.mark.parametrize(
    ("new_side", "ask", "bid", "tolerance", "matches"),
    [
        pytest.param(
            "buy", "105", "100", "0.05", True, id="an ask exactly 5% over the bid matches"
        ),
        pytest.param("buy", "105.01", "100", "0.05", False, id="an ask just over 5% does not"),
        pytest.param("sell", "105", "100", "0.05", True, id="a seller meets a bid 5% under"),
        pytest.param("sell", "105.01", "100", "0.05", False, id="a seller misses a bid further"),
        pytest.param("buy", "80", "100", "0.05", True, id="an ask under the bid always matches"),
        pytest.param("buy", "100", "100", "0", True, id="at zero tolerance equal prices match"),
        pytest.param("buy", "100.001", "100", "0", False, id="at zero tolerance any excess fails"),
    ],
)
def test_price_tolerance(new_side: str, ask: str, bid: str, tolerance: str, matches: bool) -> None:
    if new_side == "buy":
        new, other = posted("buy", price=bid), posted("sell", who="bob", price=ask)
    else:
        new, other = posted("sell", price=ask), posted("buy", who="bob", price=bid)
    found = find_matches(new, [other], MatchPolicy(tolerance=Decimal(tolerance)))
    assert bool(found) == matches
    if found:
        assert found[0].gap == Decimal(ask) - Decimal(bid)
        assert found[0].priced


@pytest.mark.parametrize(
    ("new_price", "other_price"),
    [
        pytest.param("10", None, id="an unpriced counterparty matches a priced offer"),
        pytest.param(None, "10", id="a priced counterparty matches an unpriced offer"),
        pytest.param(None, None, id="two unpriced offers match"),
    ],
)
def test_unpriced_offers_match_without_a_gap(
    new_price: str | None, other_price: str | None
) -> None:
    new, other = posted("buy", price=new_price), posted("sell", who="bob", price=other_price)
    assert find_matches(new, [other], MatchPolicy()) == [Match(other, priced=False, gap=None)]


# --- find_matches: ranking -----------------------------------------------------------------------

BEIJING = "Beijing"


@pytest.mark.parametrize(
    ("new", "candidates", "expected"),
    [
        pytest.param(
            posted("buy", price="12"),
            [posted(who=w, price=p) for w, p in [("b", "11"), ("c", "9"), ("d", "10")]],
            ["c", "d", "b"],
            id="a buyer sees the cheapest asks first",
        ),
        pytest.param(
            posted("sell", price="9"),
            [posted("buy", who=w, price=p) for w, p in [("b", "9"), ("c", "11"), ("d", "10")]],
            ["c", "d", "b"],
            id="a seller sees the highest bids first",
        ),
        pytest.param(
            posted("buy", price="12"),
            [
                posted(who="b", price=None, location=BEIJING, hours=5),
                posted(who="c", price="11.9"),
            ],
            ["c", "b"],
            id="an unpriced ask ranks below a dearer priced one, however near and new",
        ),
        pytest.param(
            posted("buy", price="12", location=BEIJING),
            [
                posted(who="b", price="10", location="Shanghai", hours=2),
                posted(who="c", price="10", location=BEIJING),
                posted(who="d", price="9.99", location="Shanghai"),
            ],
            ["d", "c", "b"],
            id="price beats place, and at one price the buyer's own city comes first",
        ),
        pytest.param(
            posted("buy", price="12", location=BEIJING),
            [
                posted(who="b", price="10", location=BEIJING, hours=1, gpus=8),
                posted(who="c", price="10", location=BEIJING, hours=2, gpus=64),
            ],
            ["c", "b"],
            id="at one price and place the newer offer comes first, whatever its size",
        ),
        pytest.param(
            posted("buy", price="12", gpus=16),
            [
                posted(who="b", price="10", gpus=64),
                posted(who="c", price="10", gpus=None),
                posted(who="d", price="10", gpus=8),
                posted(who="e", price="10", gpus=16),
            ],
            ["e", "d", "b", "c"],
            id="then the closest number of GPUs, an unstated quantity last",
        ),
        pytest.param(
            posted("buy", price=None, location=BEIJING),
            [
                posted(who="b", price="10", hours=3),
                posted(who="c", price="9", location=BEIJING),
            ],
            ["c", "b"],
            id="an unpriced buyer's matches rank by place, then recency",
        ),
        pytest.param(
            posted("buy", price=None, location=None),
            [posted(who="b", hours=1), posted(who="c", hours=3), posted(who="d", hours=2)],
            ["c", "d"],
            id="no place on the new offer: recency decides, cut to the limit",
        ),
    ],
)
def test_ranking(new: PostedOffer, candidates: list[PostedOffer], expected: list[str]) -> None:
    assert names(find_matches(new, candidates, MatchPolicy(limit=len(expected)))) == expected


def test_only_the_top_limit_are_returned() -> None:
    new = posted("buy", price="20")
    candidates = [posted(who=str(n), price=str(10 + n)) for n in range(6)]
    assert names(find_matches(new, candidates, MatchPolicy())) == ["0", "1", "2"]


# --- is_repost ----------------------------------------------------------------------------------

OLD = posted("sell", price="100", gpus=64, variant="SXM", location=BEIJING)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        pytest.param(replace(OLD, id=99), True, id="the same offer posted again is a repost"),
        pytest.param(
            replace(OLD, posted_at=T0 + timedelta(days=30)),
            True,
            id="time is the caller's business",
        ),
        pytest.param(
            replace(OLD, chat_id="elsewhere"), True, id="the same offer in another chat is a repost"
        ),
        pytest.param(
            replace(OLD, offer=replace(OLD.offer, location="Shanghai")),
            True,
            id="a changed place alone does not make a new offer",
        ),
        pytest.param(
            replace(OLD, unit_price=Decimal("101")), True, id="a price 1% higher is the same price"
        ),
        pytest.param(
            replace(OLD, unit_price=Decimal("99.01")),
            True,
            id="a price lower by 1% of itself is the same",
        ),
        pytest.param(
            replace(OLD, unit_price=Decimal("99")),
            False,
            id="1 under 100 is over 1% of 99, so 99 is a new price",
        ),
        pytest.param(
            replace(OLD, unit_price=Decimal("101.01")), False, id="a price just over 1% is new"
        ),
        pytest.param(replace(OLD, unit_price=None), False, id="dropping the price makes it new"),
        pytest.param(replace(OLD, gpus=128), False, id="another quantity is a new offer"),
        pytest.param(replace(OLD, poster_id="bob"), False, id="another poster never reposts"),
        pytest.param(
            replace(OLD, platform="wechat"), False, id="the same id on another platform is another"
        ),
        pytest.param(
            replace(OLD, offer=replace(OLD.offer, variant="PCIe")), False, id="another variant"
        ),
        pytest.param(
            replace(OLD, offer=replace(OLD.offer, variant=None)),
            False,
            id="dropping the variant is another spec",
        ),
        pytest.param(
            replace(OLD, offer=replace(OLD.offer, memory_gb=80)), False, id="adding memory"
        ),
        pytest.param(
            replace(OLD, offer=replace(OLD.offer, side=Side.BUY)), False, id="the other side"
        ),
        pytest.param(
            replace(OLD, offer=replace(OLD.offer, deal=Deal.SALE)), False, id="another deal"
        ),
    ],
)
def test_is_repost(new: PostedOffer, expected: bool) -> None:
    assert is_repost(new, OLD) == expected


def test_two_unpriced_posts_of_the_same_offer_are_a_repost() -> None:
    old = replace(OLD, unit_price=None)
    assert is_repost(replace(old, id=99), old)


# --- looks_alike --------------------------------------------------------------------------------

LOT = posted("sell", who="owner", price="100", gpus=64, location=BEIJING)


def broker(
    *,
    who: str = "broker",
    hours: float = 0,
    price: str = "100",
    gpus: int = 64,
    location: str = BEIJING,
    side: Side = Side.SELL,
    variant: str | None = None,
) -> PostedOffer:
    """The owner's lot as relayed by someone else, with what they changed."""
    return replace(
        LOT,
        id=factories.next_id(),
        poster_id=who,
        posted_at=T0 + timedelta(hours=hours),
        unit_price=Decimal(price),
        gpus=gpus,
        offer=replace(LOT.offer, location=location, side=side, variant=variant),
    )


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        pytest.param(broker(), True, id="another party posting the same lot looks alike"),
        pytest.param(broker(hours=24), True, id="exactly 24 hours apart still looks alike"),
        pytest.param(
            broker(hours=-24 - 1 / 3600), False, id="a second over 24 hours apart is fresh stock"
        ),
        pytest.param(broker(price="101"), True, id="a 1% markup looks alike"),
        pytest.param(broker(price="101.01"), False, id="over 1% markup is another lot"),
        pytest.param(broker(location="Shanghai"), False, id="a different place stays two lots"),
        pytest.param(broker(gpus=32), False, id="a different quantity stays two lots"),
        pytest.param(broker(side=Side.BUY), False, id="a buyer never looks like a seller"),
        pytest.param(broker(variant="PCIe"), True, id="a variant stated by one side only agrees"),
        pytest.param(broker(who="owner"), False, id="one party's own posts are reposts"),
    ],
)
def test_looks_alike(other: PostedOffer, expected: bool) -> None:
    assert looks_alike(LOT, other) == expected
    assert looks_alike(other, LOT) == expected


def test_unstated_place_or_quantity_never_looks_alike() -> None:
    bare = replace(LOT, offer=replace(LOT.offer, location=None))
    assert not looks_alike(bare, replace(bare, poster_id="broker"))
    assert not looks_alike(replace(LOT, gpus=None), replace(LOT, gpus=None, poster_id="broker"))


# --- properties ---------------------------------------------------------------------------------

offers = st.builds(
    posted,
    side=st.sampled_from(["sell", "buy"]),
    who=st.sampled_from(["a", "b", "c"]),
    platform=st.sampled_from(["telegram", "wechat"]),
    variant=st.sampled_from([None, "SXM", "PCIe"]),
    price=st.one_of(st.none(), st.integers(1, 30).map(str)),
    gpus=st.one_of(st.none(), st.integers(1, 64)),
    location=st.sampled_from([None, BEIJING, "Shanghai"]),
    hours=st.integers(0, 48),
)


@given(new=offers, candidates=st.lists(offers, max_size=12), limit=st.integers(0, 5))
def test_matches_are_other_parties_on_the_other_side_within_the_limit(
    new: PostedOffer, candidates: list[PostedOffer], limit: int
) -> None:
    found = find_matches(new, candidates, MatchPolicy(limit=limit))
    assert len(found) <= limit
    for match in found:
        assert match.offer.party != new.party
        assert compatible(new.offer, match.offer.offer)
    priced = [m.priced for m in found]
    assert sorted(priced, reverse=True) == priced  # priced ones first


@given(a=offers, b=offers)
def test_looks_alike_is_symmetric_and_never_the_same_party(a: PostedOffer, b: PostedOffer) -> None:
    assert looks_alike(a, b) == looks_alike(b, a)
    if a.party == b.party:
        assert not looks_alike(a, b)
