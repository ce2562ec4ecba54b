"""Cost of the BM25 keyword index at scale: adding, one rebuild, re-opening, and search latency.

Synthetic chunks draw words with the frequencies of the development-set manuals, ~1000 characters
each, 100 chunks per document. Run from the repository root:
`python -m tests.benchmarks.bench_keyword [--sizes 10000 100000] [--queries 200] [--docs DIR]`;
the manuals are the PDFs in tests/fixtures/eval/docs unless --docs names another folder.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from langchain_core.documents import Document
from pypdf import PdfReader

from ingest.keyword import KeywordIndex

EVAL_DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "eval" / "docs"
CHUNKS_PER_DOC = 100
WORDS_PER_CHUNK = 150


def word_frequencies(folder: Path) -> tuple[list[str], np.ndarray]:
    counts: Counter[str] = Counter()
    for path in sorted(folder.glob("*.pdf")):
        for page in PdfReader(path).pages:
            counts.update(re.findall(r"\S+", page.extract_text() or ""))
    words, freq = zip(*counts.most_common(), strict=True)
    weights = np.array(freq, dtype=np.float64)
    return list(words), weights / weights.sum()


def synthetic_docs(size: int, words: list[str], p: np.ndarray, seed: int) -> list[list[str]]:
    """`size` chunk texts grouped into documents of CHUNKS_PER_DOC."""
    rng = np.random.default_rng(seed)
    drawn = rng.choice(len(words), size=(size, WORDS_PER_CHUNK), p=p)
    texts = [" ".join(words[i] for i in row) for row in drawn]
    return [texts[i : i + CHUNKS_PER_DOC] for i in range(0, size, CHUNKS_PER_DOC)]


def as_chunks(doc_id: str, texts: list[str]) -> list[Document]:
    return [
        Document(
            page_content=text,
            metadata={"source": f"{doc_id}.pdf", "page": n // 3 + 1, "chunk_index": n},
        )
        for n, text in enumerate(texts)
    ]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(round(pct / 100 * len(ordered) + 0.5) - 1, 0)]


def bench(size: int, queries: int, words: list[str], p: np.ndarray) -> None:
    docs = synthetic_docs(size, words, p, seed=size)
    rng = random.Random(size)
    # Questions: 6 words of a random chunk, as a user would quote terms they remember.
    asked = [" ".join(rng.sample(rng.choice(rng.choice(docs)).split(), 6)) for _ in range(queries)]
    with tempfile.TemporaryDirectory() as folder:
        index = KeywordIndex(Path(folder))
        started = time.perf_counter()
        for version, texts in enumerate(docs, start=1):
            index.add(f"doc{version}", as_chunks(f"doc{version}", texts), version)
        add_s = time.perf_counter() - started

        started = time.perf_counter()
        index.refresh()
        rebuild_s = time.perf_counter() - started

        index.remove("doc1", len(docs) + 1)
        started = time.perf_counter()
        index.refresh()
        after_delete_s = time.perf_counter() - started
        index.close()

        started = time.perf_counter()
        reopened = KeywordIndex(Path(folder))
        reopened.refresh()
        load_s = time.perf_counter() - started
        assert reopened.rebuilds == 0, "re-opening must load the saved matrix, not rebuild it"

        latencies = []
        for question in asked:
            started = time.perf_counter()
            reopened.search(question, 10)
            latencies.append((time.perf_counter() - started) * 1000)
        reopened.close()
    print(
        f"{size:>7} chunks | add {add_s:6.1f} s ({add_s / size * 1000:.2f} ms/chunk)"
        f" | rebuild {rebuild_s:5.2f} s | rebuild after delete {after_delete_s:5.2f} s"
        f" | re-open {load_s:5.2f} s | search ms p50 {statistics.median(latencies):.1f}"
        f" p95 {percentile(latencies, 95):.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--docs",
        type=Path,
        default=EVAL_DOCS,
        metavar="DIR",
        help="folder of PDFs whose word frequencies the chunks use (default: %(default)s)",
    )
    args = parser.parse_args()
    if not any(args.docs.glob("*.pdf")):
        parser.error(f"no PDF files in {args.docs}")
    words, p = word_frequencies(args.docs)
    print(f"vocabulary {len(words)} words from {args.docs}")
    for size in args.sizes:
        bench(size, args.queries, words, p)


if __name__ == "__main__":
    main()
