"""Chat answers while 300 mixed files index in the background, against the same chat idle.

Run from the repository root: `python -m tests.benchmarks.bench_background_indexing [--files 300]
[--every 2] [--idle-questions 25]`. A child process first indexes the four manuals of
tests/fixtures/eval (the questions' documents) into a fresh data folder. This process then opens
it as the app does (index, queue, worker thread) and asks the development questions through the
answering service with the extractive provider, one every `--every` seconds: first with nothing
else running (idle), then while the worker indexes one job of generated files (background):
fixture PDFs, each copy made unique by a trailing comment; Markdown and text files cut from the
manuals' text; a few broken files. Latency is from the question to the finished answer.
Peak RSS is the kernel's high-water mark of this process after each phase.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pypdf

from ingest.queue import Job
from llm.components import build_index, build_ledger, build_worker
from llm.models.choice import extractive_choice
from llm.records.trace_store import TRACES_FILE, TraceStore
from llm.retrieval.modes import make_search
from llm.service import Answered, AnswerService, Asker
from llm.settings import Settings, load_settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEED_DOCS = FIXTURES / "eval" / "docs"
QUESTIONS = FIXTURES / "eval" / "qa.jsonl"
SMALL_PDFS = [
    FIXTURES / "pdfs" / "good" / name
    for name in (
        "crazyones-pdfa.pdf",
        "google-doc-document.pdf",
        "multicolumn.pdf",
        "pdflatex-4-pages.pdf",
        "pdflatex-outline.pdf",
        "libreoffice-form.pdf",
        "with-attachment.pdf",
        "habibi.pdf",
    )
]
BAD_FILES = [FIXTURES / "pdfs" / "bad" / name for name in ("truncated.pdf", "not-a-pdf.pdf")]
# Shares of the generated job: PDFs, Markdown, text; the rest (a few) are broken files.
SHARES = {"pdf": 0.2, "md": 0.39, "txt": 0.39}
LIMIT_RATIO = 2.0


def settings_for(data_dir: Path) -> Settings:
    return load_settings(
        data_dir=data_dir, llm_provider="extractive", secrets_file=data_dir / "absent.toml"
    )


def seed(data_dir: Path) -> None:
    """Index the questions' documents in a child process, so its memory is not counted here."""
    code = (
        "import sys; from pathlib import Path\n"
        "from tests.benchmarks.bench_background_indexing import settings_for, SEED_DOCS\n"
        "from llm.components import build_index\n"
        "index = build_index(settings_for(Path(sys.argv[1])), owner='benchmark seed')\n"
        "index.add_paths([SEED_DOCS]); index.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(data_dir)], check=True)


def generate(folder: Path, count: int, rng: random.Random) -> list[Path]:
    """`count` distinct files: PDFs, Markdown and text cut from the manuals, a few broken ones."""
    folder.mkdir(parents=True)
    text = "\n".join(
        page.extract_text() or "" for path in sorted(SEED_DOCS.glob("*.pdf"))
        for page in pypdf.PdfReader(path).pages
    )  # fmt: skip
    made: list[Path] = []
    for number in range(count):
        [kind] = rng.choices([*SHARES, "bad"], [*SHARES.values(), 1 - sum(SHARES.values())])
        path = folder / f"{number:03d}-{kind}"
        if kind == "pdf":
            source = rng.choice(SMALL_PDFS)
            # A comment after %%EOF changes the checksum, not the text: no copy is a duplicate.
            data = source.read_bytes() + f"\n% copy {number}\n".encode()
            path = path.with_name(f"{path.name}-{source.name}")
        elif kind == "bad":
            source = rng.choice(BAD_FILES)
            data, path = source.read_bytes(), path.with_name(f"{path.name}-{source.name}")
        else:
            start = rng.randrange(0, len(text) - 20_000)
            body = text[start : start + rng.randrange(1_000, 12_000)]
            title = f"# Notes {number}\n\n" if kind == "md" else ""
            data, path = (title + body).encode(), path.with_suffix(f".{kind}")
        path.write_bytes(data)
        made.append(path)
    return made


def asker_for(phase: str) -> Asker:
    return Asker(owner="benchmark", page="benchmark", session_id=f"benchmark-{phase}")


def ask_every(
    service: AnswerService,
    questions: list[str],
    every_s: float,
    keep_going: Callable[[int], bool],
    phase: str,
) -> list[float]:
    """Ask a question every `every_s` seconds while `keep_going(asked)`; each one's seconds."""
    latencies: list[float] = []
    next_at = time.monotonic()
    while keep_going(len(latencies)):
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += every_s
        question = questions[len(latencies) % len(questions)]
        started = time.monotonic()
        events = list(service.ask(question, [], asker_for(phase)))
        if not isinstance(events[-1], Answered):
            raise RuntimeError(f"{question!r} was not answered: {events[-1]}")
        latencies.append(time.monotonic() - started)
    return latencies


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300, help="files in the job (default 300)")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between questions")
    parser.add_argument("--idle-questions", type=int, default=25, help="questions asked idle")
    parser.add_argument("--seed", type=int, default=14, help="random seed of the generated files")
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines()]
    with tempfile.TemporaryDirectory(prefix="docqa-bench-bg-") as scratch:
        root = Path(scratch)
        data_dir = root / "data"
        seed(data_dir)
        files = generate(root / "inbox", args.files, random.Random(args.seed))
        settings = settings_for(data_dir)
        index = build_index(settings, owner="benchmark")
        worker = build_worker(index)
        service = AnswerService(
            settings,
            index,
            make_search(index, settings.search_mode),
            extractive_choice,
            build_ledger(settings),
            TraceStore(data_dir / TRACES_FILE),
            None,
        )
        # One unscored answer: loading the embedder and the HNSW segment are start-up costs.
        ask_every(service, questions, 0.0, lambda asked: asked < 1, "warm-up")
        idle = ask_every(
            service, questions, args.every, lambda asked: asked < args.idle_questions, "idle"
        )
        idle_rss = peak_rss_mb()

        worker.start()
        started = time.monotonic()
        job_id = worker.queue.enqueue_paths(files, "cli", "benchmark")
        busy = ask_every(
            service,
            questions,
            args.every,
            lambda asked: _active(worker.queue.job(job_id)),
            "background",
        )
        seconds = time.monotonic() - started
        busy_rss = peak_rss_mb()
        job = worker.queue.job(job_id)
        worker.stop()
        index.close()
    assert job is not None
    report(job, seconds, idle, busy, idle_rss, busy_rss)


def report(
    job: Job, seconds: float, idle: list[float], busy: list[float], idle_rss: float, busy_rss: float
) -> None:
    counts = {state: sum(f.state == state for f in job.files) for state in ("added", "failed")}
    print(
        f"Background job: {len(job.files)} files ({counts['added']} added, {counts['failed']} "
        f"refused), {job.pages} pages, {job.chunks} chunks in {seconds:.0f} s: "
        f"{len(job.files) / seconds:.2f} files/s, {job.chunks / seconds:.1f} chunks/s"
    )
    header = f"{'phase':11} {'questions':>9} {'p50 s':>7} {'p95 s':>7} {'max s':>7}"
    print(f"{header} {'peak RSS MB':>12}")
    for name, values, rss in (("idle", idle, idle_rss), ("background", busy, busy_rss)):
        print(
            f"{name:11} {len(values):9d} {statistics.median(values):7.2f} {p95(values):7.2f} "
            f"{max(values):7.2f} {rss:12.0f}"
        )
    ratio = p95(busy) / p95(idle)
    verdict = "within" if ratio <= LIMIT_RATIO else "OVER"
    print(f"background / idle p95: x{ratio:.2f} ({verdict} the x{LIMIT_RATIO:g} limit)")


def _active(job: Job | None) -> bool:
    return job is not None and job.active


if __name__ == "__main__":
    main()
