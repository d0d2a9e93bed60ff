"""Every user-visible text exists in Chinese and English, with the same placeholders."""

from __future__ import annotations

import string

import pytest

from gpudesk.handlers.texts import LANGS, TEXTS


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_each_text_has_both_languages_and_the_same_placeholders(key: str) -> None:
    entry = TEXTS[key]
    assert set(entry) == set(LANGS)
    assert placeholders(entry["zh"]) == placeholders(entry["en"])
    assert all(entry[lang].strip() for lang in LANGS)
