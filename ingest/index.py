"""The document index: stored originals, the catalog and the Chroma collection kept in step."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import chromadb
import numpy as np
import sqlalchemy as sa
from chromadb.config import Settings as ChromaSettings
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from ingest.catalog import Catalog, IndexConfig, IndexState
from ingest.chunking import embedding_text, split_document
from ingest.database_catalog import DatabaseCatalog, DatabaseFiles
from ingest.database_chunks import DatabaseChunks
from ingest.embeddings import calibrated_threshold
from ingest.formats.ocr import Ocr
from ingest.instructions import InstructionFlag, find_instructions
from ingest.keyword import KeywordIndex, SQLiteChunks
from ingest.loaders import SUPPORTED_SUFFIXES, RejectedFile, file_name, load_document
from ingest.ownership import DataDirLock
from ingest.priority import WriteSteps
from ingest.records import AddResult, DocumentRecord, LoadedDocument, SearchHit
from ingest.vectors import ChunkVectors

COLLECTION_PREFIX = "docqa_g"
CATALOG_FILE = "docqa.sqlite3"
# Chunks embedded and stored per step: large enough to keep the embedder busy, small enough that
# memory does not grow with the document.
WRITE_BATCH = 64
# Query embeddings kept for reuse: a question and its sentences, asked for twice by hybrid search.
RECENT_QUERIES = 16
# Sentence vectors kept for attribution: 15 MB at 384 dimensions (kept as float64 arrays, the
# values unchanged; as lists of Python floats they would take four times as much).
TEXT_VECTORS = 5000
# Texts embedded between two chances for searches to go first (two model runs, ~0.1 s here).
EMBED_STEP = 8
# Replicas sharing state: a claim on a document being written, renewed at every slice of
# chunks (seconds apart), is taken over when left this long (its replica died mid-write; the
# replicas' clocks are taken to agree within seconds, as NTP keeps them); a replica given the
# same file meanwhile looks this often whether the first one is done.
CLAIM_STALE_S = 60.0
CLAIM_POLL_S = 0.5

EmbeddingsFactory = Callable[[IndexConfig], Embeddings]
_T = TypeVar("_T")
ProgressCallback = Callable[["Progress"], None]


@dataclass(frozen=True)
class Progress:
    """Where a long operation stands: files done out of total, chunks so far, seconds elapsed."""

    current_file: str
    files_done: int
    files_total: int
    chunks_done: int
    elapsed_s: float

    @property
    def eta_s(self) -> float | None:
        if self.files_done == 0:
            return None
        return self.elapsed_s / self.files_done * (self.files_total - self.files_done)


@dataclass
class ReindexResult:
    """What a rebuild did: the new version, counts, and files that could not be re-read."""

    version: int
    documents: int
    chunks: int
    elapsed_s: float
    errors: list[AddResult] = field(default_factory=list)


@dataclass(frozen=True)
class IndexStats:
    """Figures for the admin page."""

    documents: int
    pages: int
    chunks: int
    version: int
    config: IndexConfig
    built_at: str
    reindexed_at: str | None
    relevance_threshold: float | None
    disk_bytes: int
    collection: str


class DocumentIndex:
    """Adds, removes, searches and rebuilds documents; one instance per process, thread-safe."""

    def __init__(
        self,
        data_dir: Path,
        embeddings_factory: EmbeddingsFactory,
        default_config: IndexConfig,
        *,
        max_file_bytes: int,
        chroma_url: str | None = None,
        database: sa.Engine | None = None,
        owner: str = "docqa",
        write_batch: int = WRITE_BATCH,
        ocr: Ocr | None = None,
    ):
        """With `chroma_url` the vectors live in a `chroma run` server; with `database` as well,
        the catalog, keyword chunks and original files live in that SQL database, so replicas
        on several machines serve one corpus and `data_dir` keeps nothing they share."""
        if database is not None and not chroma_url:
            raise ValueError("an index with its state in a database needs a Chroma server too")
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.files_dir = data_dir / "files"
        self.files_dir.mkdir(exist_ok=True)
        self.max_file_bytes = max_file_bytes
        self.ocr = ocr or Ocr()
        self._write_batch = write_batch
        self.server_mode = bool(chroma_url)
        self._lock = None if chroma_url else DataDirLock.acquire(data_dir, owner)
        self._write_guard = threading.RLock()
        self._steps = WriteSteps()
        self._embeddings_factory = embeddings_factory
        self._recent_queries: dict[tuple[str, int], tuple[Embeddings, list[float]]] = {}
        self._recent_guard = threading.Lock()
        self._text_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_vectors_of: Embeddings | None = None
        self._database = database
        # Names this instance's claims on documents it writes (see CLAIM_STALE_S): where it
        # runs, so a process of the same machine can tell when it is gone.
        self._holder = f"{_MACHINE}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._files = DatabaseFiles(database) if database else None
        self._catalog: Catalog | DatabaseCatalog
        if database is not None:
            self._catalog = DatabaseCatalog(database)
            self._adopt_folder(self._catalog)
        else:
            self._catalog = Catalog(data_dir / CATALOG_FILE)
        self._client = _open_chroma(data_dir / "chroma", chroma_url)
        state = self._catalog.state() or self._catalog.initialise_state(
            f"{COLLECTION_PREFIX}1", default_config, _now(), _calibration(default_config)
        )
        self._embeddings = embeddings_factory(state.config)
        self._vectors = ChunkVectors(self._client, state.collection, self._embeddings)
        self._keyword = self._open_keyword(state.collection)
        self._state = state
        if database is not None:
            # Replicas share every store, written in step: nothing to sync; what a dead replica
            # left half-written is found by its stale claim (others may be mid-write).
            self._remove_abandoned()
            self._keyword.refresh()
        elif self.server_mode:
            # Other processes share this store and may be mid-write: remove nothing of theirs.
            self._sync_keyword_index(self._catalog.doc_ids())
        else:
            self._remove_leftovers()

    # -- reading -------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._catalog.version()

    @property
    def config(self) -> IndexConfig:
        return self._state.config

    @property
    def relevance_threshold(self) -> float | None:
        """The low-relevance threshold of the embedder this index was built with (None: that
        embedder was never calibrated, so no cosine similarity reads as off-topic)."""
        return _threshold_of(self._state)

    @property
    def is_empty(self) -> bool:
        return not self._catalog.doc_ids()

    def documents(self) -> list[DocumentRecord]:
        return self._catalog.documents()

    def instruction_flags(self) -> dict[str, list[InstructionFlag]]:
        """Per document id, the passages found at ingest that read as instructions to a model."""
        return self._catalog.instruction_flags()

    def document(self, doc_id: str) -> DocumentRecord | None:
        return self._catalog.get(doc_id)

    def original(self, record: DocumentRecord) -> bytes:
        """The file as it was uploaded, from the stored copy."""
        if self._files is not None:
            return self._files.read(record.sha256)
        return (self.data_dir / record.stored_path).read_bytes()

    def search(
        self, query: str, k: int, also: Sequence[str] = (), only: Collection[str] | None = None
    ) -> list[SearchHit]:
        """Vector search: the k chunks most similar to the query, score = cosine similarity.

        `also` holds other forms of the same question (its sentences, say): each chunk then
        counts with its best cosine over all the forms. With `only`, just the chunks of those
        documents are searched (the ones a user may read).
        """
        if not query.strip() or (only is not None and not only):
            return []
        forms = _forms(query, also)
        return self._read(
            lambda: self._catalogued(lambda n: self._vector_search(forms, n, only), k, only)
        )

    def keyword_search(
        self, query: str, k: int, only: Collection[str] | None = None
    ) -> list[SearchHit]:
        """BM25 keyword search over the same chunks, score = BM25 score; `only` as in `search`."""
        if not query.strip() or (only is not None and not only):
            return []
        return self._read(
            lambda: self._catalogued(lambda n: self._keyword.search(query, n), k, only)
        )

    def similarities(
        self, query: str, hits: Sequence[SearchHit], also: Sequence[str] = ()
    ) -> list[float]:
        """Cosine similarity of the query to each hit's chunk (for hits found by keywords); the
        best over the query and the forms in `also`, as `search` scores them."""
        if not hits:
            return []
        forms = _forms(query, also)
        return self._read(lambda: self._similarities(forms, hits))

    def _catalogued(
        self,
        find: Callable[[int], list[SearchHit]],
        k: int,
        only: Collection[str] | None = None,
    ) -> list[SearchHit]:
        """The best k hits of catalogued documents (of those in `only`, when given). A file
        being added writes its chunks before its catalog row, which is what makes it visible,
        whole: a search meanwhile must not see the chunks written so far, so it skips them and
        asks for more."""
        wanted = k
        while True:
            hits = find(wanted)
            known = self._catalog.doc_ids()
            if only is not None:
                known &= set(only)
            kept = [hit for hit in hits if hit.doc_id in known]
            if len(kept) >= k or len(hits) < wanted:
                return kept[:k]
            wanted *= 2

    def _vector_search(
        self, forms: Sequence[str], k: int, only: Collection[str] | None = None
    ) -> list[SearchHit]:
        if self._vectors.count() == 0:
            return []
        best: dict[tuple[str, int], SearchHit] = {}
        found = self._vectors.nearest_each([self._query_vector(form) for form in forms], k, only)
        for nearest in found:
            for document, distance in nearest:
                hit = _hit(document, distance)
                place = (hit.doc_id, hit.chunk_index)
                if place not in best or hit.score > best[place].score:
                    best[place] = hit
        # sorted() is stable: equal scores keep the order the first form found them in.
        return sorted(best.values(), key=lambda hit: -hit.score)[:k]

    def _similarities(self, forms: Sequence[str], hits: Sequence[SearchHit]) -> list[float]:
        ids = [f"{hit.doc_id}:{hit.chunk_index}" for hit in hits]
        vectors = self._vectors.vectors(ids)
        queries = np.asarray([self._query_vector(form) for form in forms])
        return [round(float(np.max(queries @ vectors[i])), 4) if i in vectors else 0.0 for i in ids]

    def stats(self) -> IndexStats:
        records = self.documents()
        state = self._catalog.state() or self._state
        return IndexStats(
            documents=len(records),
            pages=sum(record.pages for record in records),
            chunks=sum(record.chunks for record in records),
            version=state.version,
            config=state.config,
            built_at=state.built_at,
            reindexed_at=state.reindexed_at,
            relevance_threshold=_threshold_of(state),
            disk_bytes=_folder_size(self.data_dir)
            + (self._files.size_bytes() if self._files else 0),
            collection=state.collection,
        )

    # -- changing ------------------------------------------------------------------------

    def add_files(
        self, files: Sequence[tuple[str, bytes]], on_progress: ProgressCallback | None = None
    ) -> list[AddResult]:
        """Add each file on its own: one bad file is reported and the others still go in."""
        return self._add_each([(name, lambda data=data: data) for name, data in files], on_progress)

    def add_paths(
        self, paths: Iterable[Path], on_progress: ProgressCallback | None = None
    ) -> list[AddResult]:
        """Like add_files, but each file is read when its turn comes: one in memory at a time."""
        found = expand_paths(paths)
        return self._add_each([(path.name, path.read_bytes) for path in found], on_progress)

    def _add_each(
        self, files: Sequence[tuple[str, Callable[[], bytes]]], on_progress: ProgressCallback | None
    ) -> list[AddResult]:
        started = time.monotonic()
        results: list[AddResult] = []
        chunks_done = 0
        for done, (name, read) in enumerate(files):
            try:
                result = self._add_one(name, read())
            except OSError as error:
                result = AddResult(name, "failed", error=f"could not be read: {error.strerror}")
            results.append(result)
            chunks_done += result.chunks
            if on_progress:
                on_progress(Progress(name, done + 1, len(files), chunks_done, _since(started)))
        # One keyword rebuild per upload, not per file nor at the next question; it is a write
        # step like any other (searches first).
        self._steps.before_write_step()
        self._keyword.refresh()
        return results

    @contextmanager
    def keywords_lagging(self, seconds: float) -> Iterator[None]:
        """For a run of uploads one after another: keyword search may miss the newest files for
        up to `seconds` (vector search never does), so the matrix is rebuilt that often rather
        than after every upload; up to date again when the block ends."""
        with self._keyword.lagging(seconds):
            yield

    def remove(self, doc_id: str) -> bool:
        with self._write_guard:
            record = self._catalog.get(doc_id)
            if record is None:
                return False
            self._vectors.remove_document(doc_id)
            self._keyword.remove(doc_id, self._catalog.version() + 1)
            self._catalog.remove(doc_id)
            self._keyword.refresh()
            self._discard_original(record.sha256, record.stored_path)
            return True

    def reindex(
        self, config: IndexConfig, on_progress: ProgressCallback | None = None
    ) -> ReindexResult:
        """Rebuild into a new collection, switch to it in one step, then drop the old one.

        Searches keep using the current collection until the switch; a failure or a killed process
        leaves the current one active and complete (leftovers are removed at the next start).
        """
        with self._write_guard:
            started = time.monotonic()
            embeddings = self._embeddings_factory(config)
            generation = int(self._state.collection.removeprefix(COLLECTION_PREFIX)) + 1
            name = f"{COLLECTION_PREFIX}{generation}"
            self._drop_collection(name)
            self._open_keyword(name).drop()
            new_vectors = ChunkVectors(self._client, name, embeddings)
            new_keyword = self._open_keyword(name)
            records = self.documents()
            counts: dict[str, int] = {}
            flags: dict[str, list[InstructionFlag]] = {}
            errors: list[AddResult] = []
            try:
                for done, record in enumerate(records):
                    try:
                        doc = self._reload(record)
                        chunks = split_document(doc, config.chunk_size, config.chunk_overlap)
                        self._write_chunks(new_vectors, record.doc_id, chunks)
                        new_keyword.add(record.doc_id, chunks, self._state.version)
                        counts[record.doc_id] = len(chunks)
                        flags[record.doc_id] = find_instructions(doc.pages)
                    except (OSError, RejectedFile, ValueError) as error:
                        errors.append(
                            AddResult(record.source, "failed", record.doc_id, 0, 0, _reason(error))
                        )
                    if on_progress:
                        on_progress(
                            Progress(
                                record.source,
                                done + 1,
                                len(records),
                                sum(counts.values()),
                                _since(started),
                            )
                        )
                if errors:
                    raise ReindexFailed(errors)
                new_keyword.refresh()
            except BaseException:
                new_keyword.drop()
                self._drop_collection(name)
                raise
            old, old_keyword = self._state.collection, self._keyword
            version = self._catalog.switch_collection(
                name, config, counts, _now(), flags, _calibration(config)
            )
            new_keyword.set_version(version)
            self._embeddings, self._vectors, self._keyword = embeddings, new_vectors, new_keyword
            self._state = self._catalog.state() or self._state
            old_keyword.drop()
            self._drop_collection(old)
            return ReindexResult(version, len(records), sum(counts.values()), _since(started))

    def interrupt_writes(self) -> None:
        """Stop any write at its next step, for good: the process is ending. The file being
        written raises WritesInterrupted and is left as a crash leaves it (dropped at the next
        open, so it can be added again whole)."""
        self._steps.interrupt()

    def close(self) -> None:
        self._keyword.close()
        self._catalog.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- internals -----------------------------------------------------------------------

    def _read(self, action: Callable[[], _T]) -> _T:
        """Run a read on the active collection, following a reindex that switched it meanwhile
        (in this instance, in another instance on the same data dir, or in another process)."""
        with self._steps.reading():
            self._follow_switch()
            try:
                return action()
            except Exception:
                if not self._follow_switch():
                    raise
                return action()

    def embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        """Vectors of short texts by the index's own embedder (e.g. to compare answer sentences).

        Attribution embeds the retrieved passages' sentences after every answer, and related
        questions bring the same passages back: the vectors of the last TEXT_VECTORS texts are
        kept, per embedder (a reindex with another one starts afresh)."""
        embeddings = self._embeddings
        with self._recent_guard:
            if self._text_vectors_of is not embeddings:
                self._text_vectors_of, self._text_vectors = embeddings, OrderedDict()
            known = {t: self._text_vectors[t] for t in texts if t in self._text_vectors}
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            with self._steps.reading():
                fresh = np.asarray(embeddings.embed_documents(missing), dtype=np.float64)
                known.update(zip(missing, fresh, strict=True))
        with self._recent_guard:
            if self._text_vectors_of is embeddings:
                for text in texts:
                    self._text_vectors[text] = known[text]
                    self._text_vectors.move_to_end(text)
                while len(self._text_vectors) > TEXT_VECTORS:
                    self._text_vectors.popitem(last=False)
        return [known[text] for text in texts]

    def _query_vector(self, query: str) -> list[float]:
        """The query's embedding; hybrid search asks twice for each form of a question (vector
        half, then similarities), so the last few are kept."""
        embeddings = self._embeddings
        key = (query, id(embeddings))
        with self._recent_guard:
            cached = self._recent_queries.get(key)
        if cached is not None and cached[0] is embeddings:
            return cached[1]
        vector = embeddings.embed_query(query)
        with self._recent_guard:
            if len(self._recent_queries) >= RECENT_QUERIES:
                self._recent_queries.pop(next(iter(self._recent_queries)))
            self._recent_queries[key] = (embeddings, vector)
        return vector

    def _follow_switch(self) -> bool:
        state = self._catalog.state()
        if state is None or state.collection == self._state.collection:
            return False
        with self._write_guard:
            if state.collection != self._state.collection:
                self._embeddings = self._embeddings_factory(state.config)
                self._vectors = ChunkVectors(self._client, state.collection, self._embeddings)
                self._keyword = self._open_keyword(state.collection)
                self._state = state
        return True

    def _add_one(self, given: str, data: bytes) -> AddResult:
        name = file_name(given)
        if not name or name in {".", ".."}:
            return AddResult(given, "failed", error="has no file name; name the file and retry")
        self._steps.before_write_step()
        try:
            doc = load_document(name, data, self.max_file_bytes, self.ocr)
        except RejectedFile as rejected:
            return AddResult(name, "failed", error=rejected.reason)
        with self._write_guard:
            existing = self._catalog.find_by_sha256(doc.sha256)
            if existing is not None:
                return _duplicate(name, existing)
            config = self._state.config
            chunks = split_document(doc, config.chunk_size, config.chunk_overlap)
            if not chunks:
                return AddResult(name, "failed", error="has no text to index")
            flags = find_instructions(doc.pages)
            with self._claimed(doc) as written:
                if written is not None:
                    return _duplicate(name, written)
                return self._write_document(name, doc, chunks, flags)

    def _write_document(
        self,
        name: str,
        doc: LoadedDocument,
        chunks: list[Document],
        flags: list[InstructionFlag],
    ) -> AddResult:
        """Store the file, its chunks, then its catalog row (which makes it visible, whole)."""
        stored = self._store_original(doc)
        try:
            self._write_chunks(self._vectors, doc.doc_id, chunks, claimed=True)
            self._keyword.add(doc.doc_id, chunks, self._catalog.version() + 1)
            self._catalog.add(_record(doc, stored, len(chunks)), flags)
        except ClaimLost:
            # Too slow to renew: another replica took the document over and writes (or
            # removes) its chunks now; cleaning up here would undo its work.
            return AddResult(name, "failed", error="was taken over by another replica; try again")
        except Exception as error:
            existing = self._catalog.find_by_sha256(doc.sha256)
            if existing is not None:
                # Another process or replica catalogued the same file meanwhile: the
                # chunks and stored copy are also its, the same bytes; leave them.
                return _duplicate(name, existing)
            self._vectors.remove_document(doc.doc_id)
            self._keyword.remove(doc.doc_id, self._catalog.version())
            self._discard_original(doc.sha256, stored)
            return AddResult(name, "failed", error=f"could not be indexed: {error}")
        return AddResult(name, "added", doc.doc_id, len(doc.pages), len(chunks), flagged=len(flags))

    def _write_chunks(
        self, vectors: ChunkVectors, doc_id: str, chunks: list[Document], claimed: bool = False
    ) -> None:
        """Embed and store in slices of `write_batch` chunks, so vectors of a whole large document
        never sit in memory at once; a failure removes what this document had written. Between
        steps of EMBED_STEP texts, searches in progress go first."""
        try:
            for start in range(0, len(chunks), self._write_batch):
                part = chunks[start : start + self._write_batch]
                ids = [f"{doc_id}:{chunk.metadata['chunk_index']}" for chunk in part]
                texts = [embedding_text(chunk) for chunk in part]
                embedded: list[list[float]] = []
                for step in range(0, len(texts), EMBED_STEP):
                    self._steps.before_write_step()
                    embedded += vectors.embeddings.embed_documents(texts[step : step + EMBED_STEP])
                vectors.add(ids, part, embedded)
                if claimed:
                    self._renew_claim(doc_id)
        except ClaimLost:
            raise  # the chunks are the new holder's to write or remove now
        except BaseException:
            vectors.remove_document(doc_id)
            raise

    def _renew_claim(self, doc_id: str) -> None:
        """With shared state: renew this instance's claim on the document it writes; raises
        ClaimLost when another replica took it over (this one was too slow to renew)."""
        catalog = self._catalog
        if isinstance(catalog, DatabaseCatalog) and not catalog.renew_claim(
            doc_id, self._holder, time.time()
        ):
            raise ClaimLost(doc_id)

    @contextmanager
    def _claimed(self, doc: LoadedDocument) -> Iterator[DocumentRecord | None]:
        """With state shared by replicas: hold the document's claim while writing it, waiting
        while another replica writes the same file; yields that replica's record once it has
        catalogued it (nothing left to write), else None. Without: yields None at once."""
        catalog = self._catalog
        if not isinstance(catalog, DatabaseCatalog):
            yield None
            return
        while not self._take_claim(catalog, doc.doc_id):
            time.sleep(CLAIM_POLL_S)
        try:
            yield catalog.find_by_sha256(doc.sha256)
        finally:
            catalog.release_claim(doc.doc_id, self._holder)

    def _take_claim(self, catalog: DatabaseCatalog, doc_id: str) -> bool:
        """Claim a document for this instance: free, stale, or held by a process of this
        machine that is gone (a restarted replica resumes at once, not after CLAIM_STALE_S)."""
        if catalog.claim(doc_id, self._holder, time.time(), CLAIM_STALE_S):
            return True
        holder = catalog.holder_of(doc_id)
        return (
            holder is not None
            and _gone(holder)
            and catalog.take_over(doc_id, holder, self._holder, time.time())
        )

    def _store_original(self, doc: LoadedDocument) -> str:
        """Keep the uploaded bytes; returns where, as the catalog records it."""
        name = f"{doc.sha256}{Path(doc.source).suffix.lower()}"
        if self._files is not None:
            self._files.put(doc.sha256, doc.data)
            return f"database:{name}"
        path = self.files_dir / name
        temporary = path.with_suffix(path.suffix + ".part")
        temporary.write_bytes(doc.data)
        temporary.replace(path)
        return str(path.relative_to(self.data_dir))

    def _discard_original(self, sha256: str, stored_path: str) -> None:
        if self._files is not None:
            self._files.delete(sha256)
        else:
            (self.data_dir / stored_path).unlink(missing_ok=True)

    def _adopt_folder(self, catalog: DatabaseCatalog) -> None:
        """A data dir of server mode from before the state moved to the database: its catalog,
        keyword chunks and files are copied into the empty database once (the vectors are on
        the Chroma server already); the folder is left as it was."""
        path = self.data_dir / CATALOG_FILE
        if not path.exists() or catalog.state() is not None:
            return
        local = Catalog(path)
        try:
            state, records = local.state(), local.documents()
            if state is None or not records:
                return
            keyword = SQLiteChunks(self._keyword_dir(state.collection) / "chunks.sqlite3")
            originals = {}
            for record in records:
                with contextlib.suppress(FileNotFoundError):
                    originals[record.sha256] = (self.data_dir / record.stored_path).read_bytes()
            try:
                chunks = keyword.rows()
            finally:
                keyword.close()
            catalog.adopt(state, records, local.instruction_flags(), originals, chunks)
        finally:
            local.close()

    def _open_keyword(self, collection: str) -> KeywordIndex:
        if self._database is not None:
            return KeywordIndex(None, DatabaseChunks(self._database, collection))
        return KeywordIndex(self._keyword_dir(collection))

    def _reload(self, record: DocumentRecord) -> LoadedDocument:
        data = self.original(record)
        doc = load_document(record.source, data, max(self.max_file_bytes, len(data)), self.ocr)
        if doc.sha256 != record.sha256:
            raise ValueError("the stored file no longer matches its checksum")
        return doc

    def _keyword_dir(self, collection: str) -> Path:
        return self.data_dir / "keyword" / collection

    def _drop_collection(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self._client.delete_collection(name)

    def _remove_leftovers(self) -> None:
        """Drop half-built collections and chunks of documents the catalog does not know."""
        for collection in self._client.list_collections():
            name = getattr(collection, "name", collection)
            if name.startswith(COLLECTION_PREFIX) and name != self._state.collection:
                self._drop_collection(name)
        for folder in (self.data_dir / "keyword").iterdir():
            if folder.name != self._state.collection:
                shutil.rmtree(folder, ignore_errors=True)
        known = self._catalog.doc_ids()
        for doc_id in self._vectors.doc_ids() - known:
            self._vectors.remove_document(doc_id)
        self._sync_keyword_index(known)
        kept = {Path(record.stored_path).name for record in self._catalog.documents()}
        for path in self.files_dir.iterdir():
            if path.name not in kept:
                path.unlink(missing_ok=True)

    def _remove_abandoned(self) -> None:
        """Shared state: drop the chunks and file of each document a replica died writing
        (its claim stale or its process gone, the document never catalogued)."""
        catalog = self._catalog
        assert isinstance(catalog, DatabaseCatalog)
        for doc_id in catalog.claimed():
            if not self._take_claim(catalog, doc_id):
                continue  # being written, or taken over by another replica first
            try:
                if catalog.get(doc_id) is None:
                    self._vectors.remove_document(doc_id)
                    self._keyword.remove(doc_id, catalog.version())
                    if self._files is not None:
                        self._files.delete_document(doc_id)
            finally:
                catalog.release_claim(doc_id, self._holder)

    def _sync_keyword_index(self, known: set[str]) -> None:
        """Make the keyword index hold exactly the catalog's documents, as Chroma does."""
        version = self._catalog.version()
        for doc_id in self._keyword.doc_ids() - known:
            self._keyword.remove(doc_id, version)
        for doc_id in known - self._keyword.doc_ids():
            self._keyword.add(doc_id, self._vectors.chunks(doc_id), version)
        self._keyword.set_version(version)
        self._keyword.refresh()


class ClaimLost(RuntimeError):
    """Another replica took over the document this one was writing (its claim went stale)."""


class ReindexFailed(RuntimeError):
    """A rebuild stopped because some stored files could not be re-read; nothing was switched."""

    def __init__(self, errors: list[AddResult]):
        self.errors = errors
        names = ", ".join(f"{error.file} ({error.error})" for error in errors)
        super().__init__(f"Reindex stopped, the current index is unchanged: {names}")


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and supported files found under the given folders, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                )
            )
        else:
            found.append(path)
    return found


def _machine() -> str:
    """This machine as claims name it: host name and PID namespace (containers on one host
    may share a host name, never a PID namespace)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "?"
    return f"{socket.gethostname()}/{namespace}"


_MACHINE = _machine()


def _gone(holder: str) -> bool:
    """Whether a claim's holder was a process of this machine that no longer runs."""
    machine, _, rest = holder.rpartition(":")[0].rpartition(":")
    if machine != _MACHINE or not rest.isdigit():
        return False
    try:
        os.kill(int(rest), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _forms(query: str, also: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([query, *(form for form in also if form.strip())]))


def _calibration(config: IndexConfig) -> float | None:
    return calibrated_threshold(config.embedding_provider, config.embedding_model)


def _threshold_of(state: IndexState) -> float | None:
    # An index from before thresholds were recorded was built with the same embedders as now.
    if state.relevance_threshold is not None:
        return state.relevance_threshold
    return _calibration(state.config)


def _open_chroma(path: Path, url: str | None) -> chromadb.ClientAPI:
    settings = ChromaSettings(anonymized_telemetry=False)
    if url:
        parsed = urlparse(url)
        return chromadb.HttpClient(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=settings,
        )
    return chromadb.PersistentClient(path=str(path), settings=settings)


def _hit(document: Document, distance: float) -> SearchHit:
    meta = document.metadata
    return SearchHit(
        doc_id=str(meta["doc_id"]),
        source=str(meta["source"]),
        page=int(meta["page"]),
        chunk_index=int(meta["chunk_index"]),
        score=round(1.0 - float(distance), 4),
        text=document.page_content,
        location=meta.get("location") or None,
        ocr=bool(meta.get("ocr", False)),
    )


def _duplicate(name: str, existing: DocumentRecord) -> AddResult:
    return AddResult(
        name,
        "duplicate",
        existing.doc_id,
        existing.pages,
        existing.chunks,
        f"same content as {existing.source}, already indexed",
    )


def _record(doc: LoadedDocument, stored: str, chunks: int) -> DocumentRecord:
    return DocumentRecord(
        doc_id=doc.doc_id,
        source=doc.source,
        sha256=doc.sha256,
        kind=doc.kind,
        pages=len(doc.pages),
        chunks=chunks,
        size_bytes=doc.size_bytes,
        added_at=_now(),
        stored_path=stored,
    )


def _reason(error: BaseException) -> str:
    return error.reason if isinstance(error, RejectedFile) else str(error)


def _folder_size(path: Path) -> int:
    """Bytes under `path`. The worker may swap a keyword-index folder while this walks, so a file
    or folder gone mid-walk counts as nothing instead of failing the page that asked."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(folder, name)).st_size
    return total


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _since(started: float) -> float:
    return time.monotonic() - started


__all__ = [
    "DocumentIndex",
    "IndexConfig",
    "IndexState",
    "IndexStats",
    "Progress",
    "ReindexFailed",
    "ReindexResult",
    "expand_paths",
]
