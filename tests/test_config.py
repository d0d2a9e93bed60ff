"""Configuration: defaults, the example file, the environment, and errors that name the key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gpudesk.bot.config import ConfigError, Settings, load_settings, parse_schedule

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_gives_working_defaults() -> None:
    settings = load_settings(None)
    assert settings.desk.language == "zh"
    assert settings.desk.usd_cny == Decimal("7.2")
    assert not settings.telegram_enabled and not settings.wechat_enabled


def test_the_example_config_is_valid_and_runs_the_console() -> None:
    settings = load_settings(ROOT / "config.example.toml")
    assert not settings.telegram_enabled and not settings.wechat_enabled


def test_every_setting_is_documented_in_the_example() -> None:
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for section, model in Settings.model_fields.items():
        assert f"[{section}]" in example
        for key in model.annotation.model_fields:  # type: ignore[union-attr]
            assert f"{key} =" in example, f"[{section}] {key} is not in config.example.toml"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[telegram]\ntoken = "from-file"\n')
    monkeypatch.setenv("GPUDESK_TELEGRAM__TOKEN", "from-env")
    settings = load_settings(path)
    assert settings.telegram.token is not None
    assert settings.telegram.token.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)  # secrets never print


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[desk]\nusd_cny = -1\n", "desk.usd_cny = -1: Input should be greater than 0"),
        ('[desk]\ntimezone = "Mars/Olympus"\n', "unknown time zone 'Mars/Olympus'"),
        ('[desk]\nlanguage = "fr"\n', "desk.language = 'fr'"),
        ('[desk]\ncolour = "red"\n', "[desk.colour] is not a setting gpudesk knows"),
        ('[wechat]\nendpoint = "localhost"\n', "must be host:port"),
        ('[digest]\nschedule = "someday"\n', "must be a weekday and a time"),
        ("[desk\n", "is not valid TOML"),
    ],
)
def test_a_bad_config_names_the_key_the_value_and_what_is_allowed(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text))
    assert expected in str(raised.value)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_schedules_read_as_weekday_hour_minute() -> None:
    assert parse_schedule("Mon 09:00") == (0, 9, 0)
    assert parse_schedule("sunday 23:59") == (6, 23, 59)
    with pytest.raises(ValueError):
        parse_schedule("mon 25:00")
