"""Concurrent chat sessions across two app replicas: answers/s and latency for N sessions.

Run from the repository root: `python -m tests.benchmarks.bench_replicas [--sessions 1 4 16]
[--questions 4]`. Starts Debian's PostgreSQL (accounts, conversations, the spend ledger, the
index's catalog and keyword chunks) and a `chroma run` server (the vectors), indexes the four
manuals of tests/fixtures/eval once, then starts two `streamlit run` replicas on two ports, each
with a data folder of its own, over that server and database, answering extractively (no model:
the figures are the app's own cost), with the rate limits lifted and the answer cache off. For
each N, N browser sessions (Chromium contexts, alternately on replica A and B) each ask
`--questions` development questions one after another; a latency runs from pressing Enter to the
finished answer (its sources shown). Prints answers/s (all answers over the wall time of the
round), latency p50/p95 and the replicas' own CPU time per answer (page loads included) for each
N. The browser runs on the same machine and takes its share of the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from playwright.async_api import Page, async_playwright, expect

from llm.components import build_index
from llm.settings import load_settings
from tests.browser_fixtures import CHROMIUM_ARGS, ensure_chromium, start_server, stop_server
from tests.servers import fresh_database, start_chroma, start_postgres

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
PLACEHOLDER = "Ask a question about your documents"
LIFTED = "100000"
# A replica's first answer loads its embedder; 16 sessions on 2 cores wait their turn.
expect.set_options(timeout=300_000)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def questions() -> list[str]:
    lines = (FIXTURES / "qa.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


async def session(page: Page, url: str, asked: list[str], latencies: list[float]) -> None:
    await page.goto(url)
    chat = page.get_by_placeholder(PLACEHOLDER)
    await expect(chat).to_be_enabled()
    messages = page.get_by_test_id("stChatMessage")
    for number, question in enumerate(asked):
        await chat.fill(question)
        started = time.perf_counter()
        await chat.press("Enter")
        answer = messages.nth(2 * number + 1)
        await expect(answer.get_by_test_id("stExpander")).to_be_visible()
        latencies.append(time.perf_counter() - started)
        # The answer's run ends with a rerun: the box is ready again once it is enabled.
        await expect(chat).to_be_enabled()


async def round_of(urls: list[str], sessions: int, per_session: int) -> tuple[float, list[float]]:
    pool = questions()
    latencies: list[float] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(ensure_chromium()), args=CHROMIUM_ARGS
        )
        contexts = [await browser.new_context() for _ in range(sessions)]
        pages = [await context.new_page() for context in contexts]
        for page in pages:
            page.set_default_timeout(300_000)
        started = time.perf_counter()
        await asyncio.gather(
            *(
                session(
                    page,
                    urls[i % len(urls)],
                    [pool[(i * per_session + j) % len(pool)] for j in range(per_session)],
                    latencies,
                )
                for i, page in enumerate(pages)
            )
        )
        wall = time.perf_counter() - started
        await browser.close()
    return wall, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--questions", type=int, default=4, help="questions per session")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="docqa-replicas-") as scratch:
        root = Path(scratch)
        postgres = start_postgres()
        chroma = start_chroma(root / "chroma")
        database_url = fresh_database(next(postgres), "bench")
        chroma_url = next(chroma)
        settings = load_settings(
            data_dir=root / "indexer", chroma_url=chroma_url, database_url=database_url
        )
        index = build_index(settings, owner="bench")
        index.add_paths(sorted((FIXTURES / "docs").glob("*.pdf")))
        index.close()
        env = {
            "DOCQA_CHROMA_URL": chroma_url,
            "DOCQA_DATABASE_URL": database_url,
            "DOCQA_LLM_PROVIDER": "extractive",
            "DOCQA_CACHE_TTL_SECONDS": "0",
        }
        for limit in ("RATE_LIMIT", "CLIENT_RATE_LIMIT", "GLOBAL_RATE_LIMIT"):
            env[f"DOCQA_{limit}_CAPACITY"] = env[f"DOCQA_{limit}_PER_MINUTE"] = LIFTED
        replicas = [start_server(root / name, env) for name in ("replica_a", "replica_b")]
        try:
            print(f"two replicas, {len(questions())} development questions, extractive answers")
            print("| sessions | answers | wall s | answers/s | p50 s | p95 s | app CPU s/answer |")
            print("|---|---|---|---|---|---|---|")
            pids = [replica.process.pid for replica in replicas]
            for sessions in args.sessions:
                urls = [replica.url for replica in replicas]
                cpu = sum(cpu_seconds(pid) for pid in pids)
                wall, latencies = asyncio.run(round_of(urls, sessions, args.questions))
                cpu = sum(cpu_seconds(pid) for pid in pids) - cpu
                p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else 0.0
                print(
                    f"| {sessions} | {len(latencies)} | {wall:.1f} | {len(latencies) / wall:.2f}"
                    f" | {statistics.median(latencies):.2f} | {p95:.2f}"
                    f" | {cpu / len(latencies):.2f} |",
                    flush=True,
                )
        finally:
            for replica in replicas:
                stop_server(replica)
            chroma.close()
            postgres.close()


if __name__ == "__main__":
    main()
