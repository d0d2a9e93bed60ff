"""Guarantees 1 and 2 under fire: `gpudesk run` killed with SIGKILL at random moments while the
fake Bot API feeds it, restarted each time, loses no update and doubles none (issue 9).

The long run (10,000 updates, 20+ kills) is `make soak`; this is the short one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crashrun import crash_run

pytestmark = pytest.mark.slow


async def test_sigkill_at_random_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """1,000 updates, 6 kills: each update is one message row with its offers once, every
    update is confirmed, every owed reply is sent, and SQLite's integrity check is ok."""
    report = await crash_run(tmp_path, updates=1_000, kills=6, seed=20261102)
    print(report.summary())
    assert report.ok, f"{report.problems}\n{report.summary()}"
    assert report.updates == 1_000 and report.kills >= 6  # each kill hit a running bot
    assert report.seconds < 60
