"""Retrieval with the index's state on servers (PostgreSQL and `chroma run`) against the embedded
index, on the same documents and questions in the same run.

Run from the repository root: `python -m tests.benchmarks.bench_shared_retrieval` (a few minutes
on 2 cores: each set is indexed twice). `--eval-dir DIR` (repeatable) picks the sets; by default
the development set (tests/fixtures/eval) and the hard one (tests/fixtures/hard). PostgreSQL is
Debian's, started as the tests start it.
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ingest.index import DocumentIndex, expand_paths
from llm.components import build_index
from llm.evaluation.retrieval_eval import EvalReport, evaluate, load_questions
from llm.retrieval.modes import make_search
from llm.settings import load_settings
from tests.servers import fresh_database, start_chroma, start_postgres

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SETS = (FIXTURES / "eval", FIXTURES / "hard")
K = 10


def measure(index: DocumentIndex, eval_dir: Path) -> EvalReport:
    added = index.add_paths(expand_paths([eval_dir / "docs"]))
    failed = [result for result in added if result.status != "added"]
    if failed:
        raise SystemExit(f"could not index {failed}")
    questions = load_questions(eval_dir / "qa.jsonl")
    search = make_search(index, "hybrid")
    search(questions[0].question, K)  # one-off setup is not search latency
    return evaluate(search, questions, K)


def row(name: str, report: EvalReport) -> str:
    return (
        f"  {name:<9} r@1 {report.recall_at(1):.3f}  r@5 {report.recall_at(5):.3f}"
        f"  MRR@{K} {report.mrr:.3f}  search p50 {report.latency_ms(50):5.1f} ms"
        f"  p95 {report.latency_ms(95):5.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, action="append", dest="sets")
    sets = parser.parse_args().sets or list(SETS)
    with (
        tempfile.TemporaryDirectory(prefix="bench-shared-") as scratch,
        contextmanager(start_postgres)() as postgres,
    ):
        for number, eval_dir in enumerate(sets):
            folder = Path(scratch) / str(number)
            embedded = build_index(load_settings(data_dir=folder / "embedded"), owner="bench")
            try:
                alone = measure(embedded, eval_dir)
            finally:
                embedded.close()
            with contextmanager(start_chroma)(folder / "chroma") as chroma_url:
                settings = load_settings(
                    data_dir=folder / "replica",
                    chroma_url=chroma_url,
                    database_url=fresh_database(postgres, f"bench_{number}"),
                )
                shared = build_index(settings, owner="bench")
                try:
                    served = measure(shared, eval_dir)
                finally:
                    shared.close()
            print(f"{eval_dir.name} ({len(alone.results)} questions, hybrid search):")
            print(row("embedded", alone))
            print(row("servers", served))
            gaps = [abs(alone.recall_at(n) - served.recall_at(n)) for n in (1, 5)]
            print(f"  largest recall gap: {max(gaps):.3f}")


if __name__ == "__main__":
    main()
