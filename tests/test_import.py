"""Chat exports go into the ledger through the desk: every format, its quirks, and no doubles.

The sample exports in tests/data carry what real ones do: service messages, media without text,
edited messages, entity lists, multi-line texts, chatter, and one broken record each.
"""

from __future__ import annotations

import io
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from gpudesk.bot.backfill import ImportReport, PlainProgress, RichProgress, backfill
from gpudesk.bot.cli import State
from gpudesk.bot.data_cli import import_command
from gpudesk.bot.importers import (
    TELEGRAM,
    WECHAT_CSV,
    WECHAT_TEXT,
    Broken,
    ChatTarget,
    Read,
    UnknownFormat,
    open_export,
)
from gpudesk.handlers.desk import Desk
from gpudesk.storage.ledger import Ledger
from tests.conftest import Chat

DATA = Path(__file__).parent / "data"
ZONE = ZoneInfo("Asia/Shanghai")

TELEGRAM_CHAT = DATA / "telegram_result.json"
TELEGRAM_ACCOUNT = DATA / "telegram_account.json"
MEMOTRACE_CSV = DATA / "GPU交易群_utf8.csv"
PYWXDUMP_CSV = DATA / "48123456789@chatroom_0_5000.csv"
WECHAT_TXT = DATA / "GPU现货群.txt"

# The contract's worked examples (shared/contract/offer-json.md), posted in the samples.
H100_RENT_BEIJING = {
    "side": "sell",
    "deal": "rent",
    "gpu": "H100",
    "variant": "SXM",
    "memory_gb": None,
    "quantity": 10,
    "quantity_unit": "server",
    "gpus_per_server": 8,
    "price": 75000,
    "currency": "CNY",
    "price_per": "server_month",
    "location": "Beijing",
}
RTX4090_WANTED = {
    "side": "buy",
    "deal": "sale",
    "gpu": "RTX 4090",
    "variant": None,
    "memory_gb": 48,
    "quantity": 100,
    "quantity_unit": "gpu",
    "gpus_per_server": None,
    "price": 21000,
    "currency": "CNY",
    "price_per": "gpu",
    "location": "Shenzhen",
}
H100_RENT_DALLAS = {
    "side": "sell",
    "deal": "rent",
    "gpu": "H100",
    "variant": "SXM",
    "memory_gb": None,
    "quantity": 64,
    "quantity_unit": "gpu",
    "gpus_per_server": None,
    "price": 2.1,
    "currency": "USD",
    "price_per": "gpu_hour",
    "location": "Dallas",
}


def run_import(desk: Desk, *paths: Path, **options: Any) -> ImportReport:
    return backfill(desk, [open_export(path, zone=ZONE) for path in paths], **options)


def offers_by_message(ledger: Ledger) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    found: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in ledger.iter_offers():
        posted = record.posted
        key = (posted.platform, posted.chat_id, posted.message_id)
        found.setdefault(key, []).append(posted.offer.to_contract())
    return found


def stored(ledger: Ledger) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(platform, chat, message id) → (text, source) of every stored message."""
    return {
        (m.platform, m.chat_id, m.message_id): (m.text, source)
        for m, source in ledger.iter_messages()
    }


def problem_lines(report: ImportReport) -> list[int]:
    return [problem.line for problem in report.problems]


# -- Telegram ---------------------------------------------------------------------------------


def test_a_telegram_chat_export_is_read_with_its_quirks(desk: Desk, ledger: Ledger) -> None:
    report = run_import(desk, TELEGRAM_CHAT)

    chat = "-1001987654321"  # the Bot API id of supergroup 1987654321, as the live bot has it
    messages = stored(ledger)
    assert sorted(int(key[2]) for key in messages) == [2, 3, 5, 7, 8, 10]
    assert {key[:2] for key in messages} == {("telegram", chat)}
    assert {source for _, source in messages.values()} == {"import"}
    # An entity list is joined into plain text; a caption on a photo is the message's text.
    assert messages[("telegram", chat, "3")][0] == "出 H100 SXM 8卡 10台 北京 月租7.5w/台"
    assert messages[("telegram", chat, "7")][0] == (
        "收 4090 48G 魔改 100张 2.1w/张 深圳\n@alice_gpu 有意私聊"
    )
    assert messages[("telegram", chat, "10")][0] == "thanks all,\nsee you tomorrow"

    assert offers_by_message(ledger) == {
        ("telegram", chat, "3"): [H100_RENT_BEIJING],
        ("telegram", chat, "7"): [RTX4090_WANTED],
        ("telegram", chat, "8"): [H100_RENT_DALLAS],
    }
    assert report.read == 6
    assert report.new_messages == 6
    assert report.new_offers == 3
    assert report.skipped == {"service message": 2, "media without text": 2}
    assert problem_lines(report) == [92]  # the record with two strings and no comma
    assert "not valid JSON" in report.problems[0].reason


def test_telegram_times_senders_and_replies_are_kept(ledger: Ledger, desk: Desk) -> None:
    run_import(desk, TELEGRAM_CHAT)
    messages = {m.message_id: m for m, _ in ledger.iter_messages()}

    assert messages["2"].sent_at == datetime(2026, 10, 5, 1, 1, tzinfo=UTC)  # date_unixtime
    assert messages["10"].sent_at == datetime(2026, 10, 5, 2, 0, tzinfo=UTC)  # local `date`
    assert (messages["5"].sender_id, messages["5"].sender_name) == ("1002", "Bob")
    assert messages["5"].reply_to_id == "3"
    assert messages["2"].chat_title == "GPU Traders"
    # A forward whose origin has no id stays the forwarder's, as the live bot would have it.
    assert messages["8"].poster_id == "1005"


def test_a_full_account_export_imports_its_groups_and_skips_personal_chats(
    desk: Desk, ledger: Ledger
) -> None:
    report = run_import(desk, TELEGRAM_ACCOUNT)

    assert set(stored(ledger)) == {
        ("telegram", "-555111", "20"),  # a basic group: -<id>
        ("telegram", "-555111", "21"),
        ("telegram", "-1001600700800", "5001"),  # a supergroup: -100<id>
        ("telegram", "-1001400400400", "7"),  # a supergroup left since: still history
    }
    assert sum(report.skipped.values()) == 1
    assert "personal chat 'Bob'" in next(iter(report.skipped))
    offers = {record.posted.message_id: record.posted for record in ledger.iter_offers()}
    assert offers["5001"].poster_id == "-1001600700800"  # posted as the channel itself
    assert (offers["7"].poster_id, offers["7"].poster_name) == ("1010", "Jay")  # forwarded
    assert offers["7"].offer.to_contract() == H100_RENT_BEIJING


def test_importing_the_same_files_again_adds_nothing(desk: Desk, ledger: Ledger) -> None:
    files = (TELEGRAM_CHAT, TELEGRAM_ACCOUNT, MEMOTRACE_CSV, PYWXDUMP_CSV, WECHAT_TXT)
    first = run_import(desk, *files)
    before = (ledger.message_count(), ledger.offer_count(), stored(ledger))

    again = run_import(desk, *files)

    assert (ledger.message_count(), ledger.offer_count(), stored(ledger)) == before
    assert (again.read, again.new_messages, again.new_offers) == (first.read, 0, 0)
    assert first.new_messages == first.read > 0


def test_an_edit_in_the_export_replaces_what_the_live_bot_stored(
    desk: Desk, ledger: Ledger, clock: Any
) -> None:
    live = Chat(desk, clock, platform="telegram", chat_id="-1001987654321")
    live.send("1001", "出 H100 SXM 8卡 10台 北京 月租8w/台", message_id="3")

    run_import(desk, TELEGRAM_CHAT)

    text, source = stored(ledger)[("telegram", "-1001987654321", "3")]
    assert text == "出 H100 SXM 8卡 10台 北京 月租7.5w/台"
    assert source == "live"  # first seen live; the import only brought the edit
    offers = offers_by_message(ledger)[("telegram", "-1001987654321", "3")]
    assert offers == [H100_RENT_BEIJING]


def test_imported_history_is_never_answered(desk: Desk, ledger: Ledger, clock: Any) -> None:
    live = Chat(desk, clock, platform="telegram", chat_id="-1001987654321")
    live.send("2001", "收 H100 SXM 8卡 10台 北京 月租7.5w/台")
    replies: list[Any] = []
    handle = desk.handle

    def spy(message: Any) -> Any:
        answer = handle(message)
        replies.extend(answer)
        return answer

    desk.handle = spy  # type: ignore[method-assign]
    report = run_import(desk, TELEGRAM_CHAT)

    assert report.read == 6
    assert replies == []


# -- WeChat -------------------------------------------------------------------------------------


def test_a_memotrace_csv_is_read_by_its_column_names(desk: Desk, ledger: Ledger) -> None:
    report = run_import(desk, MEMOTRACE_CSV)

    messages = {m.message_id: m for m, _ in ledger.iter_messages()}
    assert len(messages) == 5
    assert {(m.platform, m.chat_id, m.chat_title) for m in messages.values()} == {
        ("wechat", "GPU交易群", "GPU交易群")  # named after the file, without `_utf8`
    }
    by_text = sorted((m.text, m.sender_id, m.sender_name) for m in messages.values())
    assert by_text == [
        ("+1", "wxid_wangwu", "王五"),  # the same words twice in one second: two messages
        ("+1", "wxid_wangwu", "王五"),
        ("H100现在什么价？", "wxid_me", "我"),
        ("出 H100 SXM 8卡 10台 北京 月租7.5w/台", "wxid_zhangsan", "张三"),
        ("收 4090 48G 魔改 100张 2.1w/张 深圳\n有意私聊\n谢谢", "wxid_lisi", "李四"),
    ]
    first = min(messages.values(), key=lambda m: m.sent_at)
    assert first.sent_at == datetime(2026, 10, 7, 1, 1, tzinfo=UTC)  # CreateTime, unix
    offers = sorted(
        (offer for found in offers_by_message(ledger).values() for offer in found),
        key=lambda offer: offer["side"],
    )
    assert offers == [RTX4090_WANTED, H100_RENT_BEIJING]
    assert report.skipped == {"not a text message": 3}  # system 10000, image 3, emoji 47
    assert problem_lines(report) == [11]  # a row of 8 fields under a header of 12
    assert "8 fields" in report.problems[0].reason


def test_a_pywxdump_csv_takes_its_chat_from_room_name(desk: Desk, ledger: Ledger) -> None:
    report = run_import(desk, PYWXDUMP_CSV)

    messages = sorted(ledger.iter_messages(), key=lambda pair: pair[0].sent_at)
    assert [(m.chat_id, m.sender_id, m.text[:4]) for m, _ in messages] == [
        ("48123456789@chatroom", "wxid_zhao", "WTS "),
        ("48123456789@chatroom", "wxid_qian", "今天行情"),
        ("48123456789@chatroom", "wxid_sun", "出 H1"),
    ]
    # `2026/10/08 10:03` is local time in the zone given.
    assert messages[2][0].sent_at == datetime(2026, 10, 8, 2, 3, tzinfo=UTC)
    assert ledger.offer_count() == 2
    assert report.skipped == {"not a text message": 1}
    assert problem_lines(report) == [6]
    assert "not a time" in report.problems[0].reason


def test_a_wechat_text_export_splits_on_its_header_lines(desk: Desk, ledger: Ledger) -> None:
    report = run_import(desk, WECHAT_TXT)

    messages = sorted((m for m, _ in ledger.iter_messages()), key=lambda m: m.sent_at)
    assert [(m.sender_name, m.text) for m in messages] == [
        ("张三", "出 H100 SXM 8卡 10台 北京 月租7.5w/台"),
        ("李四", "收 4090 48G 魔改 100张 2.1w/张 深圳\n\n有意私聊"),  # blank line kept
        ("王五", "大家早"),
        ("赵六", "H100现在什么价？"),
    ]
    assert {(m.chat_id, m.sent_at.tzinfo is not None) for m in messages} == {("GPU现货群", True)}
    assert messages[0].sent_at == datetime(2026, 10, 9, 1, 1, tzinfo=UTC)
    assert sorted(offers_by_message(ledger).values(), key=str) == sorted(
        [[H100_RENT_BEIJING], [RTX4090_WANTED]], key=str
    )
    assert report.skipped == {"system notice or empty message": 1, "media without text": 1}
    assert problem_lines(report) == [1, 18]  # a title line; a header with a bad date


# -- formats, targets, failures -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (TELEGRAM_CHAT, TELEGRAM),
        (TELEGRAM_ACCOUNT, TELEGRAM),
        (MEMOTRACE_CSV, WECHAT_CSV),
        (PYWXDUMP_CSV, WECHAT_CSV),
        (WECHAT_TXT, WECHAT_TEXT),
    ],
)
def test_the_format_is_recognised_from_the_file(path: Path, kind: str) -> None:
    assert open_export(path, zone=ZONE).format == kind


def test_a_file_of_no_known_format_is_refused_with_the_formats_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# my notes\nnothing to see\n", encoding="utf-8")
    with pytest.raises(UnknownFormat, match=r"notes\.md.*Telegram.*WeChat CSV"):
        open_export(path, zone=ZONE)


def test_a_cut_off_telegram_export_keeps_what_came_before(tmp_path: Path, desk: Desk) -> None:
    text = TELEGRAM_CHAT.read_text(encoding="utf-8")
    cut = tmp_path / "result.json"
    cut.write_text(text[: text.index('"id": 8')], encoding="utf-8")

    report = run_import(desk, cut)

    assert report.read == 4  # messages 2, 3, 5 and 7
    assert problem_lines(report)[0] == 92
    assert "nothing after this line" in report.problems[-1].reason


def test_gb18030_csv_is_read(tmp_path: Path, desk: Desk, ledger: Ledger) -> None:
    path = tmp_path / "老群.csv"
    rows = (
        "StrTime,NickName,Type,StrContent\n"
        "2026-10-07 09:01:00,张三,1,出 H100 SXM 8卡 10台 北京 月租7.5w/台\n"
    )
    path.write_bytes(rows.encode("gb18030"))

    run_import(desk, path)

    assert [m.text for m, _ in ledger.iter_messages()] == ["出 H100 SXM 8卡 10台 北京 月租7.5w/台"]


def test_platform_chat_moves_a_chat_onto_the_id_the_bot_knows(desk: Desk, ledger: Ledger) -> None:
    targets = (
        ChatTarget.parse("算力交易所=telegram:-4000"),
        ChatTarget.parse("-1001600700800=telegram:-5000"),
    )
    run_import(desk, TELEGRAM_ACCOUNT, targets=targets)

    chats = {key[1] for key in stored(ledger)}
    assert chats == {"-4000", "-5000", "-1001400400400"}


@pytest.mark.parametrize("spec", ["telegram", "=telegram:", ":123", "x=:1"])
def test_a_bad_platform_chat_says_the_form(spec: str) -> None:
    with pytest.raises(ValueError, match="PLATFORM:CHAT_ID"):
        ChatTarget.parse(spec)


def test_every_record_has_its_first_line_and_moves_progress_forward() -> None:
    export = open_export(TELEGRAM_CHAT, zone=ZONE)
    entries = list(export.entries())

    assert [e.line for e in entries if isinstance(e, Read)] == [21, 36, 76, 102, 120, 143]
    assert [e.line for e in entries if isinstance(e, Broken)] == [92]
    offsets = [entry.offset for entry in entries]
    assert offsets == sorted(offsets)
    assert 0 < offsets[-1] <= export.size


# -- progress and the command ----------------------------------------------------------------


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_plain_progress_prints_percent_rate_and_time_left(desk: Desk) -> None:
    out = io.StringIO()
    run_import(desk, TELEGRAM_CHAT, progress=PlainProgress(out, every=0.0, clock=Ticks()))
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("import telegram_result.json: 100%, 6 messages,")
    assert last.endswith("/s, 0:00 left")


def test_rich_progress_draws_a_bar(desk: Desk) -> None:
    from rich.console import Console

    out = io.StringIO()
    progress = RichProgress(Console(file=out, force_terminal=True, width=120))
    run_import(desk, TELEGRAM_CHAT, progress=progress)
    progress.close()
    assert "telegram_result.json" in out.getvalue()
    assert "msgs" in out.getvalue()


def test_the_import_command_prints_a_summary_and_is_idempotent(db_path: Path) -> None:
    runner = CliRunner()
    args = [str(TELEGRAM_CHAT), str(MEMOTRACE_CSV), "--db", str(db_path)]

    first = runner.invoke(import_command, args, obj=State(None, False))
    second = runner.invoke(import_command, args, obj=State(None, False))

    assert first.exit_code == 0, first.output
    assert "messages read:   11 (11 new, 0 already in the ledger)" in first.stdout
    assert "offers found:    5 new in the ledger" in first.stdout
    assert "telegram_result.json:92: not valid JSON" in first.stdout
    assert "GPU交易群_utf8.csv:11: 8 fields" in first.stdout
    assert "messages read:   11 (0 new, 11 already in the ledger)" in second.stdout
    assert "import telegram_result.json: 100%" in first.stderr  # plain progress off a tty
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT DISTINCT source FROM messages").fetchall() == [("import",)]


def test_the_import_command_names_a_file_it_cannot_read(tmp_path: Path, db_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n", encoding="utf-8")
    result = CliRunner().invoke(
        import_command, [str(notes), "--db", str(db_path)], obj=State(None, False)
    )
    assert result.exit_code == 1
    assert "notes.txt: not a chat export gpudesk can read" in result.output


def test_the_import_command_explains_a_bad_platform_chat(db_path: Path) -> None:
    result = CliRunner().invoke(
        import_command,
        [str(TELEGRAM_CHAT), "--db", str(db_path), "--platform-chat", "nope"],
        obj=State(None, False),
    )
    assert result.exit_code == 2
    assert "PLATFORM:CHAT_ID" in result.output


def test_the_import_command_fails_when_a_whole_file_is_unreadable(
    tmp_path: Path, db_path: Path
) -> None:
    no_sender = tmp_path / "群.csv"
    no_sender.write_text("time,content\n2026-10-07 09:01:00,hello\n", encoding="utf-8")
    result = CliRunner().invoke(
        import_command,
        [str(no_sender), str(TELEGRAM_CHAT), "--db", str(db_path)],
        obj=State(None, False),
    )
    assert result.exit_code == 1
    assert "needs a time, a content and a sender column" in result.stdout
    assert "messages read:   6 (6 new" in result.stdout  # the readable file still went in


def test_every_column_name_understood_is_documented() -> None:
    from gpudesk.bot import importers

    doc = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    documented = {name.lower() for name in re.findall(r"`([^`\s]+)`", doc)}
    for names in (
        importers._TIME_COLUMNS,
        importers._CONTENT_COLUMNS,
        importers._SENDER_ID_COLUMNS,
        importers._SENDER_NAME_COLUMNS,
        importers._TYPE_COLUMNS,
        importers._CHAT_COLUMNS,
        importers._CHAT_TITLE_COLUMNS,
    ):
        assert set(names) <= documented, set(names) - documented
