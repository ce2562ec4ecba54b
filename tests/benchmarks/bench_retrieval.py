"""Retrieval on the development set: search modes, re-rankers, chunk sizes, the low-relevance
threshold, and search latency at 10,000 and 100,000 chunks.

Run from the repository root: `python -m tests.benchmarks.bench_retrieval` (about 10 minutes on 2
cores; `--skip-latency`, `--configs 1000/150`, `--sizes 10000` make it shorter, `--keep DIR`
reuses the built indexes between runs, `--llm-rerank` adds the local model as a re-ranker, which
takes several more minutes, `--eval-dir DIR` uses another development set laid out like
tests/fixtures/eval: docs/ and qa.jsonl).

Quality: every file of the development set's docs/ (tests/fixtures/eval/docs) is indexed once per
chunk configuration with the real DocumentIndex; each question's rank is the first result on a
right page (see its README).
Re-rankers reorder the same fused candidates the product's hybrid search fuses (depth 20 a half).

Low relevance: the best passage's cosine similarity (hybrid, top_k passages) for the development
questions, all answerable, against OFF_TOPIC questions about subjects absent from the manuals.

Latency: synthetic chunks go straight into a real index (Chroma + BM25): texts draw words with the
manuals' frequencies, vectors are real chunk vectors plus noise, so HNSW sees clustered data. The
timed search is the product's: embed the question (and each of its sentences when it has several),
vector and keyword search, fusion, cosine of keyword-only hits; "hybrid-1" is the same search
with the question embedded whole only, the baseline of what the sentences cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
from langchain_core.documents import Document
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from ingest.catalog import IndexConfig
from ingest.chunking import split_document
from ingest.embeddings import MiniLMEmbeddings, calibrated_threshold
from ingest.index import DocumentIndex, expand_paths
from ingest.records import DocumentRecord, LoadedDocument, Page, SearchHit
from llm.evaluation.retrieval_eval import EvalReport, Question, evaluate, load_questions
from llm.retrieval.fusion import reciprocal_rank_fusion
from llm.retrieval.modes import FUSION_DEPTH, SEARCH_MODES, SearchFn, make_search
from llm.settings import Settings
from tests.benchmarks.bench_keyword import synthetic_docs, word_frequencies

EVAL_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
CONFIGS = ("500/75", "800/120", "1000/150", "1500/200")
DEFAULTS = Settings.model_fields
DEFAULT_CONFIG = f"{DEFAULTS['chunk_size'].default}/{DEFAULTS['chunk_overlap'].default}"
TOP_K = DEFAULTS["top_k"].default
EMBEDDER = MiniLMEmbeddings()

OFF_TOPIC = (
    "How long should I boil an egg for a soft yolk?",
    "What temperature should sourdough bread be baked at?",
    "How do I make a classic French omelette?",
    "Which wine goes well with grilled salmon?",
    "How much salt goes into a pot of pasta water?",
    "Who won the FIFA World Cup in 2018?",
    "How does the offside rule work in football?",
    "How many substitutions may a team make in a Premier League match?",
    "Which club has won the most Champions League titles?",
    "Can I deduct home office expenses on my income tax return?",
    "What is the capital gains tax rate on shares held for more than a year?",
    "When is the deadline for filing a quarterly VAT return?",
    "Is an inheritance from a parent subject to gift tax?",
    "What are the early symptoms of the flu?",
    "How do I fix a flat tyre on a bicycle?",
    "When is the best time of year to plant tulip bulbs?",
    "How far is the Moon from the Earth?",
    "Who painted the Mona Lisa?",
    "How do I teach a puppy to sit?",
    "What causes the northern lights?",
    "How should I train for my first marathon?",
    "How do I renew an expired passport?",
)

Reranker = Callable[[DocumentIndex, str, int], list[SearchHit]]


# -- candidates and re-rankers -------------------------------------------------------------------


@dataclasses.dataclass
class Candidates:
    """The hybrid search's fused candidates with each one's cosine and BM25 score (0 if absent)."""

    hits: list[SearchHit]
    cosine: np.ndarray
    bm25: np.ndarray


def candidates(index: DocumentIndex, query: str) -> Candidates:
    vector = index.search(query, FUSION_DEPTH)
    keyword = index.keyword_search(query, FUSION_DEPTH)
    hits = [fused.hit for fused in reciprocal_rank_fusion([vector, keyword])]
    cosine = {(h.doc_id, h.chunk_index): h.score for h in vector}
    missing = [h for h in hits if (h.doc_id, h.chunk_index) not in cosine]
    for hit, score in zip(missing, index.similarities(query, missing), strict=True):
        cosine[(hit.doc_id, hit.chunk_index)] = score
    bm25 = {(h.doc_id, h.chunk_index): h.score for h in keyword}
    keys = [(h.doc_id, h.chunk_index) for h in hits]
    return Candidates(
        hits,
        np.array([cosine[key] for key in keys]),
        np.array([bm25.get(key, 0.0) for key in keys]),
    )


def rerank_mmr(index: DocumentIndex, query: str, k: int) -> list[SearchHit]:
    """LangChain's maximal marginal relevance (its default lambda 0.5) over the fused candidates."""
    found = candidates(index, query)
    if not found.hits:
        return []
    ids = [f"{h.doc_id}:{h.chunk_index}" for h in found.hits]
    vectors = index._vectors.vectors(ids)
    query_vector = np.array(EMBEDDER.embed_query(query))
    order = maximal_marginal_relevance(query_vector, [vectors[i] for i in ids], k=min(k, len(ids)))
    return [found.hits[i] for i in order]


def rerank_convex(index: DocumentIndex, query: str, k: int) -> list[SearchHit]:
    """Scores instead of ranks: 0.5 min-max cosine + 0.5 min-max BM25 (Bruch et al., 2023)."""
    found = candidates(index, query)
    if not found.hits:
        return []
    score = 0.5 * _min_max(found.cosine) + 0.5 * _min_max(found.bm25)
    return [found.hits[i] for i in np.argsort(-score, kind="stable")[:k]]


def _min_max(values: np.ndarray) -> np.ndarray:
    spread = values.max() - values.min()
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)


class LocalModelReranker:
    """SmolLM2-135M asked "does the passage answer the question?" for the top 10 fused passages;
    log P(yes) - log P(no) of its next token orders them (pointwise relevance, no generation)."""

    depth = 10
    passage_chars = 600

    def __init__(self) -> None:
        from llm.models.amx import cpu_has_amx
        from llm.models.llama import _load_llama
        from llm.models.packaged import SMOLLM2, resolve_model_file

        # SmolLM2 ships as one file: no folder to join parts into is needed.
        path = resolve_model_file(SMOLLM2.name, Path())
        self.llm = _load_llama(path, 1024, 2, extra_buffers=not cpu_has_amx())
        self.yes = [self.llm.tokenize(w, add_bos=False)[-1] for w in (b"Yes", b" yes")]
        self.no = [self.llm.tokenize(w, add_bos=False)[-1] for w in (b"No", b" no")]

    def __call__(self, index: DocumentIndex, query: str, k: int) -> list[SearchHit]:
        hits = make_search(index, "hybrid")(query, self.depth)
        scores = [self.relevance(query, hit.text) for hit in hits]
        return [hits[i] for i in np.argsort(-np.array(scores), kind="stable")[:k]]

    def relevance(self, query: str, passage: str) -> float:
        prompt = (
            f"<|im_start|>user\nPassage: {passage[: self.passage_chars]}\n\nQuestion: {query}\n"
            "Does the passage answer the question? Answer Yes or No.<|im_end|>\n"
            "<|im_start|>assistant\n"
        )
        self.llm.reset()
        self.llm.eval(self.llm.tokenize(prompt.encode(), add_bos=False, special=True))
        # Without logits_all, llama.cpp keeps the logits of the last token only, outside `scores`.
        vocabulary = self.llm.n_vocab()
        logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(vocabulary,))
        return float(np.logaddexp.reduce(logits[self.yes]) - np.logaddexp.reduce(logits[self.no]))


# -- indexes -------------------------------------------------------------------------------------


def split_with_page_carry(doc: LoadedDocument, chunk_size: int, chunk_overlap: int):
    """Each page's first chunk starts with the previous page's last `chunk_overlap` characters.

    Tried to see whether context across page breaks helps; the carried text is cited with the
    wrong page, so it would need a page range per chunk to ship.
    """
    pages, previous = [], ""
    for page in doc.pages:
        tail = previous[-chunk_overlap:].partition(" ")[2] if chunk_overlap else ""
        pages.append(Page(page.number, f"{tail}\n{page.text}" if tail.strip() else page.text))
        previous = page.text
    return split_document(dataclasses.replace(doc, pages=pages), chunk_size, chunk_overlap)


@contextmanager
def eval_index(eval_dir: Path, config: str, keep: Path | None) -> Iterator[DocumentIndex]:
    """The documents of `eval_dir`/docs indexed with `config`: "size/overlap", "+carry" for the
    variant."""
    name = config.replace("/", "-").replace("+", "-")
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as scratch:
        folder = (keep or Path(scratch)) / f"eval-{name}"
        size, overlap = (int(n) for n in config.removesuffix("+carry").split("/"))
        fresh = not folder.exists()
        index = DocumentIndex(
            folder,
            lambda _: EMBEDDER,
            IndexConfig("local", EMBEDDER.model_name, size, overlap),
            max_file_bytes=1 << 30,
        )
        try:
            if fresh:
                splitter = split_with_page_carry if config.endswith("+carry") else split_document
                with mock.patch("ingest.index.split_document", splitter):
                    index.add_paths(expand_paths([eval_dir / "docs"]))
            yield index
        finally:
            index.close()


# -- quality -------------------------------------------------------------------------------------


def score(search: SearchFn, questions: Sequence[Question]) -> EvalReport:
    search(questions[0].question, 10)
    return evaluate(search, questions, 10)


def quality(eval_dir: Path, configs: Sequence[str], keep: Path | None, llm_rerank: bool) -> None:
    questions = load_questions(eval_dir / "qa.jsonl")
    rerankers: dict[str, Reranker] = {"mmr": rerank_mmr, "convex": rerank_convex}
    if llm_rerank:
        rerankers["local-model"] = LocalModelReranker()
    print(
        f"\nQuality on {len(questions)} questions (k = 10; one question = {1 / len(questions):.2f})"
    )
    print(f"{'chunks':<15}{'chunk count':>12}  {'search':<20}{'r@1':>6}{'r@5':>6}{'MRR@10':>8}"
          f"{'p50 ms':>8}{'p95 ms':>8}  ranks")  # fmt: skip
    for config in configs:
        with eval_index(eval_dir, config, keep) as index:
            searches: dict[str, SearchFn] = {
                mode: make_search(index, mode) for mode in SEARCH_MODES
            }
            if config == DEFAULT_CONFIG:
                for name, rerank in rerankers.items():
                    searches[f"hybrid+{name}"] = lambda q, k, rerank=rerank: rerank(index, q, k)
            for name, search in searches.items():
                report = score(search, questions)
                ranks = " ".join(str(r.rank or "-") for r in report.results)
                print(
                    f"{config:<15}{index.stats().chunks:>12}  {name:<20}{report.recall_at(1):>6.2f}"
                    f"{report.recall_at(5):>6.2f}{report.mrr:>8.3f}{report.latency_ms(50):>8.1f}"
                    f"{report.latency_ms(95):>8.1f}  {ranks}",
                    flush=True,
                )


def calibration(eval_dir: Path, keep: Path | None) -> None:
    questions = load_questions(eval_dir / "qa.jsonl")
    with eval_index(eval_dir, DEFAULT_CONFIG, keep) as index:
        search = make_search(index, DEFAULTS["search_mode"].default)
        answerable = sorted(max(h.score for h in search(q.question, TOP_K)) for q in questions)
        absent = sorted(max(h.score for h in search(q, TOP_K)) for q in OFF_TOPIC)
    print(f"\nBest passage's cosine similarity (hybrid, top {TOP_K}, chunks {DEFAULT_CONFIG})")
    print(f"  answerable ({len(answerable)}): {' '.join(f'{s:.2f}' for s in answerable)}")
    print(f"  absent     ({len(absent)}): {' '.join(f'{s:.2f}' for s in absent)}")
    # Where a normal fit of each group puts the point equally many deviations from both means.
    high, low = statistics.fmean(answerable), statistics.fmean(absent)
    high_sd, low_sd = statistics.stdev(answerable), statistics.stdev(absent)
    equal_z = (high * low_sd + low * high_sd) / (high_sd + low_sd)
    print(
        f"  gap {absent[-1]:.3f} .. {answerable[0]:.3f}"
        f" (midpoint {(absent[-1] + answerable[0]) / 2:.3f});"
        f" means {low:.3f} / {high:.3f}, sd {low_sd:.3f} / {high_sd:.3f};"
        f" equal-z point {equal_z:.3f} ({(high - equal_z) / high_sd:.1f} sd)"
    )  # fmt: skip
    threshold = calibrated_threshold("local", EMBEDDER.model_name)
    print(
        f"  at the calibrated {threshold}: {sum(s < threshold for s in answerable)} answerable and "
        f"{sum(s >= threshold for s in absent)} absent questions misjudged"
    )


# -- latency -------------------------------------------------------------------------------------


def fill(index: DocumentIndex, size: int, centres: np.ndarray, seed: int, docs: Path) -> None:
    """`size` synthetic chunks written straight into the index's Chroma and BM25 halves, their
    words drawn with the frequencies of the PDFs in `docs`."""
    words, p = word_frequencies(docs)
    rng = np.random.default_rng(seed)
    for number, texts in enumerate(synthetic_docs(size, words, p, seed)):
        doc_id = f"synthetic{number:05d}"
        noisy = centres[rng.integers(len(centres), size=len(texts))]
        noisy = noisy + rng.normal(0, 0.5 / math.sqrt(centres.shape[1]), noisy.shape)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        metadatas = [
            {"doc_id": doc_id, "source": f"{doc_id}.pdf", "page": n // 3 + 1, "chunk_index": n}
            for n in range(len(texts))
        ]
        chunks = [
            Document(page_content=t, metadata=m) for t, m in zip(texts, metadatas, strict=True)
        ]
        index._vectors.add([f"{doc_id}:{n}" for n in range(len(texts))], chunks, noisy.tolist())
        # Searches see only catalogued documents (a file being added is invisible until whole).
        version = index._catalog.add(synthetic_record(doc_id, len(texts)))
        index._keyword.add(doc_id, chunks, version)
    index._keyword.refresh()


def synthetic_record(doc_id: str, chunks: int) -> DocumentRecord:
    sha256 = hashlib.sha256(doc_id.encode()).hexdigest()
    pages = chunks // 3 + 1
    return DocumentRecord(doc_id, f"{doc_id}.pdf", sha256, "pdf", pages, chunks, 0, "", "")


def whole_question_only(search: SearchFn) -> SearchFn:
    """The search without the extra forms of a question written as several sentences: the
    baseline of what searching them as well costs."""

    def searched(query: str, k: int) -> list[SearchHit]:
        with mock.patch("llm.retrieval.modes.sentence_forms", lambda question: []):
            return search(query, k)

    return searched


def latency(eval_dir: Path, sizes: Sequence[int], keep: Path | None, rounds: int) -> None:
    questions = [q.question for q in load_questions(eval_dir / "qa.jsonl")] + list(OFF_TOPIC)
    with eval_index(eval_dir, DEFAULT_CONFIG, keep) as index:
        centres = np.asarray(list(index._vectors.vectors().values()), dtype=np.float32)
    print(f"\nSearch latency, {len(questions)} questions x {rounds} rounds, top {TOP_K}")
    print(f"{'chunks':>8}  {'search':<10}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}   (fill s)")
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-latency-") as folder:
            index = DocumentIndex(
                Path(folder),
                lambda _: EMBEDDER,
                IndexConfig("local", EMBEDDER.model_name, 1000, 150),
                max_file_bytes=1 << 20,
            )
            try:
                started = time.monotonic()
                fill(index, size, centres, seed=size, docs=eval_dir / "docs")
                filled_s = time.monotonic() - started
                searches = {mode: make_search(index, mode) for mode in ("vector", "hybrid")}
                searches["hybrid-1"] = whole_question_only(searches["hybrid"])
                timings: dict[str, list[float]] = {mode: [] for mode in searches}
                for search in searches.values():
                    search(questions[0], TOP_K)
                # Modes alternate per question, so load from other processes hits both alike.
                for _ in range(rounds):
                    for question in questions:
                        for mode, search in searches.items():
                            # A new question is embedded: no mode reuses another's embeddings.
                            index._recent_queries.clear()
                            began = time.perf_counter()
                            search(question, TOP_K)
                            timings[mode].append((time.perf_counter() - began) * 1000)
                for mode, values in timings.items():
                    ordered = sorted(values)
                    p95 = ordered[max(math.ceil(0.95 * len(ordered)), 1) - 1]
                    print(
                        f"{size:>8}  {mode:<10}{statistics.median(values):>8.1f}{p95:>8.1f}"
                        f"{ordered[-1]:>8.1f}   ({filled_s:.0f})",
                        flush=True,
                    )
            finally:
                index.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=[*CONFIGS, f"{DEFAULT_CONFIG}+carry"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--eval-dir",
        type=Path,
        default=EVAL_DIR,
        metavar="DIR",
        help="development set with docs/ and qa.jsonl (default: %(default)s)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="folder to keep the dev-set indexes in; reused as built, so one per --eval-dir",
    )
    parser.add_argument("--llm-rerank", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    for needed in (args.eval_dir / "docs", args.eval_dir / "qa.jsonl"):
        if not needed.exists():
            parser.error(f"{args.eval_dir} is not a development set: {needed} is missing")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    if not args.skip_quality:
        quality(args.eval_dir, args.configs, args.keep, args.llm_rerank)
        calibration(args.eval_dir, args.keep)
    if not args.skip_latency:
        latency(args.eval_dir, args.sizes, args.keep, args.rounds)


if __name__ == "__main__":
    main()
