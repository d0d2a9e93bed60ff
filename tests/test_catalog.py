"""Tests for the GPU catalog: canonical names, aliases, typos and `resolve_model` queries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpudesk.market.catalog import ALIASES, MODELS, VARIANT_ALIASES, ModelQuery, resolve_model
from gpudesk.market.offer import VARIANTS

CONTRACT = Path(__file__).parents[2] / "shared" / "contract" / "offer-json.md"

CONTRACT_MODELS = [
    *("H100", "H800", "H200", "H20", "B200", "B300", "GB200", "A100", "A800", "A40", "A10"),
    *("L40S", "L40", "L20", "L4", "T4", "V100", "RTX 4090", "RTX 4090D", "RTX 5090", "RTX 3090"),
    *("RTX 6000 Ada", "MI300X", "Ascend 910B", "Ascend 910C"),
]


def test_models_are_the_contract_catalog_in_order() -> None:
    assert list(MODELS) == CONTRACT_MODELS


def test_models_match_the_contract_document() -> None:
    if not CONTRACT.exists():
        pytest.skip(f"contract not found at {CONTRACT}")
    section = CONTRACT.read_text(encoding="utf-8").split("## Catalog", 1)[1].split("Aliases", 1)[0]
    names = re.findall(r"`([^`]+)`", section)
    assert names[names.index("H100") :] == list(MODELS)


QUERIES = [
    ("4090", ModelQuery("RTX 4090")),
    ("RTX 4090", ModelQuery("RTX 4090")),
    ("rtx4090", ModelQuery("RTX 4090")),
    ("4090D", ModelQuery("RTX 4090D")),
    ("4090 48G", ModelQuery("RTX 4090", None, 48)),
    ("5090", ModelQuery("RTX 5090")),
    ("3090", ModelQuery("RTX 3090")),
    ("6000 Ada", ModelQuery("RTX 6000 Ada")),
    ("h100", ModelQuery("H100")),
    ("H1OO", ModelQuery("H100")),
    ("h1o0", ModelQuery("H100")),
    ("h100 sxm", ModelQuery("H100", "SXM")),
    ("H100 SXM5 80G", ModelQuery("H100", "SXM", 80)),
    ("HGX H100", ModelQuery("H100", "SXM")),
    ("B200 HGX", ModelQuery("B200", "SXM")),
    ("H100 NVL", ModelQuery("H100", "NVL")),
    ("h100nvl", ModelQuery("H100", "NVL")),
    ("H100 PCIe", ModelQuery("H100", "PCIe")),
    ("A100 80G SXM4", ModelQuery("A100", "SXM", 80)),
    ("a100 40gb pci-e", ModelQuery("A100", "PCIe", 40)),
    ("V100 SXM2 32GB", ModelQuery("V100", "SXM", 32)),
    ("H200 141G", ModelQuery("H200", None, 141)),
    ("H20", ModelQuery("H20")),
    ("h20 96g", ModelQuery("H20", None, 96)),
    ("A10", ModelQuery("A10")),
    ("L40S", ModelQuery("L40S")),
    ("L40", ModelQuery("L40")),
    ("L4", ModelQuery("L4")),
    ("T4", ModelQuery("T4")),
    ("GB200", ModelQuery("GB200")),
    ("MI300X", ModelQuery("MI300X")),
    ("昇腾910B", ModelQuery("Ascend 910B")),
    ("910B", ModelQuery("Ascend 910B")),
    ("Ascend 910B", ModelQuery("Ascend 910B")),
    ("910C", ModelQuery("Ascend 910C")),
    ("  ＨＧＸ　Ｈ２００  ", ModelQuery("H200", "SXM")),  # full width, stray spaces
]


@pytest.mark.parametrize(("query", "expected"), QUERIES)
def test_resolve_model(query: str, expected: ModelQuery) -> None:
    assert resolve_model(query) == expected


@pytest.mark.parametrize(
    "query", ["", "   ", "gpu", "h1000", "ah100", "4090000", "H2O", "RTX 6000", "我要显卡", "sxm"]
)
def test_resolve_model_rejects_what_is_not_a_model(query: str) -> None:
    assert resolve_model(query) is None


def test_every_alias_resolves_to_a_catalog_model() -> None:
    for alias, query in ALIASES.items():
        assert alias == alias.lower()
        assert query.gpu in MODELS
        resolved = resolve_model(alias)
        assert resolved is not None and resolved.gpu == query.gpu, alias


def test_variants_are_the_contract_variants() -> None:
    assert set(VARIANT_ALIASES.values()) == set(VARIANTS)


def test_model_query_is_frozen() -> None:
    query = ModelQuery("H100")
    with pytest.raises(AttributeError):
        query.gpu = "H200"  # type: ignore[misc]
