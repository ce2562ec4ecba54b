"""Throughput of the MiniLM embedder: fixed padding vs dynamic padding vs length-sorted batches.

Run from the repository root: `python -m tests.benchmarks.bench_embeddings [--texts 512]
[--pdfs DIR]`; the sentences come from the PDFs in tests/fixtures/pdfs/good unless --pdfs names
another folder.
"computed" counts the token positions the model runs over, padding included: unlike the timings,
it does not depend on what else the machine is doing.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pypdf import PdfReader

from ingest.embeddings import MAX_TOKENS, MiniLMEmbeddings

GOOD_PDFS = Path(__file__).resolve().parents[1] / "fixtures" / "pdfs" / "good"


def pdf_sentences(folder: Path) -> list[list[str]]:
    """Per PDF in `folder` with at least 10 of them, its sentences of 3 to 60 words."""
    documents = []
    for path in sorted(folder.glob("*.pdf")):
        text = " ".join(page.extract_text() or "" for page in PdfReader(path).pages)
        sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
        kept = [s for s in sentences if 3 <= len(s.split()) <= 60]
        if len(kept) >= 10:
            documents.append(kept)
    return documents


def synthetic_texts(documents: list[list[str]], count: int, seed: int) -> list[str]:
    """`count` texts of 20 to 160 words, each made of real sentences drawn at random."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        target = rng.randint(20, 160)
        words: list[str] = []
        while len(words) < target:
            # Document first: the 117-page German notes would otherwise fill nearly every text.
            words.extend(rng.choice(rng.choice(documents)).split())
        texts.append(" ".join(words[:target]))
    return texts


def in_input_order(embedder: MiniLMEmbeddings, pad_to: int | None) -> Callable[[list[str]], list]:
    """Batches taken as they come, padded to `pad_to` or to each batch's longest text."""

    def embed(texts: list[str]) -> list:
        encodings = embedder._encode(texts)
        size = embedder.batch_size
        return [
            row
            for start in range(0, len(encodings), size)
            for row in embedder._run(encodings[start : start + size], pad_to=pad_to)
        ]

    return embed


def padded_tokens(lengths: list[int], batch_size: int, pad_to: int | None) -> int:
    """Token positions the model computes when `lengths` are batched in this order."""
    batches = [lengths[i : i + batch_size] for i in range(0, len(lengths), batch_size)]
    return sum(len(batch) * (pad_to or max(batch)) for batch in batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="default: all CPUs")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--pdfs",
        type=Path,
        default=GOOD_PDFS,
        metavar="DIR",
        help="folder of PDFs to draw sentences from (default: %(default)s)",
    )
    args = parser.parse_args()
    if not args.pdfs.is_dir():
        parser.error(f"not a folder: {args.pdfs}")

    documents = pdf_sentences(args.pdfs)
    if not documents:
        parser.error(f"no PDF in {args.pdfs} has 10 sentences of 3 to 60 words")
    texts = synthetic_texts(documents, args.texts, args.seed)
    embedder = MiniLMEmbeddings(intra_op_threads=args.threads)
    embedder.embed_documents(texts[:32])  # load the model and warm up outside the timings
    lengths = [len(e.ids) for e in embedder._encode(texts)]
    tokens = sum(lengths)
    words = [len(t.split()) for t in texts]

    size = embedder.batch_size
    modes = [
        (f"(a) pad to {MAX_TOKENS}, input order", in_input_order(embedder, MAX_TOKENS)),
        ("(b) dynamic padding, input order", in_input_order(embedder, None)),
        ("(c) dynamic padding, length-sorted", embedder.embed_documents),
    ]
    computed = [
        padded_tokens(lengths, size, MAX_TOKENS),
        padded_tokens(lengths, size, None),
        padded_tokens(sorted(lengths), size, None),
    ]
    load_before = os.getloadavg()[0]
    # Other processes may share the CPUs: rotate the modes each round and keep each one's best.
    best = {name: (float("inf"), float("inf")) for name, _ in modes}
    vectors = {}
    for round_ in range(args.rounds):
        for name, embed in modes[round_ % 3 :] + modes[: round_ % 3]:
            wall, cpu = time.perf_counter(), time.process_time()
            vectors[name] = np.asarray(embed(texts))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))

    truncated = sum(n == MAX_TOKENS for n in lengths)
    print(
        f"{len(texts)} texts, {min(words)}-{max(words)} words, {tokens} tokens "
        f"({truncated} texts cut at {MAX_TOKENS}), batch {size}, "
        f"{embedder.intra_op_threads} threads, best of {args.rounds} rounds, "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print(
        f"{'mode':<38}{'computed':>9}{'wall s':>8}{'texts/s':>9}{'tokens/s':>10}"
        f"{'vs (a)':>8}{'CPU s':>8}"
    )
    base_wall = best[modes[0][0]][0]
    reference = vectors[modes[0][0]]
    for (name, _), positions in zip(modes, computed, strict=True):
        wall, cpu = best[name]
        print(
            f"{name:<38}{positions:>9}{wall:>8.2f}{len(texts) / wall:>9.1f}"
            f"{tokens / wall:>10.0f}{base_wall / wall:>7.2f}x{cpu:>8.2f}"
        )
    # Every mode must compute the same vectors, or the comparison means nothing.
    differences = [np.abs(vectors[name] - reference).max() for name, _ in modes[1:]]
    print(f"max |difference| of (b), (c) from (a): {max(differences):.2e}")


if __name__ == "__main__":
    main()
