"""Benchmark `gpudesk import` on one core: a generated Telegram (or WeChat CSV) export.

Run as `.venv/bin/python bench/bench_import.py [--messages N] [--format telegram|wechat-csv]
[--profile] [--dir DIR [--reuse]]`. It writes an export with a realistic mix (about a third
offers: Chinese and English, rent and sale, price lists, reposts of standing offers; the rest
chatter, questions, news, withdrawals, service messages, photos, edits and forwards) over a year
in four groups, then times:

- reading: the export's records alone, without the desk;
- parsing: `parse_offers` over every text alone;
- import: `backfill` through a real `Desk` on a fresh ledger file, the whole path, in a process
  of its own, so that its peak memory (resident set) is the import's alone;

and prints messages per second, the time 1,000,000 messages would take and the import's peak
memory. The target is under 2 minutes for 1,000,000. `--profile` adds the import's top
functions by own time (cProfile). `--reuse` keeps an export already written in `--dir`.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpudesk.bot.backfill import PlainProgress, backfill  # noqa: E402
from gpudesk.bot.importers import Read, open_export  # noqa: E402
from gpudesk.handlers.commands import DeskSettings  # noqa: E402
from gpudesk.handlers.desk import Desk  # noqa: E402
from gpudesk.market.parse import parse_offers  # noqa: E402
from gpudesk.storage.ledger import Ledger  # noqa: E402

TARGET_SECONDS_PER_MILLION = 120.0
ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=365)

GPUS_ZH = ["H100", "H800", "H200", "H20", "A100", "A800", "4090", "4090D", "L40S", "910B", "B200"]
GPUS_EN = ["H100", "H200", "B200", "A100", "L40S", "MI300X", "RTX 4090"]
CITIES_ZH = ["北京", "上海", "深圳", "杭州", "乌兰察布", "庆阳", "成都", "苏州", "贵安", "香港"]
CITIES_EN = ["Dallas TX", "Singapore", "Johor", "Tokyo", "Frankfurt", "Los Angeles", "HK"]
CHATTER = [
    "大家好",
    "早",
    "收到，谢谢",
    "有人在吗",
    "这个价格太高了吧",
    "最近行情不太好",
    "周末愉快",
    "哈哈哈",
    "👍",
    "私聊了",
    "好的",
    "已加微信",
    "thanks!",
    "good morning all",
    "DM sent",
    "anyone going to the Shenzhen expo next week?",
    "lol",
    "H100现在什么价？",
    "4090还有人收吗？",
    "anyone know the current H200 rate in Singapore?",
    "听说H800月租从12w掉到5w了",
    "H100 已出，谢谢大家",
    "群规：只发供需，不要刷屏",
    "Heard a Zhengzhou operator is dumping 2,000 H800s",
    "明天上午开会，下午再聊",
    "这家的机房我去过，条件不错\n网络是IB 400G\n电费比较便宜",
]


def offer_text(rng: random.Random) -> str:
    """One offer post, drawn from the shapes the groups use."""
    shape = rng.random()
    gpu = rng.choice(GPUS_ZH)
    city = rng.choice(CITIES_ZH)
    if shape < 0.25:
        price = rng.choice(["5.5", "6", "6.8", "7", "7.5", "8.2"])
        return f"出 {gpu} 8卡 {rng.randint(1, 20)}台 {city} 月租{price}w/台"
    if shape < 0.40:
        price = rng.choice(["1.55", "1.75", "2.1", "5.2", "23", "26"])
        return f"出售 {gpu} {rng.randint(8, 500)}张 {price}w/张 {city} 现货"
    if shape < 0.55:
        return f"收 {gpu} {rng.randint(8, 300)}张 {city} 价格好说"
    if shape < 0.65:
        return f"求租 {gpu} 8卡 {rng.randint(2, 30)}台 {city} 预算{rng.randint(4, 8)}w/台/月"
    if shape < 0.80:
        price = f"{rng.uniform(1.2, 3.5):.2f}"
        en = rng.choice(GPUS_EN)
        where = rng.choice(CITIES_EN)
        return f"WTS {rng.choice([8, 16, 64, 128, 256])}x {en} SXM, {where}, ${price}/GPU/hr"
    if shape < 0.88:
        en = rng.choice(GPUS_EN)
        budget = rng.randint(10, 16)
        return (
            f"WTB {rng.randint(2, 8)}x 8-GPU {en} nodes in Singapore, budget ${budget}k/node/month"
        )
    items = "\n".join(
        f"{g} 8卡 {rng.randint(1, 9)}台 月租{rng.randint(4, 9)}w/台"
        for g in rng.sample(GPUS_ZH[:6], rng.randint(2, 4))
    )
    return f"今日现货 {city}\n{items}\n全部现货，先款后货"


class History:
    """Who posts what, and when: traders repost their standing offers, everyone chats."""

    def __init__(self, messages: int, seed: int = 8):
        self.rng = random.Random(seed)
        self.messages = messages
        self.users = [(1000 + n, f"user{n:03d}") for n in range(400)]
        self.traders = self.users[:80]
        self.standing: dict[int, str] = {}

    def records(self) -> list[dict[str, object]]:
        """The messages in time order: id, chat, time, sender, text and Telegram extras."""
        rng = self.rng
        step = SPAN / self.messages
        out: list[dict[str, object]] = []
        for number in range(self.messages):
            at = START + step * number
            roll = rng.random()
            record: dict[str, object] = {"n": number, "chat": rng.randrange(4), "at": at}
            if roll < 0.03:
                record["service"] = True
                record["user"] = rng.choice(self.users)
            elif roll < 0.08:
                record["photo"] = True
                record["user"] = rng.choice(self.users)
            elif roll < 0.40:
                user = rng.choice(self.traders)
                if user[0] in self.standing and rng.random() < 0.5:
                    text = self.standing[user[0]]  # a repost: refreshes, adds no offer
                else:
                    text = self.standing[user[0]] = offer_text(rng)
                record.update(user=user, text=text, edited=rng.random() < 0.02)
                if rng.random() < 0.02:
                    record["forwarded"] = rng.choice(self.traders)
            else:
                record.update(user=rng.choice(self.users), text=rng.choice(CHATTER))
                if rng.random() < 0.1:
                    record["reply_to"] = max(1, number - rng.randint(1, 50))
            out.append(record)
        return out


def write_telegram(history: History, path: Path) -> None:
    """A full-account Telegram Desktop export, laid out as Telegram writes it."""
    chats: list[list[dict[str, object]]] = [[] for _ in range(4)]
    for record in history.records():
        chats[int(record["chat"])].append(record)  # type: ignore[call-overload]
    with path.open("w", encoding="utf-8") as out:
        out.write('{\n "about": "Here is the data you requested.",\n "chats": {\n')
        out.write('  "about": "This page lists all chats from this export.",\n  "list": [\n')
        for index, records in enumerate(chats):
            out.write("   {\n")
            out.write(f'    "name": "GPU 交易群 {index + 1}",\n')
            out.write('    "type": "private_supergroup",\n')
            out.write(f'    "id": {1700000000 + index},\n    "messages": [\n')
            for position, record in enumerate(records):
                out.write(_telegram_message(record))
                out.write(",\n" if position < len(records) - 1 else "\n")
            out.write("    ]\n   }" + (",\n" if index < 3 else "\n"))
        out.write("  ]\n }\n}\n")


def _telegram_message(record: dict[str, object]) -> str:
    at: datetime = record["at"]  # type: ignore[assignment]
    user_id, name = record["user"]  # type: ignore[misc]
    local = at.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M:%S")
    lines = [
        f'      "id": {int(record["n"]) + 1}',  # type: ignore[call-overload]
        f'      "type": "{"service" if record.get("service") else "message"}"',
        f'      "date": "{local}"',
        f'      "date_unixtime": "{int(at.timestamp())}"',
    ]
    if record.get("service"):
        lines += [
            f'      "actor": {json.dumps(name)}',
            f'      "actor_id": "user{user_id}"',
            '      "action": "invite_members"',
            '      "text": ""',
            '      "text_entities": []',
        ]
        return "     {\n" + ",\n".join(lines) + "\n     }"
    if record.get("edited"):
        lines.append(f'      "edited_unixtime": "{int(at.timestamp()) + 60}"')
    lines += [f'      "from": {json.dumps(name)}', f'      "from_id": "user{user_id}"']
    if "forwarded" in record:
        origin = record["forwarded"][1]  # type: ignore[index]
        lines.append(f'      "forwarded_from": {json.dumps(origin)}')
    if "reply_to" in record:
        lines.append(f'      "reply_to_message_id": {record["reply_to"]}')
    if record.get("photo"):
        lines += [
            '      "photo": "photos/photo.jpg"',
            '      "text": ""',
            '      "text_entities": []',
        ]
        return "     {\n" + ",\n".join(lines) + "\n     }"
    text = json.dumps(record["text"], ensure_ascii=False)
    lines.append(f'      "text": {text}')
    lines.append(
        '      "text_entities": [\n       {\n        "type": "plain",\n'
        f'        "text": {text}\n       }}\n      ]'
    )
    return "     {\n" + ",\n".join(lines) + "\n     }"


def write_wechat_csv(history: History, path: Path) -> None:
    """A MemoTrace-style CSV of one group."""
    columns = ["localId", "TalkerId", "Type", "SubType", "IsSender", "CreateTime", "Status"]
    columns += ["StrContent", "StrTime", "Remark", "NickName", "Sender"]
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for record in history.records():
            at: datetime = record["at"]  # type: ignore[assignment]
            user_id, name = record["user"]  # type: ignore[misc]
            kind = 10000 if record.get("service") else 3 if record.get("photo") else 1
            local = at.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")
            text = record.get("text", "")
            row = [record["n"], 7, kind, 0, 0, int(at.timestamp()), 2, text, local]
            writer.writerow([*row, "", name, f"wxid_{user_id}"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("telegram", "wechat-csv"), default="telegram")
    parser.add_argument("--profile", action="store_true", help="cProfile the import")
    parser.add_argument("--dir", type=Path, help="keep the export and ledger here")
    parser.add_argument("--reuse", action="store_true", help="keep an export already in --dir")
    parser.add_argument(
        "--no-import", action="store_true", help="time reading and parsing only (no desk)"
    )
    parser.add_argument("--import-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    export_path = work / ("result.json" if args.format == "telegram" else "GPU交易群_utf8.csv")
    if args.import_only:
        return import_stage(export_path, work / "bench.db", profile=args.profile)

    if not (args.reuse and export_path.exists()):
        started = time.perf_counter()
        history = History(args.messages)
        (write_telegram if args.format == "telegram" else write_wechat_csv)(history, export_path)
        del history
        print(f"export written in {time.perf_counter() - started:.1f} s")
    size = export_path.stat().st_size
    print(f"export: {args.messages:,} messages, {size / 1e6:.0f} MB ({export_path})")

    export = open_export(export_path, zone=ZONE)
    started = time.perf_counter()
    texts = [entry.message.text for entry in export.entries() if isinstance(entry, Read)]
    reading = time.perf_counter() - started
    started = time.perf_counter()
    offers = sum(len(parse_offers(text)) for text in texts)
    parsing = time.perf_counter() - started
    print(
        f"reading alone: {reading:.1f} s; parsing alone: {parsing:.1f} s"
        f" ({len(texts):,} texts, {offers:,} offers)"
    )
    if args.no_import:
        return 0
    del texts

    command = [sys.executable, __file__, "--import-only", "--dir", str(work)]
    command += ["--format", args.format] + (["--profile"] if args.profile else [])
    done = subprocess.run(command, check=False)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(f"import peak memory (resident): {peak / 1024:,.0f} MiB")
    return done.returncode


def import_stage(export_path: Path, ledger_path: Path, *, profile: bool) -> int:
    """`backfill` of the export into a fresh ledger: the whole path, timed."""
    for suffix in ("", "-wal", "-shm"):
        stale = ledger_path.with_name(ledger_path.name + suffix)
        stale.unlink(missing_ok=True)
    export = open_export(export_path, zone=ZONE)
    ledger = Ledger.open(ledger_path)
    desk = Desk(ledger, DeskSettings())
    profiler = cProfile.Profile() if profile else None
    progress = PlainProgress(sys.stderr, every=15.0)
    if profiler:
        profiler.enable()
    report = backfill(desk, [export], progress=progress)
    if profiler:
        profiler.disable()
    ledger.close()

    print("\n".join(report.summary()))
    per_million = report.seconds / max(report.read, 1) * 1_000_000
    verdict = "ok" if per_million < TARGET_SECONDS_PER_MILLION else "TOO SLOW"
    print(
        f"import: {report.read:,} messages in {report.seconds:.1f} s = {report.rate:,.0f} msg/s;"
        f" 1,000,000 messages: {per_million:.0f} s (target < {TARGET_SECONDS_PER_MILLION:.0f} s):"
        f" {verdict}",
        flush=True,
    )
    if profiler:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(25)
        print(stream.getvalue())
    return 0 if per_million < TARGET_SECONDS_PER_MILLION else 1


if __name__ == "__main__":
    sys.exit(main())
