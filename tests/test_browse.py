"""`gpudesk browse` serves the ledger read-only in Datasette, with labels and canned queries."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gpudesk.bot import browse
from gpudesk.handlers.desk import Desk
from gpudesk.storage.ledger import Ledger
from tests.test_import import MEMOTRACE_CSV, TELEGRAM_CHAT, run_import

# Runs the command itself, as `gpudesk browse` would, in a process of its own.
RUN_BROWSE = (
    "import sys\n"
    "from gpudesk.bot.cli import State\n"
    "from gpudesk.bot.data_cli import browse_command\n"
    "browse_command.main(sys.argv[1:], prog_name='gpudesk browse', obj=State(None, False))\n"
)


@pytest.fixture
def filled(desk: Desk, ledger: Ledger) -> Ledger:
    run_import(desk, TELEGRAM_CHAT, MEMOTRACE_CSV)
    return ledger


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(process: subprocess.Popen[bytes], base: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"browse exited with {process.returncode}: {output}")
        try:
            if httpx.get(f"{base}/-/versions.json", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"browse did not answer on {base} within {seconds} s")


def test_browse_serves_html_and_json_over_http_then_stops(filled: Ledger, db_path: Path) -> None:
    # `filled` still holds the ledger open: its writes sit in the WAL until browse checkpoints.
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_BROWSE, "--db", str(db_path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(process, base)

        page = httpx.get(f"{base}/ledger", timeout=5.0)
        offers = httpx.get(f"{base}/ledger/offers.json?_shape=array&_size=max", timeout=5.0)
        weekly = httpx.get(f"{base}/ledger/offers_per_week.json?_shape=array", timeout=5.0)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "Open offers by model" in page.text
    assert "Weekly pulse: offers per model per week" in page.text
    assert offers.status_code == 200
    assert len(offers.json()) == filled.offer_count() == 5
    assert {row["gpu"] for row in offers.json()} == {"H100", "RTX 4090"}
    assert weekly.json()[0]["week_start"] == "2026-10-05"
    assert process.returncode == 0
    output = process.stdout.read().decode() if process.stdout else ""
    assert f"read-only at http://127.0.0.1:{port}/" in output


async def test_canned_queries_answer_and_tables_carry_their_descriptions(
    filled: Ledger, db_path: Path
) -> None:
    filled.checkpoint()
    datasette = browse.make_datasette(db_path)
    await datasette.invoke_startup()

    for name in browse.metadata(db_path)["databases"]["ledger"]["queries"]:
        response = await datasette.client.get(f"/ledger/{name}.json?_shape=array")
        assert response.status_code == 200, (name, response.text)
    by_model = await datasette.client.get("/ledger/open_offers_by_model.json?_shape=array")
    assert by_model.json() == []  # the samples are from 2026-10: long expired by now
    chats = await datasette.client.get("/ledger/messages_per_chat.json?_shape=array")
    assert {row["title"]: row["imported"] for row in chats.json()} == {
        "GPU Traders": 6,
        "GPU交易群": 5,
    }
    table = await datasette.client.get("/ledger/offers")
    assert "Buy and sell offers read from messages" in table.text
    assert "sell (supplies hardware or compute) or buy (wants it)" in table.text


def test_every_described_column_exists_in_the_ledger(ledger: Ledger) -> None:
    for table, meta in browse.metadata(Path("x.db"))["databases"]["x"]["tables"].items():
        if meta.get("hidden"):
            continue
        columns = set(ledger.db[table].columns_dict)
        described = set(meta.get("columns", {}))
        assert described <= columns, (table, described - columns)


def test_browse_refuses_a_ledger_that_does_not_exist(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gpudesk.bot.cli import State
    from gpudesk.bot.data_cli import browse_command

    missing = tmp_path / "nothing.db"
    result = CliRunner().invoke(browse_command, ["--db", str(missing)], obj=State(None, False))
    assert result.exit_code == 1
    assert "there is no ledger at" in result.output
    assert not missing.exists()
