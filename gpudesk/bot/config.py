"""Configuration: `config.toml` read once, validated by pydantic, overridable by environment.

Every setting lives in one `Settings` model with a section per concern. Environment variables
override the file with the prefix `GPUDESK_` and `__` between section and key, so secrets need
not be written down: `GPUDESK_TELEGRAM__TOKEN=123:abc gpudesk run`. A bad value stops start-up
with a `ConfigError` that names the key, the value and what is allowed.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gpudesk.market.offer import Currency
from gpudesk.market.watch import WatchPolicy

Language = Literal["zh", "en"]


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and what would work."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LedgerConfig(_Section):
    path: Path = Path("gpudesk.db")


class DeskConfig(_Section):
    language: Language = "zh"
    timezone: str = "Asia/Shanghai"
    currency: Currency = Currency.CNY
    usd_cny: Decimal = Field(default=Decimal("7.2"), gt=0)
    offer_days: int = Field(default=14, ge=1, le=365)
    match_tolerance: Decimal = Field(default=Decimal("0.05"), ge=0, le=1)
    match_replies: bool = True
    pulse_days: int = Field(default=7, ge=1, le=90)
    reading_strong: Decimal = Field(default=Decimal("3"), gt=1)
    reading_lean: Decimal = Field(default=Decimal("1.5"), gt=1)
    commands_per_minute: int = Field(default=5, ge=1)
    recover_reply_minutes: int = Field(default=10, ge=0, le=24 * 60)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Asia/Shanghai' or 'UTC'"
            ) from None
        return value


class TelegramConfig(_Section):
    token: SecretStr | None = None
    base_url: str | None = None
    chats: list[int] = Field(default_factory=list)


class WechatConfig(_Section):
    endpoint: str | None = None
    token: SecretStr | None = None
    min_seconds_between_messages: float = Field(default=10.0, ge=0)
    daily_cap: int = Field(default=200, ge=1)
    batch_seconds: float = Field(default=0.0, ge=0)

    @field_validator("endpoint")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"endpoint {value!r} must be host:port, e.g. '127.0.0.1:8788'")
        return value


class OutboxConfig(_Section):
    """Replies queued in the ledger (issue 9): how late one may still go after an outage, and
    how long sent ones are kept."""

    resend_within_hours: float = Field(default=24.0, gt=0)
    keep_sent_days: float = Field(default=7.0, ge=1, le=3650)


class DigestConfig(_Section):
    schedule: str = "mon 09:00"
    grace_hours: float = Field(default=6.0, ge=0)
    enabled: bool = True

    @field_validator("schedule")
    @classmethod
    def _day_and_time(cls, value: str) -> str:
        parse_schedule(value)
        return value


class WatchConfig(_Section):
    """Watchlists and alerts (issue 10): how long a watch lasts and how much it may say."""

    days: int = Field(default=30, ge=1, le=365)
    remind_days: int = Field(default=2, ge=0, le=30)
    max_per_member: int = Field(default=10, ge=1, le=1000)
    alerts_per_hour: int = Field(default=10, ge=1)
    digest_hour: int = Field(default=9, ge=0, le=23)
    enabled: bool = True

    def policy(self) -> WatchPolicy:
        """The desk's view of these settings (`DeskSettings.watch`)."""
        return WatchPolicy(
            days=self.days,
            remind_days=self.remind_days,
            max_per_member=self.max_per_member,
            alerts_per_hour=self.alerts_per_hour,
            digest_hour=self.digest_hour,
        )


class AdminsConfig(_Section):
    """Bot admins by platform user id: they may cancel any offer and run admin commands."""

    telegram: list[str] = Field(default_factory=list)
    wechat: list[str] = Field(default_factory=list)
    console: list[str] = Field(default_factory=lambda: ["me"])

    @field_validator("telegram", "wechat", "console", mode="before")
    @classmethod
    def _as_strings(cls, value: Any) -> Any:
        return [str(v) for v in value] if isinstance(value, list) else value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GPUDESK_", env_nested_delimiter="__", extra="forbid"
    )

    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    desk: DeskConfig = Field(default_factory=DeskConfig)
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    wechat: WechatConfig = Field(default_factory=WechatConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    admins: AdminsConfig = Field(default_factory=AdminsConfig)
    watch: WatchConfig = Field(default_factory=WatchConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment beats the file: a token exported by the operator wins over config.toml.
        return (env_settings, init_settings)

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram.token is not None and bool(self.telegram.token.get_secret_value())

    @property
    def wechat_enabled(self) -> bool:
        return self.wechat.endpoint is not None and self.wechat.token is not None


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_schedule(value: str) -> tuple[int, int, int]:
    """`"mon 09:00"` as (weekday 0-6, hour, minute); ValueError saying the form otherwise."""
    day, _, clock = value.strip().lower().partition(" ")
    hour, _, minute = clock.strip().partition(":")
    if day[:3] not in WEEKDAYS or not (hour.isdigit() and minute.isdigit()):
        raise ValueError(f"schedule {value!r} must be a weekday and a time, e.g. 'mon 09:00'")
    h, m = int(hour), int(minute)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"schedule {value!r} has no such time of day")
    return WEEKDAYS.index(day[:3]), h, m


def load_settings(path: Path | None) -> Settings:
    """Read `path` (TOML) if given, apply the environment, validate; ConfigError on any fault."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    try:
        return Settings(**data)
    except ValidationError as error:
        raise ConfigError(describe_errors(error, path)) from None


def describe_errors(error: ValidationError, path: Path | None) -> str:
    """One line per bad key: where, the value given, and what is allowed."""
    where = f" in {path}" if path else ""
    lines = [f"the configuration{where} has {error.error_count()} problem(s):"]
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            lines.append(f"  [{key}] is not a setting gpudesk knows; see config.example.toml")
        else:
            lines.append(f"  {key} = {problem.get('input')!r}: {message}")
    return "\n".join(lines)
