"""What every `gpudesk` command shares: the `--db` option, the loaded settings, and the turning
of the library's named errors into one sentence and exit status 1.

Commands live in several modules (`cli`, `data_cli`, `digest_cli`, `explain_cli`); they take
these from here so that each thing is done one way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from gpudesk.bot.config import ConfigError, Settings, load_settings
from gpudesk.storage.ledger import LedgerError

if TYPE_CHECKING:
    from gpudesk.market.listings import Week

DEFAULT_CONFIG = Path("config.toml")

db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GPUDESK_DB",
    help="Ledger file (SQLite); overrides [ledger] path. Env: GPUDESK_DB.",
)


class State:
    """What the `gpudesk` group hands its commands: the config file and the verbosity."""

    def __init__(self, config: Path | None = None, verbose: bool = False):
        self.config = config
        self.verbose = verbose
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The settings, loaded once: `--config`, else ./config.toml if present, else defaults."""
        if self._settings is None:
            path = self.config
            if path is None and DEFAULT_CONFIG.exists():
                path = DEFAULT_CONFIG
            try:
                self._settings = load_settings(path)
            except ConfigError as error:
                raise click.ClickException(str(error)) from None
        return self._settings


pass_state = click.make_pass_decorator(State, ensure=True)


def settings_of(ctx: click.Context) -> Settings:
    """The settings of the `gpudesk` group a command runs under (or defaults when alone)."""
    state = ctx.find_root().ensure_object(State)
    return state.settings


@contextmanager
def user_errors() -> Iterator[None]:
    """The library's named errors as one sentence and exit status 1, never a traceback."""
    from gpudesk.bot.importers import ExportError

    try:
        yield
    except (ConfigError, LedgerError, ExportError) as error:
        raise click.ClickException(str(error)) from None


def require_ledger(path: Path) -> None:
    """Commands that read a ledger refuse to create an empty one by mistake."""
    if not path.exists():
        raise click.ClickException(
            f"there is no ledger at {path}; give the right one with --db (or GPUDESK_DB),"
            " or fill one with `gpudesk import` or `gpudesk run`"
        )


def zone_named(name: str, *, option: str = "--timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"unknown time zone {name!r}; use an IANA name such as 'Asia/Shanghai' or 'UTC'",
            param_hint=option,
        ) from None


def week_named(label: str, zone: ZoneInfo) -> Week:
    """`2026-W43` as that ISO week in `zone`; a usage error naming --week otherwise."""
    from gpudesk.market.listings import Week

    try:
        return Week.parse(label, zone)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--week") from None


def parse_chat(value: str | None) -> tuple[str | None, str] | None:
    """`telegram:-100123` or a bare chat id (any platform)."""
    if value is None:
        return None
    platform, sep, chat_id = value.partition(":")
    return (platform, chat_id) if sep and platform.isalpha() else (None, value)
