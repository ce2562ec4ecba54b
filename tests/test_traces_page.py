"""The app's own trace records: TraceStore on real SQLite, and the Traces page in AppTest."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ingest.records import SearchHit
from llm.answering.pipeline import AnswerPipeline, AnswerResult
from llm.models.choice import extractive_choice
from llm.records.database import open_database
from llm.records.trace_store import TRACES_FILE, TraceStore, app_trace_url
from tests.app_pages import indexed
from tests.servers import fresh_database

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
TRACES_PAGE = "app/traces.py"

# A real input standing in for the index (which has its own tests): fixed passages, keyword match.
PASSAGES = [
    SearchHit("bike", "handbook.pdf", 5, 9, 0.0, "The Zephyr frame warranty lasts 5 years."),
    SearchHit("bike", "handbook.pdf", 3, 4, 0.0, "The Zephyr bicycle costs 2,400 euros."),
    SearchHit("garden", "garden.txt", 1, 0, 0.0, "Tomatoes need six hours of sun a day."),
]


def search(query: str, k: int) -> list[SearchHit]:
    wanted = set(re.findall(r"[a-z0-9]{3,}", query.lower()))
    scored = [
        (len(wanted & set(re.findall(r"[a-z0-9]{3,}", hit.text.lower()))), hit) for hit in PASSAGES
    ]
    ranked = sorted((item for item in scored if item[0]), key=lambda item: -item[0])
    return [
        SearchHit(h.doc_id, h.source, h.page, h.chunk_index, float(n), h.text)
        for n, h in ranked[:k]
    ]


def answer(question: str) -> AnswerResult:
    return AnswerPipeline(search, extractive_choice(), top_k=2, max_answer_tokens=64).answer(
        question
    )


@pytest.fixture(params=["file", "database", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TraceStore:
    """Its own SQLite file (embedded), or the app's database (state shared by replicas)."""
    if request.param == "file":
        return TraceStore(tmp_path / TRACES_FILE)
    if request.param == "database":
        return TraceStore(engine=open_database(f"sqlite:///{tmp_path / 'docqa.db'}"))
    server = request.getfixturevalue("postgres_server")
    return TraceStore(engine=open_database(fresh_database(server, f"t_{uuid.uuid4().hex[:12]}")))


def test_a_recorded_answer_comes_back_whole(store: TraceStore) -> None:
    result = answer("How long is the Zephyr frame warranty?")
    result.prompt_messages = [{"role": "system", "content": "Answer from the sources."}]
    kept = store.record(result, page="cli", owner="cli", langsmith_url="https://smith.example/r/1")

    again = store.get(result.run_id)
    assert again == kept
    assert again.id == result.run_id and again.page == "cli"
    assert (again.question, again.standalone_question) == (result.question, result.question)
    assert again.answer == result.answer and "5 years" in again.answer
    assert [(s["source"], s["page"], s["score"]) for s in again.sources] == [
        ("handbook.pdf", 5, 4.0),
        ("handbook.pdf", 3, 2.0),
    ]
    assert again.sources[0]["text"] == PASSAGES[0].text
    assert again.prompt == result.prompt_messages
    assert again.timings == result.timings and again.timings.total_s > 0
    assert again.usage == result.usage
    assert again.langsmith_url == "https://smith.example/r/1" and again.owner == "cli"
    assert (again.provider, again.model, again.cached, again.feedback_score) == (
        "extractive",
        "extractive",
        False,
        None,
    )
    assert store.get("no-such-id") is None


def test_recent_is_newest_first_and_searches_questions_and_answers(store: TraceStore) -> None:
    questions = [
        "How long is the Zephyr frame warranty?",
        "What does the Zephyr bicycle cost?",
        "How much sun do tomatoes need?",
    ]
    ids = [store.record(answer(q), page="chat", owner="browser:a").id for q in questions]

    assert [r.id for r in store.recent(owner=None)] == ids[::-1]
    assert [r.id for r in store.recent(limit=2, owner="browser:a")] == ids[:0:-1]
    assert [r.id for r in store.recent(search="ZEPHYR", owner=None)] == [ids[1], ids[0]]
    # "six hours" is only in the answer, quoted from the passage.
    assert [r.id for r in store.recent(search="six hours", owner=None)] == [ids[2]]
    assert store.recent(search="100%", owner=None) == []  # the % is text, not a wildcard
    assert store.recent(owner="browser:b") == []


def test_feedback_cache_hits_and_late_links(store: TraceStore) -> None:
    original = store.record(answer("What does the Zephyr bicycle cost?"), page="chat", owner="a")

    assert store.set_feedback(original.id, 0, "The price is in euros, say so", owner="a")
    assert store.get(original.id).feedback_score == 0
    assert store.get(original.id).feedback_comment == "The price is in euros, say so"
    assert store.set_feedback(original.id, 1, "  ", owner="a")
    assert store.get(original.id).feedback_comment is None
    assert not store.set_feedback("no-such-id", 1, None, owner="a")

    hit = store.record_cache_hit(
        original.id, "what does the zephyr bicycle cost", page="chat", owner="b"
    )
    assert hit is not None and hit.id != original.id
    assert (hit.cached, hit.cached_from, hit.question) == (
        True,
        original.id,
        "what does the zephyr bicycle cost",
    )
    assert (hit.answer, hit.sources) == (original.answer, original.sources)
    assert hit.feedback_score is None and hit.owner == "b"
    assert store.record_cache_hit("no-such-id", "?", page="chat", owner="b") is None

    url = f"https://smith.example/o/t/projects/p/p/r/{original.id}"
    store.set_langsmith_url(original.id, url)
    assert store.get(original.id).langsmith_url == url == store.get(hit.id).langsmith_url


def test_in_app_link_is_the_traces_page_with_the_id() -> None:
    assert app_trace_url("http://localhost:8501/", "a b") == (
        "http://localhost:8501/traces?trace=a+b"
    )


# -- the pages, in Streamlit's real runtime ------------------------------------------------------


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Path:
    monkeypatch.setenv("DOCQA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "extractive")
    return data_dir


def chat_with_one_answer(pdf: Path, question: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.sidebar.file_uploader[0].set_value([(pdf.name, pdf.read_bytes(), "application/pdf")])
    at.run()
    indexed(at)
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def open_trace(at: AppTest, trace_id: str) -> AppTest:
    at.query_params["trace"] = trace_id
    at.switch_page(TRACES_PAGE).run()
    assert not at.exception, at.exception
    return at


def test_chat_answer_links_to_its_trace_which_the_page_lists_and_opens(
    app_env: Path, good_pdfs: Path
) -> None:
    question = "Who sees things differently, the round pegs in the square holes?"
    at = chat_with_one_answer(good_pdfs / "crazyones-pdfa.pdf", question)
    reply = at.chat_message[1]
    [link] = [link for link in reply.get("page_link") if link.proto.label == "View trace"]
    [trace_id] = re.findall(r"trace=([0-9a-f-]+)", link.proto.query_string)
    assert at.session_state.messages[1].trace_id == trace_id
    assert not [link for link in reply.get("page_link") if "LangSmith" in link.proto.label]

    reply.get("feedback")[0].set_value(1).run()
    at.chat_message[1].text_input[0].set_value("Quoted the right line").run()
    record = TraceStore(app_env / TRACES_FILE).get(trace_id)
    assert (record.question, record.feedback_score) == (question, 1)
    assert record.feedback_comment == "Quoted the right line"

    at = open_trace(at, trace_id)
    assert question in [text.value for text in at.text]
    chunks = at.dataframe[0].value
    assert list(chunks["source"]) == [s["source"] for s in record.sources]
    assert list(chunks["score"]) == [s["score"] for s in record.sources]
    assert "misfits" in " ".join(chunks["text"]).lower()
    assert record.answer in [markdown.value for markdown in at.markdown]
    assert any("No prompt" in caption.value for caption in at.caption)
    assert any("👍 Quoted the right line" in caption.value for caption in at.caption)
    assert at.selectbox[0].value == trace_id
    [listed] = [df.value for df in at.dataframe if "question" in df.value.columns]
    assert list(listed["question"]) == [question]

    # Each retrieved chunk opens its page with the chunk marked on it.
    [first_chunk] = [b for b in at.button if b.label == "[1] page 1"]
    first_chunk.click().run()
    assert not at.exception, at.exception
    [drawn] = [h.proto.body for h in at.get("html") if "docqa-page" in h.proto.body]
    assert 'class="docqa-mark"' in drawn

    at.text_input(key="trace_search").set_value("no such words anywhere").run()
    assert any(caption.value == "No answer matches." for caption in at.caption)


def test_a_local_follow_up_trace_says_both_searches_were_fused(app_env: Path) -> None:
    store = TraceStore(app_env / TRACES_FILE)
    history = [("How long is the Zephyr frame warranty?", "5 years [1].")]
    follow_up = AnswerPipeline(search, extractive_choice(), top_k=2, max_answer_tokens=64).answer(
        "And what does it cost?", history
    )
    alone = answer("How much does the Zephyr bicycle cost?")
    # The record as the local model's pipeline leaves it (that pipeline's two searches are
    # tested in test_answer.py with a real llama.cpp model): only its provider differs here.
    follow_up.provider = alone.provider = "local"
    assert follow_up.standalone_question != follow_up.question
    for result in (follow_up, alone):
        store.record(result, page="chat", owner="someone")

    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at = open_trace(at, follow_up.run_id)
    assert follow_up.standalone_question in [text.value for text in at.text]
    assert any("searched as asked" in caption.value for caption in at.caption)

    at = open_trace(at, alone.run_id)
    assert not any("searched as asked" in caption.value for caption in at.caption)


def test_an_unknown_trace_id_says_so(app_env: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at = open_trace(at, "0000-not-a-trace")
    assert "no trace with id 0000-not-a-trace" in at.warning[0].value


@pytest.mark.slow
def test_the_page_shows_the_exact_prompt_sent_to_the_local_model(
    app_env: Path, monkeypatch: pytest.MonkeyPatch, good_pdfs: Path
) -> None:
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "local")
    monkeypatch.setenv("DOCQA_MAX_ANSWER_TOKENS", "16")
    question = "Which people does The Crazy Ones call troublemakers?"
    at = chat_with_one_answer(good_pdfs / "crazyones-pdfa.pdf", question)
    trace_id = at.session_state.messages[1].trace_id
    record = TraceStore(app_env / TRACES_FILE).get(trace_id)
    assert record.provider == "local" and record.usage.output_tokens > 0

    at = open_trace(at, trace_id)
    [prompt] = at.json
    assert json.loads(prompt.value) == record.prompt == at.session_state.messages[1].prompt
    assert record.prompt[-1]["role"] == "user" and question in record.prompt[-1]["content"]
    # The prompt carries the best passage under its number, cut to its most relevant sentences.
    sent = record.prompt[-1]["content"]
    first = record.sources[0]
    header = "Sources:\n[1]\n"
    assert header in sent
    excerpt = sent.split(header, 1)[1].split("\n\n", 1)[0].split("…")[0]
    assert " ".join(excerpt.split())[:40] in " ".join(first["text"].split())
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Output tokens"] == str(record.usage.output_tokens)
