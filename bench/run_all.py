"""`make bench`: run every benchmark in this folder (`bench_*.py`), one after another.

Each benchmark is a plain script that prints its own figures and exits non-zero when it cannot
run. Run one alone with `.venv/bin/python bench/bench_parse.py`; pass names to run a few:
`.venv/bin/python bench/run_all.py parse desk`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    failed = []
    for script in scripts:
        print(f"\n== {script.stem} ==", flush=True)
        began = time.perf_counter()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
        print(f"({time.perf_counter() - began:.0f} s)", flush=True)
        if result.returncode != 0:
            failed.append(script.stem)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
