"""BM25 keyword search over chunks kept in step with the vector store: the chunks in an SQLite file
of the data folder, or in the shared database when replicas serve one corpus."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN
from langchain_core.documents import Document

from ingest.records import SearchHit
from ingest.sqlite_file import Migration, SQLiteFile

# Stored tokens are only valid for the tokenizer that made them: change this when `tokenize` changes
# and an existing index re-tokenizes its stored texts when it is next opened.
TOKENIZER = "words+parts/snowball-english/1"

# A word is letters/digits joined by . _ - / without spaces: `read.table`, `asn1_der_coding`,
# `text/plain`. It is indexed whole and as its parts, so either spelling in a question matches.
_WORD = re.compile(r"[^\W_]+(?:[._/-][^\W_]+)*")
_PART = re.compile(r"[^\W_]+")
_STOPWORDS = frozenset(STOPWORDS_EN)
_STEMMER = Stemmer.Stemmer("english")
_stemmer_guard = threading.Lock()
# bm25s sets its own logger to DEBUG, which would print through any handler the app installs.
logging.getLogger("bm25s").setLevel(logging.WARNING)

# Version 1 is the schema of 0.1.0, whose files carry no version (user_version 0): IF NOT EXISTS
# takes such a file over as it is.
MIGRATIONS = (
    Migration(
        1,
        "chunks and meta, as in 0.1.0",
        (
            """CREATE TABLE IF NOT EXISTS chunks (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                doc_id TEXT NOT NULL,
                chunk_index INTEGER NOT NULL,
                source TEXT NOT NULL,
                page INTEGER NOT NULL,
                text TEXT NOT NULL,
                tokens TEXT NOT NULL,
                UNIQUE (doc_id, chunk_index)
            )""",
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ),
    Migration(
        2,
        "a chunk's location (slide, sheet, heading) and whether its text came from OCR",
        (
            "ALTER TABLE chunks ADD COLUMN location TEXT",
            "ALTER TABLE chunks ADD COLUMN ocr INTEGER NOT NULL DEFAULT 0",
        ),
    ),
)
_CURRENT = "current.json"


def tokenize(text: str) -> list[str]:
    """Lower-cased words, each compound also split into parts; Lucene's English stopwords dropped.

    Parts are stemmed with the English Snowball stemmer, which only strips English suffixes and
    leaves most German or French words as they are; compounds are kept verbatim.
    """
    tokens: list[str] = []
    parts: list[str] = []
    for match in _WORD.finditer(unicodedata.normalize("NFKC", text).lower()):
        word = match.group()
        pieces = _PART.findall(word)
        if len(pieces) > 1:
            tokens.append(word)
        parts.extend(piece for piece in pieces if piece not in _STOPWORDS)
    # PyStemmer objects are not safe to share between threads.
    with _stemmer_guard:
        tokens.extend(_STEMMER.stemWords(parts))
    return tokens


@dataclass(frozen=True)
class _Built:
    """A BM25 matrix over the chunks of one generation; `rows[i]` is the chunk row of document i."""

    generation: int
    model: bm25s.BM25 | None
    rows: np.ndarray


# A chunk as stored: doc_id, chunk_index, source, page, location, ocr, text, tokens.
ChunkRow = tuple[str, int, str, int, str | None, bool, str, str]


class ChunkStore(Protocol):
    """Where a keyword index keeps its chunks, their tokens and two counters: the generation
    (bumped by every change: a matrix built at another generation is stale) and the document
    index version the chunks reflect."""

    def generation(self) -> int: ...

    def version(self) -> int: ...

    def doc_ids(self) -> set[str]: ...

    def count(self) -> int: ...

    def replace(self, doc_id: str, rows: Sequence[ChunkRow], version: int) -> None: ...

    def remove(self, doc_id: str, version: int) -> bool: ...

    def set_version(self, version: int) -> None: ...

    def corpus(self) -> tuple[int, int, list[int], list[str]]:
        """One consistent read: generation, version, and each chunk's row id and tokens."""
        ...

    def fetch(self, row_ids: Sequence[int]) -> dict[int, tuple]:
        """Per row id: doc_id, source, page, chunk_index, text, location, ocr."""
        ...

    def retokenize_unless(self, tokenizer: str, tokenize: Callable[[str], list[str]]) -> None:
        """Re-derive every chunk's tokens unless they were made by `tokenizer`."""
        ...

    def close(self) -> None: ...

    def drop(self) -> None: ...


class SQLiteChunks:
    """The chunks in an SQLite file of the keyword index's folder (the embedded data dir)."""

    def __init__(self, path: Path):
        self._db = SQLiteFile(path, MIGRATIONS)

    def generation(self) -> int:
        return _meta_int(self._db.connection(), "generation")

    def version(self) -> int:
        return _meta_int(self._db.connection(), "version")

    def doc_ids(self) -> set[str]:
        rows = self._db.connection().execute("SELECT DISTINCT doc_id FROM chunks")
        return {row[0] for row in rows}

    def count(self) -> int:
        return int(self._db.connection().execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def replace(self, doc_id: str, rows: Sequence[ChunkRow], version: int) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
            db.executemany(
                "INSERT INTO chunks"
                " (doc_id, chunk_index, source, page, location, ocr, text, tokens)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            _changed(db, version)

    def remove(self, doc_id: str, version: int) -> bool:
        with self._db.transaction() as db:
            deleted = db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,)).rowcount > 0
            if deleted:
                _changed(db, version)
            else:
                _set_meta(db, "version", version)
        return deleted

    def set_version(self, version: int) -> None:
        with self._db.transaction() as db:
            _set_meta(db, "version", version)

    def rows(self) -> list[ChunkRow]:
        """Every chunk as stored, in the order they were written."""
        found = self._db.connection().execute(
            "SELECT doc_id, chunk_index, source, page, location, ocr, text, tokens FROM chunks"
            " ORDER BY id"
        )
        return [(*row[:5], bool(row[5]), *row[6:]) for row in found]

    def corpus(self) -> tuple[int, int, list[int], list[str]]:
        with self._db.snapshot() as db:
            generation = _meta_int(db, "generation")
            version = _meta_int(db, "version")
            stored = db.execute("SELECT id, tokens FROM chunks ORDER BY id").fetchall()
        return generation, version, [row[0] for row in stored], [row[1] for row in stored]

    def fetch(self, row_ids: Sequence[int]) -> dict[int, tuple]:
        if not row_ids:
            return {}
        marks = ",".join("?" * len(row_ids))
        found = self._db.connection().execute(
            "SELECT id, doc_id, source, page, chunk_index, text, location, ocr FROM chunks"
            f" WHERE id IN ({marks})",
            list(row_ids),
        )
        return {row[0]: tuple(row[1:]) for row in found}

    def retokenize_unless(self, tokenizer: str, tokenize: Callable[[str], list[str]]) -> None:
        with self._db.transaction() as db:
            stored = db.execute("SELECT value FROM meta WHERE key = 'tokenizer'").fetchone()
            if stored is not None and stored[0] == tokenizer:
                return
            texts = db.execute("SELECT id, text FROM chunks").fetchall()
            db.executemany(
                "UPDATE chunks SET tokens = ? WHERE id = ?",
                [(" ".join(tokenize(text)), row_id) for row_id, text in texts],
            )
            _set_meta(db, "tokenizer", tokenizer)
            _set_meta(db, "generation", _meta_int(db, "generation") + 1)

    def close(self) -> None:
        self._db.close()

    def drop(self) -> None:
        """Nothing beyond the file, which goes with the keyword index's folder."""
        self._db.close()


def _changed(db: sqlite3.Connection, version: int) -> None:
    """Record a change to the chunks: a new generation (the matrix is now stale) and the version."""
    _set_meta(db, "generation", _meta_int(db, "generation") + 1)
    _set_meta(db, "version", version)


def _meta_int(db: sqlite3.Connection, key: str) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def _set_meta(db: sqlite3.Connection, key: str, value: object) -> None:
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))


class KeywordIndex:
    """Chunks and their BM25 index; one instance per collection, shared by threads.

    Changes go to the chunk store at once and mark the BM25 matrix stale; it is rebuilt once, at
    `refresh()` or at the next search. With a `folder` (the embedded data dir), the chunks live
    in an SQLite file there unless `chunks` keeps them elsewhere, and the matrix is saved with
    the generation it reflects, so a restart loads it instead of rebuilding. Without one (chunks
    in a shared database), the matrix is built in memory from the chunks: a saved copy could
    outlive a collection dropped and made again by another replica.
    """

    def __init__(self, folder: Path | None, chunks: ChunkStore | None = None):
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        if chunks is None:
            if folder is None:
                raise ValueError("a keyword index needs a folder or a chunk store")
            chunks = SQLiteChunks(folder / "chunks.sqlite3")
        self._lock = threading.RLock()
        self._chunks = chunks
        self._built: _Built | None = None
        self._built_at = 0.0
        self._rebuilds = 0
        # While set (seconds), searches keep a stale matrix and refreshes rebuild at most this
        # often: a background job adding file after file would otherwise rebuild after each.
        self._lag_s: float | None = None
        self._chunks.retokenize_unless(TOKENIZER, tokenize)

    # -- reading -------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The document index version the stored chunks reflect (0 before the first change)."""
        return self._chunks.version()

    @property
    def rebuilds(self) -> int:
        """How many times this instance rebuilt the BM25 matrix from the stored chunks."""
        return self._rebuilds

    def doc_ids(self) -> set[str]:
        return self._chunks.doc_ids()

    def chunk_count(self) -> int:
        return self._chunks.count()

    def search(self, query: str, k: int) -> list[SearchHit]:
        """The k chunks with the highest BM25 score (> 0) for `query`, best first."""
        terms = list(dict.fromkeys(tokenize(query)))
        built = self._current()
        if k <= 0 or not terms or built.model is None:
            return []
        ids = built.model.get_tokens_ids(terms)
        if not ids:
            return []
        scores = built.model.get_scores_from_ids(ids)
        top = _top_k(scores, k)
        chunks = self._chunks.fetch([int(built.rows[i]) for i in top])
        # A chunk deleted since this matrix was built is missing from `chunks` and skipped.
        return [
            _hit(chunks[int(built.rows[i])], float(scores[i]))
            for i in top
            if int(built.rows[i]) in chunks
        ]

    # -- changing ------------------------------------------------------------------------

    def add(self, doc_id: str, chunks: Sequence[Document], version: int) -> int:
        """Store a document's chunks, replacing any it had; returns how many were stored.

        Each chunk's metadata must carry `source`, `page` and `chunk_index`; `location` and `ocr`
        are kept when present.
        """
        rows = [
            (
                doc_id,
                int(chunk.metadata["chunk_index"]),
                str(chunk.metadata["source"]),
                int(chunk.metadata["page"]),
                chunk.metadata.get("location") or None,
                bool(chunk.metadata.get("ocr", False)),
                chunk.page_content,
                " ".join(tokenize(chunk.page_content)),
            )
            for chunk in chunks
        ]
        with self._lock:
            self._chunks.replace(doc_id, rows, version)
        return len(rows)

    def remove(self, doc_id: str, version: int) -> bool:
        """Drop a document's chunks; returns whether it had any. Records the version either way."""
        with self._lock:
            deleted = self._chunks.remove(doc_id, version)
        return deleted

    def set_version(self, version: int) -> None:
        """Record that the stored chunks match index `version` (after checking them against it)."""
        with self._lock:
            self._chunks.set_version(version)

    def refresh(self) -> bool:
        """Bring the BM25 matrix up to date (while `lagging`, only once it is old enough);
        returns whether it had to be rebuilt."""
        if self._lag_s is not None and time.monotonic() - self._built_at < self._lag_s:
            return False
        before = self._rebuilds
        self._current(fresh=True)
        return self._rebuilds > before

    @contextmanager
    def lagging(self, seconds: float) -> Iterator[None]:
        """Let searches run on a matrix up to `seconds` behind the stored chunks while many
        changes come in one after another; up to date again when the block ends."""
        self._lag_s = seconds
        try:
            yield
        finally:
            self._lag_s = None
            self.refresh()

    def close(self) -> None:
        """Close this thread's connection; other threads' close as their threads end."""
        self._chunks.close()
        self._built = None

    def drop(self) -> None:
        """Delete the stored chunks and the saved matrix: the collection they served is gone."""
        self.close()
        self._chunks.drop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- internals -----------------------------------------------------------------------

    def _current(self, fresh: bool = False) -> _Built:
        built = self._built
        generation = self._chunks.generation()
        if built is not None and (built.generation == generation or self._lagging(fresh)):
            return built
        with self._lock:
            generation = self._chunks.generation()
            if self._built is None or self._built.generation != generation:
                self._built = self._load(generation) or self._rebuild()
                self._built_at = time.monotonic()
            return self._built

    def _rebuild(self) -> _Built:
        """Build the matrix from every stored chunk and save it; called with the lock held."""
        generation, version, ids, tokens = self._chunks.corpus()
        rows = np.fromiter(ids, dtype=np.int64, count=len(ids))
        corpus = [line.split() for line in tokens]
        model = None
        # bm25s cannot index a corpus without a single token.
        if any(corpus):
            model = bm25s.BM25()
            model.index(corpus, show_progress=False)
        built = _Built(generation, model, rows)
        self._save(built, version)
        self._rebuilds += 1
        return built

    def _lagging(self, fresh: bool) -> bool:
        """Whether a search may use the matrix it has, though stale: while `lagging`, within
        the lag, so that the writer's rebuild, not the reader, pays for the changes."""
        lag = self._lag_s
        return not fresh and lag is not None and time.monotonic() - self._built_at < lag

    def _save(self, built: _Built, version: int) -> None:
        """Write the matrix to a new folder, then point `current.json` at it in one rename."""
        if self.folder is None:
            return
        name = f"bm25-{built.generation}"
        target = self.folder / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        if built.model is not None:
            built.model.save(target, show_progress=False)
        np.save(target / "rows.npy", built.rows)
        pointer = {"folder": name, "generation": built.generation, "version": version}
        temporary = self.folder / f"{_CURRENT}.part"
        temporary.write_text(json.dumps(pointer), encoding="utf-8")
        os.replace(temporary, self.folder / _CURRENT)
        for old in self.folder.glob("bm25-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def _load(self, generation: int) -> _Built | None:
        """The saved matrix if it reflects `generation`, else None (it must be rebuilt)."""
        if self.folder is None:
            return None
        try:
            pointer = json.loads((self.folder / _CURRENT).read_text(encoding="utf-8"))
            if pointer["generation"] != generation:
                return None
            folder = self.folder / pointer["folder"]
            rows = np.load(folder / "rows.npy")
            has_model = (folder / "params.index.json").exists()
            model = bm25s.BM25.load(folder, show_progress=False) if has_model else None
        except (OSError, ValueError, KeyError):
            return None
        return _Built(generation, model, rows)


def _hit(row: tuple, score: float) -> SearchHit:
    doc_id, source, page, chunk_index, text, location, ocr = row
    return SearchHit(
        doc_id, source, int(page), int(chunk_index), round(score, 4), text, location, bool(ocr)
    )


def _top_k(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the k highest positive scores, best first (ties by position, to be stable)."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > k:
        positive = positive[np.argpartition(-scores[positive], k - 1)[:k]]
    order = np.lexsort((positive, -scores[positive]))
    return [int(i) for i in positive[order]]
