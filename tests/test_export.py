"""The ledger goes out as CSV or JSON Lines: messages, offers with normalised prices, the pulse."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from gpudesk.bot import export as ex
from gpudesk.bot.cli import State
from gpudesk.bot.data_cli import export_command
from gpudesk.handlers.desk import Desk
from gpudesk.storage.ledger import Ledger
from tests.test_import import (
    H100_RENT_BEIJING,
    H100_RENT_DALLAS,
    MEMOTRACE_CSV,
    RTX4090_WANTED,
    TELEGRAM_CHAT,
    ZONE,
    run_import,
)

BEFORE_EXPIRY = datetime(2026, 10, 6, tzinfo=UTC)  # the samples were posted on 5 and 7 October
AFTER_EXPIRY = datetime(2026, 12, 1, tzinfo=UTC)
LIFETIME = timedelta(days=14)


@pytest.fixture
def filled(desk: Desk, ledger: Ledger) -> Ledger:
    run_import(desk, TELEGRAM_CHAT, MEMOTRACE_CSV)
    return ledger


def as_csv(rows: Any, columns: tuple[str, ...]) -> list[dict[str, str]]:
    sink = io.StringIO()
    ex.write_rows(rows, columns, "csv", sink)
    sink.seek(0)
    reader = csv.DictReader(sink)
    assert tuple(reader.fieldnames or ()) == columns
    return list(reader)


def as_jsonl(rows: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    sink = io.StringIO()
    ex.write_rows(rows, columns, "jsonl", sink)
    records = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert all(tuple(record) == columns for record in records)
    return records


def contract_of(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record[name] for name in ex.CONTRACT_FIELDS}


def test_offers_export_as_jsonl_with_the_contract_and_a_price_per_unit(filled: Ledger) -> None:
    records = as_jsonl(ex.offer_rows(filled, now=BEFORE_EXPIRY), ex.OFFER_COLUMNS)

    assert len(records) == filled.offer_count() == 5
    telegram = {r["message_id"]: r for r in records if r["platform"] == "telegram"}
    beijing, wanted, dallas = telegram["3"], telegram["7"], telegram["8"]
    assert contract_of(beijing) == H100_RENT_BEIJING
    assert contract_of(wanted) == RTX4090_WANTED
    assert contract_of(dallas) == H100_RENT_DALLAS
    # 75000 CNY a server-month over 730 h and 8 GPUs; $2.10 an hour at 7.2 CNY the dollar.
    assert (beijing["unit_price"], beijing["unit"], beijing["unit_currency"]) == (
        12.8425,
        "gpu_hour",
        "CNY",
    )
    assert (dallas["unit_price"], dallas["unit"]) == (15.12, "gpu_hour")
    assert (wanted["unit_price"], wanted["unit"]) == (21000, "gpu")
    assert beijing["chat_id"] == "-1001987654321"
    assert beijing["chat_title"] == "GPU Traders"
    assert (beijing["poster_id"], beijing["poster_name"]) == ("1001", "Alice")
    assert beijing["posted_at"] == "2026-10-05T01:05:00.000000+00:00"
    assert beijing["status"] == "open"
    assert beijing["gpus"] == 80


def test_an_open_offer_past_its_expiry_is_exported_as_expired(filled: Ledger) -> None:
    records = as_jsonl(ex.offer_rows(filled, now=AFTER_EXPIRY), ex.OFFER_COLUMNS)
    assert {r["status"] for r in records} == {"expired"}


def test_offers_export_as_csv_reads_back_to_the_same_values(filled: Ledger) -> None:
    rows = as_csv(ex.offer_rows(filled, now=BEFORE_EXPIRY), ex.OFFER_COLUMNS)
    records = as_jsonl(ex.offer_rows(filled, now=BEFORE_EXPIRY), ex.OFFER_COLUMNS)

    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        for name in ex.OFFER_COLUMNS:
            value = record[name]
            expected = "" if value is None else str(value)
            if isinstance(value, float | int) and not isinstance(value, bool):
                assert Decimal(row[name]) == Decimal(str(value)), name
            else:
                assert row[name] == expected, name


def test_every_offer_row_names_the_message_it_came_from(filled: Ledger) -> None:
    messages = {(m.platform, m.chat_id, m.message_id): m for m, _ in filled.iter_messages()}
    for row in ex.offer_rows(filled, now=BEFORE_EXPIRY):
        message = messages[(row["platform"], row["chat_id"], row["message_id"])]
        assert message.poster_id == row["poster_id"]


def test_messages_export_carries_platform_chat_and_message_id(filled: Ledger) -> None:
    rows = as_csv(ex.message_rows(filled), ex.MESSAGE_COLUMNS)

    assert len(rows) == filled.message_count() == 11
    first = rows[0]
    assert (first["platform"], first["chat_id"], first["message_id"]) == (
        "telegram",
        "-1001987654321",
        "2",
    )
    assert first["source"] == "import"
    assert first["sent_at"] == "2026-10-05T01:01:00.000000+00:00"
    multi_line = next(row for row in rows if row["message_id"] == "10")
    assert multi_line["text"] == "thanks all,\nsee you tomorrow"  # quoted, read back whole


def test_since_keeps_what_came_from_then_on(filled: Ledger) -> None:
    since = datetime(2026, 10, 6, tzinfo=ZONE)
    messages = list(ex.message_rows(filled, since=since))
    offers = list(ex.offer_rows(filled, now=BEFORE_EXPIRY, since=since))

    assert {row["chat_id"] for row in messages} == {"GPU交易群"}  # 7 October
    assert len(messages) == 5
    assert len(offers) == 2


def test_pulse_rows_are_per_iso_week_gpu_and_deal(filled: Ledger) -> None:
    rows = ex.pulse_rows(filled, zone=ZONE, lifetime=LIFETIME, now=AFTER_EXPIRY)

    assert [(r["week"], r["gpu"], r["deal"]) for r in rows[:2]] == [
        ("2026-W41", "H100", "rent"),
        ("2026-W41", "RTX 4090", "sale"),
    ]
    h100, rtx = rows[:2]
    # Alice and Erin (Telegram) and 张三 (WeChat) sell; asks 12.8425, 15.12 and 12.8425.
    assert (h100["sellers"], h100["buyers"]) == (3, 0)
    assert h100["median_ask"] == Decimal("12.8425")
    assert h100["median_bid"] is None
    assert (h100["week_start"], h100["unit"], h100["currency"]) == ("2026-10-05", "gpu_hour", "CNY")
    assert (rtx["buyers"], rtx["median_bid"], rtx["unit"]) == (2, Decimal("21000"), "gpu")
    assert all(tuple(row) == ex.PULSE_COLUMNS for row in rows)


def test_a_week_runs_from_monday_midnight_in_the_desks_zone(filled: Ledger) -> None:
    rows = ex.pulse_rows(filled, zone=ZoneInfo("Etc/GMT+12"), lifetime=LIFETIME, now=AFTER_EXPIRY)
    # 5 October 01:01 UTC is Sunday 4 October 13:01 at UTC-12: the week before.
    assert rows[0]["week"] == "2026-W40"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="csv, jsonl"):
        ex.write_rows([], ex.PULSE_COLUMNS, "xml", io.StringIO())


# -- the command -------------------------------------------------------------------------------


def invoke(*args: str) -> Any:
    return CliRunner().invoke(export_command, list(args), obj=State(None, False))


def test_the_export_command_writes_a_file(filled: Ledger, db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "offers.csv"
    result = invoke("--db", str(db_path), "--what", "offers", "--format", "csv", "--out", str(out))

    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    assert {row["unit"] for row in rows} == {"gpu_hour", "gpu"}


def test_the_export_command_writes_jsonl_to_stdout(filled: Ledger, db_path: Path) -> None:
    result = invoke(
        "--db", str(db_path), "--what", "messages", "--format", "jsonl", "--since", "2026-10-07"
    )

    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["chat_id"] for r in records] == ["GPU交易群"] * 5
    assert records[0]["text"] == "出 H100 SXM 8卡 10台 北京 月租7.5w/台"


def test_the_export_command_writes_the_pulse(filled: Ledger, db_path: Path) -> None:
    result = invoke("--db", str(db_path), "--what", "pulse")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == ",".join(ex.PULSE_COLUMNS)
    assert lines[1].startswith("2026-W41,2026-10-05,H100,rent,3,0,12.8425,,")


def test_the_export_command_explains_a_bad_date(filled: Ledger, db_path: Path) -> None:
    result = invoke("--db", str(db_path), "--what", "offers", "--since", "last week")
    assert result.exit_code == 2
    assert "write 2025-01-02" in result.output


def test_the_export_command_does_not_create_a_ledger(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    result = invoke("--db", str(missing), "--what", "offers")
    assert result.exit_code == 1
    assert f"there is no ledger at {missing}" in result.output
    assert not missing.exists()


@pytest.mark.parametrize(
    "columns",
    [ex.MESSAGE_COLUMNS, ex.OFFER_COLUMNS, ex.PULSE_COLUMNS],
    ids=["messages", "offers", "pulse"],
)
def test_every_export_column_is_documented(columns: tuple[str, ...]) -> None:
    doc = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [name for name in columns if f"`{name}`" not in doc]
    assert missing == []
