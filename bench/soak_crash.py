"""The long crash run (issue 9): 10,000 updates fed to a real `gpudesk run` that is killed with
SIGKILL at 20+ random moments and restarted each time; then the ledger is audited.

Run as `make soak`, or `.venv/bin/python bench/soak_crash.py [--updates N] [--kills K]
[--seed S]`. Prints the figures quoted in the README (Guarantees) (updates fed, kills, lost,
doubled, ...) and exits 1 if any guarantee failed. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.crashrun import crash_run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--keep", type=Path, help="keep the ledger and the bot logs here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gpudesk-soak-") as scratch:
        workdir = args.keep or Path(scratch)
        report = asyncio.run(
            crash_run(
                workdir,
                updates=args.updates,
                kills=args.kills,
                seed=args.seed,
                settle_timeout=180,
            )
        )
    print(f"crash soak (seed {args.seed}): {report.summary()}")
    for problem in report.problems:
        print(f"FAILED: {problem}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
