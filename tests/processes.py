"""A real `gpudesk run` process against a fake Bot API, as an operator would start it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.fakes.telegram_api import FakeTelegram


def telegram_config(tmp_path: Path, api: FakeTelegram, db: Path) -> Path:
    """A config with only `[ledger]` and `[telegram]` (and English replies), pointing at `api`."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[ledger]\npath = "{db}"\n[telegram]\ntoken = "{api.token}"\n'
        f'base_url = "{api.base_url}"\n[desk]\nlanguage = "en"\n',
        encoding="utf-8",
    )
    return config


async def start_run(config: Path, *flags: str, cwd: Path) -> asyncio.subprocess.Process:
    """`gpudesk [flags] --config CONFIG run`, stdin closed, our GPUDESK_* variables left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUDESK_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "gpudesk", *flags, "--config", str(config), "run"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=env,
    )
