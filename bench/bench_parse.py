"""Benchmark `parse_offers` on one core: the dev corpus texts repeated to 100,000 messages.

Run as `.venv/bin/python bench/bench_parse.py [--messages N] [--corpus PATH]`. Prints messages
per second and the p50/p99 time per message in microseconds. Targets: >= 50,000 msg/s and
p99 < 100 us. The corpus is read from `shared/corpus/dev.jsonl` beside the repository. It says
which parser it measured: the one compiled by `make install` (setup.py), or plain Python.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpudesk.market import parse  # noqa: E402
from gpudesk.market.parse import parse_offers  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "dev.jsonl"


def load_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()

    texts = load_texts(args.corpus)
    batch = (texts * (args.messages // len(texts) + 1))[: args.messages]
    for text in texts:  # warm up caches of the regex engine and the allocator
        parse_offers(text)

    clock = time.perf_counter_ns
    timings = [0] * len(batch)
    cpu_started = time.process_time()
    started = clock()
    for i, text in enumerate(batch):
        t0 = clock()
        parse_offers(text)
        timings[i] = clock() - t0
    total = clock() - started
    cpu = time.process_time() - cpu_started

    timings.sort()
    p50 = timings[len(timings) // 2] / 1000
    p99 = timings[int(len(timings) * 0.99)] / 1000
    rate = len(batch) / (total / 1e9)
    compiled = not parse.__file__.endswith(".py")
    print(f"parser {'compiled (mypyc)' if compiled else 'plain Python'}: {parse.__file__}")
    print(f"messages {len(batch)}  corpus texts {len(texts)}  wall {total / 1e9:.2f}s")
    print(f"throughput {rate:,.0f} msg/s  (one core; {len(batch) / cpu:,.0f} msg/s of CPU time)")
    print(
        f"per message: p50 {p50:.1f} us  p99 {p99:.1f} us  "
        f"mean {statistics.fmean(timings) / 1000:.1f} us  max {timings[-1] / 1000:.1f} us"
    )
    ok = rate >= 50_000 and p99 < 100
    print("targets (>= 50,000 msg/s, p99 < 100 us):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
