"""`gpudesk import` writes history in batches (issue 8): the same ledger as one message at a time.

An import reads a batch of messages before it takes the write lock, then writes the batch in
one go (no savepoint per message, repost checks from memory). These tests hold it to the slow,
obvious path: every message of the same generated exports handed to `Desk.handle` one by one
gives the same rows in every table the desk writes, ids included, through reposts,
cross-posts, brokers' relays, price cuts, withdrawals, commands, edits of history, a second
import, live messages in between and messages the desk cannot read.
"""

from __future__ import annotations

import json
import random
import threading
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import gpudesk.bot.backfill as backfill_module
from gpudesk.bot import importers
from gpudesk.bot.backfill import backfill
from gpudesk.bot.importers import Read, open_export
from gpudesk.handlers.commands import DeskSettings
from gpudesk.handlers.desk import Desk
from gpudesk.market.parse import parse_offers
from gpudesk.storage.ledger import Ledger
from tests.conftest import FakeClock

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)

# Every table a message's reading writes to, with the order that makes two ledgers comparable.
TABLES = {
    "messages": "id",
    "offers": "id",
    "adverts": "id",
    "withdrawals": "id",
    "users": "platform, user_id",
    "chats": "platform, chat_id",
    "parties": "id",
    "venues": "id",
    "lots": "id",
    "quotes": "id",
    "listing_changes": "id",
    "outbox": "id",
    "alerts": "id",
    "matches": "offer, counterparty",
}

GPUS = ["H100", "H800", "A100", "4090", "H20"]
CITIES = ["北京", "上海", "深圳", "乌兰察布"]


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of a few dozen messages: a test export spans many of them."""
    monkeypatch.setattr(backfill_module, "FIRST_BATCH", 17)
    monkeypatch.setattr(backfill_module, "MIN_BATCH", 17)
    monkeypatch.setattr(backfill_module, "BATCH_MESSAGES", 40)


# -- a generated history: a few traders, a few groups, a few weeks --------------------------


def offer_text(rng: random.Random) -> str:
    gpu, city = rng.choice(GPUS), rng.choice(CITIES)
    shape = rng.random()
    if shape < 0.4:
        return f"出 {gpu} 8卡 {rng.randint(1, 4)}台 {city} 月租{rng.choice(['6', '6.5', '7'])}w/台"
    if shape < 0.6:
        return f"收 {gpu} {rng.choice([16, 32, 64])}张 {city} 价格好说"
    if shape < 0.8:
        return f"WTS {rng.choice([16, 32])}x {gpu} Beijing ${rng.choice(['1.8', '2.1'])}/GPU/hr"
    return f"出售 {gpu} {rng.choice([8, 16])}张 {rng.choice(['20', '21'])}w/张 {city}"


def history(seed: int, count: int, start: datetime, chats: int = 3) -> list[list[dict[str, Any]]]:
    """Telegram export records, per chat, in time order: offers, the same offers again (by
    their poster, in another group, by a broker), price cuts, withdrawals said, replied and
    edited in, chatter, commands, service messages, photos, forwards and edits."""
    rng = random.Random(seed)
    users = [(1000 + n, f"trader{n}") for n in range(8)]
    said: dict[int, tuple[int, int, str]] = {}  # user -> (chat, message id, text) of an offer
    records: list[list[dict[str, Any]]] = [[] for _ in range(chats)]
    at = start
    for number in range(count):
        at += timedelta(minutes=rng.randint(1, 180))
        chat = rng.randrange(chats)
        user = rng.choice(users)
        record: dict[str, Any] = {
            "id": 1000 * seed + number + 1,
            "type": "message",
            "date": at.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M:%S"),
            "date_unixtime": str(int(at.timestamp())),
            "from": user[1],
            "from_id": f"user{user[0]}",
        }
        roll = rng.random()
        if roll < 0.04:
            record.update(type="service", action="invite_members", text="")
        elif roll < 0.07:
            record.update(photo="photos/1.jpg", text="")
        elif roll < 0.45:
            before = said.get(user[0])
            if before is not None and rng.random() < 0.5:
                text = before[2]  # said again: a repost, or a cross-post in another group
                if rng.random() < 0.2:
                    text = text.replace("月租6w", "月租5.5w").replace("$2.1", "$1.8")  # a cut
            else:
                text = offer_text(rng)
            said[user[0]] = (chat, record["id"], text)
            record["text"] = text
            if rng.random() < 0.15:  # an entity list rather than a string
                record["text"] = [{"type": "bold", "text": text[:1]}, text[1:]]
        elif roll < 0.55:
            other = rng.choice(users)
            if other[0] in said and rng.random() < 0.7:
                record["text"] = said[other[0]][2]  # someone else's offer: a broker's relay
            else:
                record["text"] = offer_text(rng)
            if rng.random() < 0.3:
                record["forwarded_from"], record["forwarded_from_id"] = other[1], f"user{other[0]}"
        elif roll < 0.63:
            before = said.get(user[0])
            if before is not None and before[0] == chat and rng.random() < 0.5:
                record["text"] = "已出"
                record["reply_to_message_id"] = before[1]  # a reply to the post it ends
            else:
                record["text"] = rng.choice(["H100已出，谢谢各位", "4090 已出", "fully booked"])
        elif roll < 0.66:
            record["text"] = rng.choice(["/price H100", "查价 4090", "/mine"])
        else:
            record["text"] = rng.choice(["大家好", "H100现在什么价？", "收到", "thanks!"])
        if rng.random() < 0.03:
            record["edited_unixtime"] = str(int(at.timestamp()) + 60)
        records[chat].append(record)
    return records


def write_account(path: Path, chats: list[list[dict[str, Any]]], names: str = "GPU群") -> Path:
    """A full-account export (pretty-printed, as Telegram Desktop writes it), with a personal
    chat among the groups."""
    listed: list[dict[str, Any]] = [
        {"name": "Bob", "type": "personal_chat", "id": 9, "messages": chats[0][:3]}
    ]
    for index, records in enumerate(chats):
        listed.append(
            {
                "name": f"{names} {index + 1}",
                "type": "private_supergroup",
                "id": 1700000000 + index,
                "messages": records,
            }
        )
    export = {"about": "Here is the data you requested.", "chats": {"list": listed}}
    path.write_text(json.dumps(export, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def edited(chats: list[list[dict[str, Any]]], seed: int) -> list[list[dict[str, Any]]]:
    """The same history exported again later: some posts edited (into other offers, into
    "已出", into chatter), the rest as before."""
    rng = random.Random(seed)
    out = []
    for records in chats:
        again = []
        for record in records:
            record = dict(record)
            if isinstance(record.get("text"), str) and record["text"] and rng.random() < 0.12:
                record["text"] = rng.choice(
                    [offer_text(rng), "已出", "H100已出", "sorry, wrong group", record["text"]]
                )
                record["edited_unixtime"] = str(int(record["date_unixtime"]) + 3600)
            again.append(record)
        out.append(again)
    return out


# -- the two ways in -------------------------------------------------------------------------


def ledger_and_desk(path: Path, clock: FakeClock, **desk: Any) -> tuple[Ledger, Desk]:
    ledger = Ledger.open(path)
    return ledger, Desk(ledger, DeskSettings(language="en"), clock=clock, **desk)


def one_by_one(desk: Desk, path: Path) -> int:
    """The slow path: each message to `Desk.handle`, its own transaction; how many failed."""
    failed = desk.failed
    for entry in open_export(path, zone=ZONE).entries():
        if isinstance(entry, Read):
            desk.handle(entry.message)
    return desk.failed - failed


def rows(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: ledger.conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
        for table, order in TABLES.items()
    }


def same_ledgers(fast: Ledger, slow: Ledger) -> None:
    """Row by row, table by table (ids and times of handling too: the clock stands still)."""
    found, expected = rows(fast), rows(slow)
    for table in TABLES:
        assert len(found[table]) == len(expected[table]), table
        for got, want in zip(found[table], expected[table], strict=True):
            assert got == want, table


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START + timedelta(days=60))


def test_a_batched_import_writes_what_one_message_at_a_time_writes(
    tmp_path: Path, clock: FakeClock
) -> None:
    first = write_account(tmp_path / "result.json", history(1, 700, START))
    fast, fast_desk = ledger_and_desk(tmp_path / "fast.db", clock)
    slow, slow_desk = ledger_and_desk(tmp_path / "slow.db", clock)

    report = backfill(fast_desk, [open_export(first, zone=ZONE)])
    assert one_by_one(slow_desk, first) == 0
    same_ledgers(fast, slow)
    assert report.read > 600 and not report.problems
    written = rows(fast)
    offers, adverts = len(written["offers"]), len(written["adverts"])
    assert adverts > offers > 50 and len(written["withdrawals"]) > 10  # reposts, deals ended
    assert fast.conn.execute("SELECT count(*) FROM offers WHERE status = 'withdrawn'").fetchone()[0]

    # A live post, then the same history exported again with edits, and more of it.
    for desk in (fast_desk, slow_desk):
        desk.handle(
            desk_message(clock, "出 H100 8卡 4台 北京 月租6w/台", sender="1003", name="trader3")
        )
    again = write_account(
        tmp_path / "again.json",
        [a + b for a, b in zip(edited(history(1, 700, START), 2),
                               history(2, 300, START + timedelta(days=20)), strict=True)],
    )  # fmt: skip
    second = backfill(fast_desk, [open_export(again, zone=ZONE)])
    assert one_by_one(slow_desk, again) == 0
    same_ledgers(fast, slow)
    assert fast.conn.execute("SELECT count(*) FROM messages WHERE edited_at IS NOT NULL").fetchone()
    assert second.new_messages == len(rows(fast)["messages"]) - report.new_messages - 1

    # Importing it once more changes nothing at all.
    before = rows(fast)
    third = backfill(fast_desk, [open_export(again, zone=ZONE)])
    assert rows(fast) == before
    assert (third.new_messages, third.new_offers, third.problems) == (0, 0, [])


def desk_message(clock: FakeClock, text: str, *, sender: str, name: str) -> Any:
    from gpudesk.handlers.message import ChatMessage

    return ChatMessage(
        platform="telegram",
        chat_id="-1001700000000",
        sender_id=sender,
        sender_name=name,
        text=text,
        sent_at=clock(),
        message_id="live-1",
        chat_title="GPU群 1",
    )


def test_a_message_the_desk_cannot_read_fails_alone_as_one_by_one(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """One message the parser trips on, one that fails after its offer was booked: each
    batch they are in is rolled back and written again one message at a time, so the rest
    goes in and the ledger ends as `handle` leaves it; both are reported by their lines."""
    chats = history(3, 300, START)
    chats[0][40]["text"] = "出 H100 8卡 2台 北京 月租6w/台 boom"  # the parser fails
    chats[1][50]["text"] = "出 A100 8卡 3台 上海 月租5w/台 bang"  # fails after booking
    chats[0].insert(42, "not a message")  # and a broken record in the same batch, after it
    export = write_account(tmp_path / "result.json", chats)

    def parse(text: str) -> Any:
        if "boom" in text:
            raise RuntimeError("the parser tripped")
        return parse_offers(text)

    real_advert = Ledger.record_advert

    def record_advert(self: Ledger, **values: Any) -> int:
        if "bang" in values["message"].text:
            raise RuntimeError("the disk said no")
        return real_advert(self, **values)

    monkeypatch.setattr(Ledger, "record_advert", record_advert)
    fast, fast_desk = ledger_and_desk(tmp_path / "fast.db", clock, parse=parse)
    slow, slow_desk = ledger_and_desk(tmp_path / "slow.db", clock, parse=parse)

    with caplog.at_level("INFO", logger="gpudesk.bot.backfill"):
        report = backfill(fast_desk, [open_export(export, zone=ZONE)])
    assert one_by_one(slow_desk, export) == 2
    same_ledgers(fast, slow)
    lines = export.read_text(encoding="utf-8").splitlines()
    assert [lines[p.line - 1].strip() for p in report.problems] == ["{", '"not a message",', "{"]
    unreadable = "the desk could not read it; see the log"
    assert [p.reason for p in report.problems] == [
        unreadable,
        "a message must be a JSON object",
        unreadable,
    ]  # in the file's order
    assert fast_desk.failed == 2
    assert caplog.text.count("could not be written at once") == 2  # two batches, not all
    unread = [m.text for _, m in fast.unhandled_messages()]
    assert sorted(unread) == sorted([chats[0][40]["text"], chats[1][50]["text"]])
    stored = fast.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert report.read == stored  # everything else went in


def test_the_offers_kept_in_memory_follow_other_writers_between_batches(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Between two batches another connection withdraws an offer, or this one books one
    outside a batch: the next batch's repost check sees it, as a check in SQL would."""
    path = tmp_path / "ledger.db"
    ledger, desk = ledger_and_desk(path, clock)
    sell = "出 H100 8卡 2台 北京 月租6w/台"

    def batch(*posts: tuple[str, str, datetime]) -> None:
        with ledger.transaction():
            desk.read_history(
                [
                    desk.prepare(message(sender, text, at, f"{sender}-{at:%j%H%M}"))
                    for sender, text, at in posts
                ]
            )

    batch(("alice", sell, START), ("bob", sell, START))
    with Ledger.open(path) as other:  # the bot, on its own connection
        [alice_offer] = other.offers_of_message(1)
        other.set_status(alice_offer, "withdrawn", now=START + timedelta(hours=1))
    desk.handle(message("carol", sell, START + timedelta(hours=1), "carol-live", announce=False))
    batch(
        ("alice", sell, START + timedelta(hours=2)),  # a new offer: hers was withdrawn
        ("bob", sell, START + timedelta(hours=2)),  # his standing offer again
        ("carol", sell, START + timedelta(hours=2)),  # hers, booked outside a batch
    )
    # Within a batch: dave's post is edited into chatter (its offer goes), then he posts the
    # offer again: a new one, not a refresh of the offer the edit took away.
    later = START + timedelta(hours=3)
    with ledger.transaction():
        desk.read_history(
            [
                desk.prepare(message("dave", sell, later, "dave-1")),
                desk.prepare(message("dave", "sorry, wrong group", later, "dave-1", edited=True)),
                desk.prepare(message("dave", sell, later + timedelta(minutes=5), "dave-2")),
            ]
        )
    # Within a batch: erin's offer, said again ten days on (so it stands past the fourteen
    # days), then sold on day twenty: the refresh kept in memory is written before the
    # withdrawal reads the book, which closes the offer.
    erin = "出 A100 8卡 4台 上海 月租5w/台"
    batch(
        ("erin", erin, later),
        ("erin", erin, later + timedelta(days=10)),
        ("erin", "A100已出，谢谢各位", later + timedelta(days=20)),
    )
    rows_ = ledger.conn.execute(
        "SELECT poster_id, status, seen_count FROM offers ORDER BY id"
    ).fetchall()
    assert rows_ == [
        ("alice", "withdrawn", 1),
        ("bob", "open", 2),
        ("carol", "open", 2),
        ("alice", "open", 1),
        ("dave", "open", 1),
        ("erin", "withdrawn", 2),
    ]
    ledger.close()


def message(sender: str, text: str, at: datetime, message_id: str, **extra: Any) -> Any:
    from gpudesk.handlers.message import ChatMessage

    values = {"chat_id": "-100777", **extra}
    return ChatMessage(
        platform="telegram",
        sender_id=sender,
        sender_name=sender.title(),
        text=text,
        sent_at=at,
        message_id=message_id,
        **values,
    )


@pytest.mark.slow
def test_a_bot_writes_to_the_ledger_while_an_import_runs(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import holds the write lock a batch at a time: a bot on the same file gets it in
    between, every time, without "database is locked", and nothing of either is lost."""
    monkeypatch.setattr(backfill_module, "BATCH_MESSAGES", 20_000)  # batches of the real size
    monkeypatch.setattr(backfill_module, "MIN_BATCH", 100)
    monkeypatch.setattr(backfill_module, "BATCH_SECONDS", 0.05)
    export = write_account(tmp_path / "result.json", history(4, 6000, START))
    path = tmp_path / "ledger.db"
    ledger, desk = ledger_and_desk(path, clock)
    done = threading.Event()
    waits: list[float] = []
    errors: list[BaseException] = []

    def bot() -> None:
        with Ledger.open(path) as own:
            live = Desk(own, DeskSettings(language="en"))
            failed = 0
            n = 0
            while not done.is_set() or n < 20:
                n += 1
                began = time.monotonic()
                live.handle(message(f"live{n % 7}", f"收 H100 {n}张 北京", datetime.now(UTC),
                                    f"live-{n}"))  # fmt: skip
                waits.append(time.monotonic() - began)
                failed = live.failed
                time.sleep(0.01)
            if failed:
                errors.append(RuntimeError(f"{failed} live messages failed"))

    thread = threading.Thread(target=bot)
    thread.start()
    try:
        report = backfill(desk, [open_export(export, zone=ZONE)])
    finally:
        done.set()
        thread.join(timeout=60)
    assert not errors
    assert not report.problems
    live = ledger.conn.execute("SELECT count(*) FROM messages WHERE source = 'live'").fetchone()
    assert live[0] == len(waits) >= 20
    assert max(waits) < 5.0  # a batch's worth of waiting, never the busy timeout
    ledger.close()


# -- the Telegram reader streams: a window of the file, never all of it -----------------------

DATA = Path(__file__).parent / "data"


def telegram_samples(tmp_path: Path) -> list[Path]:
    """Both shapes (a chat, an account), text as strings and entity lists, a broken record,
    a file cut short, one written without layout, and a chat whose id follows its messages."""
    chat = DATA / "telegram_result.json"
    text = chat.read_text(encoding="utf-8")
    cut = tmp_path / "cut.json"
    cut.write_text(text[: text.index('"id": 8')], encoding="utf-8")
    generated = write_account(tmp_path / "account.json", history(5, 150, START))
    minified = tmp_path / "minified.json"
    minified.write_text(
        json.dumps(json.loads(generated.read_text(encoding="utf-8")), ensure_ascii=False),
        encoding="utf-8",
    )
    late_id = tmp_path / "late_id.json"
    late_id.write_text(
        '{"name": "GPU群", "messages": '
        + json.dumps(history(6, 60, START)[0], ensure_ascii=False, indent=1)
        + ', "type": "private_group", "id": 4242}',
        encoding="utf-8",
    )
    return [chat, DATA / "telegram_account.json", cut, generated, minified, late_id]


def entries(path: Path) -> list[tuple[Any, ...]]:
    """What reading `path` gives: each entry's kind, first line and message or reason."""
    found = []
    offsets = []
    for entry in open_export(path, zone=ZONE).entries():
        what = entry.message if isinstance(entry, Read) else entry.reason
        found.append((type(entry).__name__, entry.line, what))
        offsets.append(entry.offset)
    assert offsets == sorted(offsets) and 0 <= offsets[-1] <= path.stat().st_size
    return found


@pytest.mark.parametrize("chunk", [1, 7, 500])
def test_the_telegram_reader_reads_the_same_whatever_its_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    samples = telegram_samples(tmp_path)
    expected = {path: entries(path) for path in samples}  # a megabyte at a time: all at once
    monkeypatch.setattr(importers, "_CHUNK_BYTES", chunk)
    for path in samples:
        assert entries(path) == expected[path], path.name
    assert sum(kind == "Read" for kind, _, _ in expected[samples[-1]]) > 10  # the late id
    chat_ids = {what.chat_id for kind, _, what in expected[samples[-1]] if kind == "Read"}
    assert chat_ids == {"-4242"}
    assert [line for kind, line, _ in expected[samples[0]] if kind == "Broken"] == [92]
    assert "nothing after this line" in expected[samples[2]][-1][2]  # the file cut short


def test_the_telegram_reader_holds_a_window_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = write_account(tmp_path / "result.json", history(7, 9000, START))
    chunk = 16 * 1024
    monkeypatch.setattr(importers, "_CHUNK_BYTES", chunk)
    widest = 0
    fill = importers._Cursor._fill

    def measured(self: Any) -> bool:
        nonlocal widest
        more = fill(self)
        widest = max(widest, len(self.text))
        return bool(more)

    monkeypatch.setattr(importers._Cursor, "_fill", measured)
    tracemalloc.start()
    try:
        read = sum(isinstance(e, Read) for e in open_export(export, zone=ZONE).entries())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = export.stat().st_size
    assert read > 8000 and size > 2_000_000
    assert widest < 2 * chunk  # characters: a chunk and the line it cut
    assert peak < size / 4  # bytes allocated at most at once, entries included


def test_a_later_batch_sees_what_another_chat_posted_since_the_last(
    tmp_path: Path, clock: FakeClock
) -> None:
    """An export's second chat goes back in time, then forward again past posts of the first
    chat: the offers of the first chat posted since the last batch join the book, so a
    cross-post refreshes the oldest standing offer, as one message at a time would."""
    sell = "出 H100 8卡 2台 北京 月租6w/台"
    day = timedelta(days=1)
    batches = [
        [("x", START + 2 * day)],  # the first chat
        [("y", START + day)],  # the second, back in time: a new offer (the other is later)
        [("y", START + 3 * day)],  # forward again: the oldest standing offer is said again
    ]
    found = []
    for name in ("fast", "slow"):
        ledger, desk = ledger_and_desk(tmp_path / f"{name}.db", clock)
        for number, posts in enumerate(batches):
            messages = [
                message("alice", sell, at, f"{number}-{n}", chat_id=chat)
                for n, (chat, at) in enumerate(posts)
            ]
            if name == "fast":
                with ledger.transaction():
                    desk.read_history([desk.prepare(m) for m in messages])
            else:
                for m in messages:
                    desk.handle(m)
        found.append(
            ledger.conn.execute(
                "SELECT chat_id, posted_at, seen_at, seen_count FROM offers ORDER BY id"
            ).fetchall()
        )
        ledger.close()
    assert found[0] == found[1]
    assert [row[3] for row in found[0]] == [2, 1]  # x's, said again in y; y's own


def test_watches_keep_working_across_an_import(tmp_path: Path, clock: FakeClock) -> None:
    """The offers an import keeps in memory and the watch book are the ledger's two caches:
    an import between two live offers leaves the watches as they were, and alerts no one."""
    from tests.conftest import Chat
    from tests.test_watch import CHEAP, WATCH_EN, alerts

    ledger, desk = ledger_and_desk(tmp_path / "ledger.db", clock)
    room = Chat(desk, clock, platform="telegram", chat_id="-1001700000000")
    room.post("bob", WATCH_EN)
    assert len(alerts(room.send("alice", CHEAP))) == 1
    history_ = history(8, 200, clock() - timedelta(days=30))
    history_[0].append(
        {"id": 999999, "type": "message", "date_unixtime": str(int(clock().timestamp()) - 60),
         "from": "Carol", "from_id": "user77", "text": CHEAP}
    )  # fmt: skip
    report = backfill(desk, [open_export(write_account(tmp_path / "r.json", history_), zone=ZONE)])
    assert report.read > 150 and not report.problems
    assert ledger.conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 1  # history: none
    assert len(alerts(room.send("dave", CHEAP))) == 1  # and the watch still hears live offers
    ledger.close()
