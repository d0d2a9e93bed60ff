"""The compiled parser: which implementation `import` loads, and that it reads like the source.

setup.py compiles `gpudesk/market/parse.py` with mypyc into an extension beside it, which Python
imports instead of the source; without it (GPUDESK_PURE_PYTHON=1 at build time, or no compiler)
the source runs as plain Python. test_parse.py runs each of its tests against both.
"""

from __future__ import annotations

import json
import os
import sysconfig
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpudesk.market import parse
from tests.test_parse import COMPILED, SHARED, SOURCE, load_source

EXTENSION = SOURCE.with_name("parse" + sysconfig.get_config_var("EXT_SUFFIX"))


def test_the_compiled_parser_is_loaded_when_it_is_built() -> None:
    if EXTENSION.exists():
        assert Path(parse.__file__) == EXTENSION
        assert EXTENSION.stat().st_mtime >= SOURCE.stat().st_mtime, (
            "the compiled parser is older than parse.py and hides its changes: run `make install`"
        )
    else:
        assert Path(parse.__file__) == SOURCE
        assert not COMPILED


@pytest.mark.skipif(
    not os.environ.get("CI") or bool(os.environ.get("GPUDESK_PURE_PYTHON")),
    reason="CI builds the compiled parser; elsewhere plain Python is allowed",
)
def test_ci_runs_the_compiled_parser() -> None:
    assert COMPILED, "make install did not compile the parser (see its warning)"


needs_both = pytest.mark.skipif(not COMPILED, reason="the parser is not compiled here")


def _same(text: str) -> None:
    assert parse.parse_offers(text) == load_source().parse_offers(text), text


@needs_both
def test_both_implementations_agree_on_the_dev_corpus() -> None:
    corpus = SHARED / "corpus" / "dev.jsonl"
    if not corpus.exists():
        pytest.skip(f"corpus not found at {corpus}")
    for line in corpus.read_text(encoding="utf-8").splitlines():
        _same(json.loads(line)["text"])


_PIECES = [
    "出", "收", "WTS", "WTB", "H100", "4090", "910B", "SXM", "8卡", "10台", "两台", "x8", "8x",
    "月租", "7.5w/台", "1.8元/卡时", "$2.10/GPU/hr", "$85k each", "80G", "北京", "Dallas",
    "IB 400G", "2TB内存", "Q1 2026", "13800001234", "吗", "?", "\n", "，", "；", "已出",
]  # fmt: skip


@needs_both
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=6)), max_size=30))
def test_both_implementations_agree_on_trade_like_text(pieces: list[str]) -> None:
    _same(" ".join(pieces))


@needs_both
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=4096))
def test_both_implementations_agree_on_any_text(text: str) -> None:
    _same(text)
