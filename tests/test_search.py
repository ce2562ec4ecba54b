"""Search modes on a real index: fused ranking, the keyword half kept in step, low relevance."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from app.cli import main
from ingest.catalog import IndexConfig
from ingest.embeddings import MiniLMEmbeddings
from ingest.index import DocumentIndex
from ingest.records import SearchHit
from llm.answering.pipeline import LOW_RELEVANCE_ANSWER, AnswerPipeline
from llm.components import build_pipeline
from llm.models.choice import build_chat_model, extractive_choice
from llm.retrieval.modes import is_low_relevance, make_search, sentence_forms
from llm.settings import load_settings

CONFIG = IndexConfig("local", "all-MiniLM-L6-v2", 1000, 150)
EMBEDDER = MiniLMEmbeddings()

# One short chunk per file, so a file's rank is its chunk's rank. `ticket.txt` holds a rare
# identifier and nothing else of the question; `reset.txt` paraphrases it ("passphrase you sign
# in with" for "password"); `login.txt` is on a nearby topic and shares no word with it.
CORPUS = {
    "ticket.txt": "Ticket KX-4471: the warehouse delivered the missing pallets on Monday morning.",
    "reset.txt": "To change the passphrase you sign in with, open Settings and then Security.",
    "login.txt": "Two-factor login codes are sent by text message to your phone.",
    "bread.txt": "Knead the dough for ten minutes and let it rise overnight in a cool place.",
}
MIXED_QUESTION = "How can I change my account password (ticket KX-4471)?"
# The same ask in two sentences, so it is also searched sentence by sentence.
TWO_SENTENCES = "How can I change my account password? This is about ticket KX-4471."
ANSWERED_QUESTION = "How do I change the passphrase I sign in with?"
ABSENT_QUESTION = "Who won the football World Cup in 2018?"


def open_index(data_dir: Path) -> DocumentIndex:
    return DocumentIndex(data_dir, lambda config: EMBEDDER, CONFIG, max_file_bytes=1 << 20)


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory: pytest.TempPathFactory):
    index = open_index(tmp_path_factory.mktemp("corpus"))
    results = index.add_files([(name, text.encode()) for name, text in CORPUS.items()])
    assert [r.status for r in results] == ["added"] * len(CORPUS)
    yield index
    index.close()


def sources(hits) -> list[str]:
    return [hit.source for hit in hits]


def test_hybrid_fuses_halves_that_disagree_into_the_hand_computed_order(
    corpus_index: DocumentIndex,
) -> None:
    vector = corpus_index.search(MIXED_QUESTION, 4)
    keyword = corpus_index.keyword_search(MIXED_QUESTION, 4)
    # The halves disagree: meaning finds the paraphrase, then the nearby topic; words find the
    # identifier first, and the paraphrase only through "change".
    assert sources(vector) == ["reset.txt", "login.txt", "ticket.txt", "bread.txt"]
    assert sources(keyword) == ["ticket.txt", "reset.txt"]

    hybrid = make_search(corpus_index, "hybrid")(MIXED_QUESTION, 4)
    # RRF, k = 60: reset 1/61 + 1/62 = .03253 > ticket 1/63 + 1/61 = .03227 > login 1/62 = .01613
    # > bread 1/64 = .01563. The identifier overtakes the nearby topic that vectors preferred.
    assert sources(hybrid) == ["reset.txt", "ticket.txt", "login.txt", "bread.txt"]
    # Every score shown is the chunk's cosine similarity, whichever half found it.
    cosine = {hit.source: hit.score for hit in vector}
    assert {hit.source: hit.score for hit in hybrid} == cosine
    assert [h.score for h in make_search(corpus_index, "keyword")(MIXED_QUESTION, 4)] == [
        cosine["ticket.txt"],
        cosine["reset.txt"],
    ]


def test_neither_half_returns_a_removed_document_through_add_remove_and_reindex(
    data_dir: Path,
) -> None:
    index = open_index(data_dir)
    try:
        added = index.add_files([(name, text.encode()) for name, text in CORPUS.items()])
        ids = {result.file: result.doc_id for result in added}
        search = make_search(index, "hybrid")

        def found(query: str) -> dict[str, set[str]]:
            return {
                "vector": set(sources(index.search(query, 10))),
                "keyword": set(sources(index.keyword_search(query, 10))),
                "hybrid": set(sources(search(query, 10))),
            }

        def in_step() -> None:
            assert index._keyword.version == index.version
            assert index._keyword.doc_ids() == {record.doc_id for record in index.documents()}

        assert all("ticket.txt" in hits for hits in found("ticket KX-4471 pallets").values())
        assert index.remove(ids["ticket.txt"])
        in_step()
        assert all("ticket.txt" not in hits for hits in found("ticket KX-4471 pallets").values())

        # A rebuild re-reads the stored files: the removed one must not come back.
        index.reindex(IndexConfig("local", "all-MiniLM-L6-v2", 300, 30))
        in_step()
        assert all("ticket.txt" not in hits for hits in found("ticket KX-4471 pallets").values())
        assert all("bread.txt" in hits for hits in found("knead the dough").values())

        # Removing after the switch acts on the new keyword index, and adding back works there.
        assert index.remove(ids["bread.txt"])
        in_step()
        assert all("bread.txt" not in hits for hits in found("knead the dough").values())
        index.add_files([("bread.txt", CORPUS["bread.txt"].encode())])
        in_step()
        assert all("bread.txt" in hits for hits in found("knead the dough").values())
    finally:
        index.close()


def test_low_relevance_is_flagged_for_an_absent_topic_and_not_for_an_answered_one(
    corpus_index: DocumentIndex,
) -> None:
    pipeline = AnswerPipeline(
        make_search(corpus_index, "hybrid"),
        extractive_choice(),
        top_k=3,
        max_answer_tokens=64,
        low_relevance_threshold=corpus_index.relevance_threshold,
    )
    answered = pipeline.answer(ANSWERED_QUESTION)
    assert not answered.low_relevance
    assert answered.sources[0].source == "reset.txt"
    assert "Settings" in answered.answer

    absent = pipeline.answer(ABSENT_QUESTION)
    assert absent.low_relevance
    # The weak matches are still listed as sources, but none is quoted as if it answered.
    assert absent.answer == LOW_RELEVANCE_ANSWER
    threshold = corpus_index.relevance_threshold
    assert threshold is not None
    assert absent.sources and max(s.score for s in absent.sources) < threshold


@pytest.mark.slow
def test_the_local_model_is_not_asked_from_weak_matches(corpus_index: DocumentIndex) -> None:
    choice = build_chat_model(load_settings(llm_provider="local"))
    pipeline = AnswerPipeline(
        make_search(corpus_index, "hybrid"), choice, 2, 24, corpus_index.relevance_threshold
    )
    result = pipeline.answer(ABSENT_QUESTION)
    assert result.low_relevance and result.answer == LOW_RELEVANCE_ANSWER
    assert result.prompt_messages == [] and result.usage.total_tokens == 0
    assert result.sources, "the nearest passages are still there to check"

    answered = pipeline.answer(ANSWERED_QUESTION)
    assert not answered.low_relevance and answered.usage.output_tokens > 0
    assert answered.answer != LOW_RELEVANCE_ANSWER


def test_eval_compares_every_mode_on_one_ingest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eval_dir = tmp_path / "eval"
    (eval_dir / "docs").mkdir(parents=True)
    for name, text in CORPUS.items():
        (eval_dir / "docs" / name).write_text(text)
    questions = [
        {"id": "q1", "question": MIXED_QUESTION, "source": "ticket.txt", "pages": [1]},
        {"id": "q2", "question": ANSWERED_QUESTION, "source": "reset.txt", "pages": [1]},
    ]
    (eval_dir / "qa.jsonl").write_text("\n".join(json.dumps(q) for q in questions))

    assert main(["eval", str(eval_dir), "--compare", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert list(figures["modes"]) == ["vector", "keyword", "hybrid"]
    ranks = {
        mode: [question["rank"] for question in report["per_question"]]
        for mode, report in figures["modes"].items()
    }
    assert ranks == {"vector": [3, 1], "keyword": [1, 1], "hybrid": [2, 1]}
    assert figures["modes"]["hybrid"]["recall_at_5"] == 1.0
    assert figures["modes"]["vector"]["recall_at_1"] == 0.5
    assert figures["documents"] == len(CORPUS)

    assert main(["eval", str(eval_dir), "--mode", "keyword"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["keyword", "1.000", "1.000", "1.000"] in [row[:4] for row in rows]
    assert not any(row[:1] in (["vector"], ["hybrid"]) for row in rows)


def test_a_question_of_several_sentences_is_also_searched_sentence_by_sentence() -> None:
    assert sentence_forms("How do I change the passphrase I sign in with?") == []
    assert sentence_forms(MIXED_QUESTION) == []
    assert sentence_forms(TWO_SENTENCES) == [
        "How can I change my account password?",
        "This is about ticket KX-4471.",
    ]
    # A fragment too short to carry a topic of its own is left out, but the rest still counts.
    assert sentence_forms("I want my pallets delivered on Monday. How?") == [
        "I want my pallets delivered on Monday."
    ]


def test_each_chunk_scores_its_best_cosine_over_the_forms_of_the_question(
    corpus_index: DocumentIndex,
) -> None:
    forms = sentence_forms(TWO_SENTENCES)
    alone = [
        {hit.source: hit.score for hit in corpus_index.search(query, 4)}
        for query in (TWO_SENTENCES, *forms)
    ]
    best = {name: max(scores[name] for scores in alone) for name in CORPUS}
    together = corpus_index.search(TWO_SENTENCES, 4, also=forms)
    assert {hit.source: hit.score for hit in together} == best
    assert [hit.score for hit in together] == sorted(best.values(), reverse=True)
    # The sentence naming the ticket finds it far better than the whole question does.
    assert best["ticket.txt"] > alone[0]["ticket.txt"] + 0.1
    hits = corpus_index.keyword_search(TWO_SENTENCES, 4)
    scores = corpus_index.similarities(TWO_SENTENCES, hits, also=forms)
    assert scores == [best[hit.source] for hit in hits]
    # What hybrid search shows for a chunk is that same best cosine.
    hybrid = make_search(corpus_index, "hybrid")(TWO_SENTENCES, 4)
    assert {hit.source: hit.score for hit in hybrid} == best


def test_a_weak_cosine_still_counts_when_a_passage_holds_most_of_the_question_words() -> None:
    page = SearchHit("c", "crazy.pdf", 1, 0, 0.28, "Here's to the misfits. The rebels.")
    assert not is_low_relevance([page], 0.31, "Who are the misfits?")
    assert is_low_relevance([page], 0.31, "Who won the football world cup?")
    assert is_low_relevance([replace(page, score=0.2)], 0.31, "Which rebels won the cup?")
    assert not is_low_relevance([replace(page, score=0.4)], 0.31, "Who won the cup?")
    assert is_low_relevance([], 0.31, "Who are the misfits?")


def test_an_embedder_never_calibrated_has_no_cosine_cut_off() -> None:
    weak = SearchHit("c", "crazy.pdf", 1, 0, 0.05, "Here's to the misfits. The rebels.")
    assert not is_low_relevance([weak], None, "Who won the football world cup?")
    assert is_low_relevance([], None, "Who won the football world cup?")


def test_a_threshold_in_the_settings_overrides_the_index_s_own() -> None:
    def search(query: str, k: int) -> list[SearchHit]:
        return []  # the pipelines are only built, never asked

    calibrated = build_pipeline(load_settings(), search, extractive_choice(), None, 0.31)
    assert calibrated.low_relevance_threshold == 0.31
    uncalibrated = build_pipeline(load_settings(), search, extractive_choice(), None, None)
    assert uncalibrated.low_relevance_threshold is None
    chosen = load_settings(low_relevance_threshold=0.5)
    overridden = build_pipeline(chosen, search, extractive_choice(), None, 0.31)
    assert overridden.low_relevance_threshold == 0.5
