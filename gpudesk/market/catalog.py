"""The GPU catalog as data: canonical model names, the ways traders write them, form factors.

`MODELS` lists the canonical names of the public contract in catalog order. `ALIASES` maps every
lower-case spelling a chat post may use (`4090`, `rtx4090`, `昇腾910b`, the `H1OO` typo) to a
`ModelQuery`; `VARIANT_ALIASES` maps form-factor words (`sxm5`, `hgx`, `pci-e`, `nvl`) to the
contract's variants. `resolve_model()` reads a short query such as `/price h100 sxm` or
`/price A100 80G SXM4` into a `ModelQuery`; the offer parser builds its own automaton from the
same tables so both always agree.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import ahocorasick

__all__ = [
    "ALIASES",
    "ASCII_ALNUM",
    "ASCII_ALPHA",
    "MEMORY_SIZES",
    "MODELS",
    "VARIANT_ALIASES",
    "ModelQuery",
    "model_bounded",
    "normalize",
    "resolve_model",
    "variant_bounded",
]


@dataclass(frozen=True, slots=True)
class ModelQuery:
    """A GPU as a query names it: canonical model, and form factor and memory when stated."""

    gpu: str
    variant: str | None = None
    memory_gb: int | None = None


# Canonical name -> the spellings seen in the trade (lower case; spacing variants and O/0
# typos are generated below, so list each spelling once in its plainest form).
_CATALOG: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("H100", ("h100", "nvidia h100", "英伟达h100")),
    ("H800", ("h800",)),
    ("H200", ("h200",)),
    ("H20", ("h20",)),
    ("B200", ("b200",)),
    ("B300", ("b300",)),
    ("GB200", ("gb200",)),
    ("A100", ("a100",)),
    ("A800", ("a800",)),
    ("A40", ("a40",)),
    ("A10", ("a10", "a10g")),
    ("L40S", ("l40s",)),
    ("L40", ("l40",)),
    ("L20", ("l20",)),
    ("L4", ("l4",)),
    ("T4", ("t4", "tesla t4")),
    ("V100", ("v100", "tesla v100")),
    ("RTX 4090", ("4090", "rtx 4090", "geforce 4090", "geforce rtx 4090")),
    ("RTX 4090D", ("4090d", "rtx 4090d", "rtx 4090 d")),
    ("RTX 5090", ("5090", "rtx 5090", "geforce rtx 5090")),
    ("RTX 3090", ("3090", "rtx 3090", "geforce rtx 3090")),
    ("RTX 6000 Ada", ("rtx 6000 ada", "6000 ada", "rtx 6000ada", "6000ada", "rtx a6000 ada")),
    ("MI300X", ("mi300x", "mi300", "amd mi300x", "instinct mi300x")),
    (
        "Ascend 910B",
        (
            "910b",
            "910b2",
            "910b3",
            "910b4",
            "ascend 910b",
            "昇腾910b",
            "昇腾 910b",
            "升腾910b",
            "华为910b",
            "huawei 910b",
        ),
    ),
    ("Ascend 910C", ("910c", "ascend 910c", "昇腾910c", "昇腾 910c", "升腾910c", "华为910c")),
)

MODELS: tuple[str, ...] = tuple(name for name, _ in _CATALOG)

# Spellings that fix a form factor as well as the model (`H100 NVL` is its own card).
_VARIANT_MODELS: dict[str, ModelQuery] = {
    "h100 nvl": ModelQuery("H100", "NVL"),
    "h100nvl": ModelQuery("H100", "NVL"),
    "h200 nvl": ModelQuery("H200", "NVL"),
    "hgx h100": ModelQuery("H100", "SXM"),
    "dgx h100": ModelQuery("H100", "SXM"),
    "hgx h200": ModelQuery("H200", "SXM"),
    "hgx b200": ModelQuery("B200", "SXM"),
    "dgx b200": ModelQuery("B200", "SXM"),
    "hgx b300": ModelQuery("B300", "SXM"),
}

# Form-factor words -> contract variant. HGX and DGX boards carry SXM modules.
VARIANT_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "sxm": "SXM",
        "sxm2": "SXM",
        "sxm3": "SXM",
        "sxm4": "SXM",
        "sxm5": "SXM",
        "sxm6": "SXM",
        "hgx": "SXM",
        "dgx": "SXM",
        "pcie": "PCIe",
        "pci-e": "PCIe",
        "pci e": "PCIe",
        "pcie版": "PCIe",
        "nvl": "NVL",
    }
)

# Per-GPU memory sizes that exist on the catalog's cards; anything else next to a "G" is a
# network speed, a disk or RAM, not GPU memory.
MEMORY_SIZES: frozenset[int] = frozenset(
    {8, 10, 12, 16, 20, 24, 32, 40, 44, 48, 64, 80, 94, 96, 128, 141, 144, 180, 186, 192, 256, 288}
)

_LETTERS_THEN_DIGITS = re.compile(r"([a-z])\s?(\d)")


def _spellings(alias: str) -> Iterator[str]:
    """One alias as traders type it: `rtx 4090`, `rtx4090`, `rtx-4090`, and `H1OO` typos."""
    forms = {alias, alias.replace(" ", ""), alias.replace(" ", "-")}
    # Zeros typed as the letter O happen in names like H100 and A800; only names with two or
    # more zeros, so `H2O` (water) and `A1O` never become models.
    for form in list(forms):
        if form[:1].isalpha() and form.count("0") >= 2:
            slots = [i for i, c in enumerate(form) if c == "0"]
            for choice in itertools.product("0o", repeat=len(slots)):
                chars = list(form)
                for i, c in zip(slots, choice, strict=True):
                    chars[i] = c
                forms.add("".join(chars))
    yield from sorted(forms)


def _build_aliases() -> dict[str, ModelQuery]:
    aliases: dict[str, ModelQuery] = {}
    for name, spellings in _CATALOG:
        for alias in spellings:
            for form in _spellings(alias):
                aliases[form] = ModelQuery(name)
    for alias, query in _VARIANT_MODELS.items():
        for form in _spellings(alias):
            aliases[form] = query
    return aliases


ALIASES: Mapping[str, ModelQuery] = MappingProxyType(_build_aliases())


def normalize(text: str) -> str:
    """NFKC (full-width digits and punctuation become ASCII) then lower case."""
    return unicodedata.normalize("NFKC", text).lower()


# ASCII letters and digits: the characters that glue words together (a set is the fastest test).
ASCII_ALPHA: frozenset[str] = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
ASCII_ALNUM: frozenset[str] = ASCII_ALPHA | frozenset("0123456789")


def model_bounded(text: str, start: int, end: int) -> bool:
    """True when a model alias at text[start:end] is a whole name, not part of a longer token.

    `h100` in `h1000` or `ah100` is not a model; `h100s` (plural), `h100sxm` (variant glued
    on) and `8xh100` (a count glued on) are.
    """
    # "8xh100" is eight H100s; "xh100" or "ah100" is some other token.
    if (
        start > 0
        and text[start - 1] in ASCII_ALNUM
        and not (text[start - 1] == "x" and start > 1 and text[start - 2].isdigit())
    ):
        return False
    if end >= len(text) or text[end] not in ASCII_ALNUM:
        return True
    tail = text[end : end + 4]
    if tail[0] == "s" and (len(tail) == 1 or tail[1] not in ASCII_ALNUM):
        return True
    return tail.startswith(("sxm", "pcie", "nvl", "hgx"))


def variant_bounded(text: str, start: int, end: int) -> bool:
    """Variant words may be glued to a model (`h100sxm`) but not sit inside a longer word.

    `nvl72` is a rack (GB200 NVL72), not the NVL card, so a digit after `nvl` rejects it.
    """
    if start > 0 and text[start - 1] in ASCII_ALPHA:
        return False
    return not (end < len(text) and text[end] in ASCII_ALNUM)


def _build_automaton() -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for alias, query in ALIASES.items():
        automaton.add_word(alias, (len(alias), query))
    for alias, variant in VARIANT_ALIASES.items():
        automaton.add_word(alias, (len(alias), variant))
    automaton.make_automaton()
    return automaton


_AUTOMATON = _build_automaton()
_MEMORY = re.compile(r"(?<![a-z0-9.])(\d{1,3})\s?(?:gb|g)(?![a-z0-9])")


def resolve_model(query: str) -> ModelQuery | None:
    """The catalog model a short query names (`4090`, `h100 sxm`, `昇腾910B`), or None.

    Variant and memory come from the query when it states them (`A100 80G SXM4` gives
    A100, SXM, 80); a model alias that fixes its variant (`H100 NVL`) keeps it.
    """
    text = normalize(query)
    model: ModelQuery | None = None
    variant: str | None = None
    for end, (length, value) in _AUTOMATON.iter_long(text):
        start = end + 1 - length
        if isinstance(value, ModelQuery):
            if model is None and model_bounded(text, start, end + 1):
                model = value
        elif variant is None and variant_bounded(text, start, end + 1):
            variant = value
    if model is None:
        return None
    memory = None
    for match in _MEMORY.finditer(text):
        size = int(match.group(1))
        if size in MEMORY_SIZES:
            memory = size
            break
    return ModelQuery(model.gpu, model.variant or variant, memory)
