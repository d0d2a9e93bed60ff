"""Build step: the offer parser, `gpudesk/market/parse.py`, compiled to a C extension by mypyc.

Everything else about the package is in pyproject.toml. The extension is built beside parse.py
(in place, for an editable install) and Python imports it instead of the source. With
GPUDESK_PURE_PYTHON=1 set at build time it is not built (and one left by an earlier build is
removed): the same parse.py then runs as plain Python, with the same results, about a third
slower. After editing parse.py, install again (`make install` does when parse.py is newer than
the last install), or the old compiled parser keeps answering; `tests/test_parse_build.py`
fails while it is older than its source.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import Extension, setup

COMPILED = ["gpudesk/market/parse.py"]


def ext_modules() -> list[Extension]:
    if os.environ.get("GPUDESK_PURE_PYTHON"):
        for built in Path("gpudesk/market").glob("parse*.so"):  # left by an earlier build
            built.unlink()
        return []
    from mypyc.build import mypycify

    return mypycify(COMPILED, opt_level="3")


setup(ext_modules=ext_modules())
