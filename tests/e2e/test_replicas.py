"""Two app replicas as on two machines: separate data folders, one PostgreSQL database and one
`chroma run` server, in a real Chromium. A document uploaded through A is answered on B; a
private document stays private on both; both replicas billing at once add up to the exact total;
killing A mid-upload loses nothing and leaves nothing half-indexed.

The model is the scripted OpenAI-compatible server (tests/scripted_openai.py): the replicas'
OpenAI client, streaming and billing are real, and it counts the calls the ledger must price."""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from ingest.index import DocumentIndex
from llm.access.accounts import Accounts
from llm.access.ledger import Caps, SpendLedger
from llm.components import build_index
from llm.records.database import open_database
from llm.records.tables import ledger_calls
from llm.settings import load_settings
from tests.browser_fixtures import Server, start_server, stop_server
from tests.e2e.steps import ask, sidebar
from tests.generated import notes
from tests.scripted_openai import Listener, scripted_model
from tests.servers import fresh_database, start_chroma

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres, pytest.mark.server]
expect.set_options(timeout=60_000)
# A job of several hundred chunks takes minutes on a loaded 2-core machine.
JOB_TIMEOUT_MS = 600_000
PASSWORD = "a long enough password"
QUESTION = "Who are the crazy ones?"
ANSWER = "The crazy ones are the misfits, the rebels and the troublemakers [1]."
# Distinct questions (no answer comes from the cache), asked on both replicas at once.
BILLED = (
    "Who sees things differently?",
    "What can you do with the crazy ones?",
    "Who pushes the human race forward?",
)


def signed_in(browser: Browser, server: Server, name: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.set_default_timeout(60_000)
    page.goto(server.url)
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(sidebar(page)).to_contain_text(f"Signed in as {name}")
    return page


def indexed(page: Page, count: int) -> None:
    expect(sidebar(page)).to_contain_text(f"{count} document(s) indexed")


def whole(index: DocumentIndex) -> None:
    """Every catalogued document has all its chunks in both searches, and no search returns a
    chunk of a document the catalog does not list."""
    records = index.documents()
    vectors = index._vectors.chunk_counts()
    for record in records:
        assert vectors[record.doc_id] == record.chunks, record
    assert index._keyword.chunk_count() >= sum(record.chunks for record in records)
    known = {record.doc_id for record in records}
    for query in ("valve opens at step", "misfits rebels troublemakers"):
        for hit in index.search(query, 50) + index.keyword_search(query, 50):
            assert hit.doc_id in known, hit


def test_two_replicas_serve_one_corpus_and_a_killed_upload_loses_nothing(
    browser: Browser,
    postgres_server: str,
    tmp_path_factory: pytest.TempPathFactory,
    good_pdfs: Path,
) -> None:
    url = fresh_database(postgres_server, "one_corpus")
    engine = open_database(url)
    accounts = Accounts(engine)
    for name in ("ada", "bob"):
        accounts.create(name, PASSWORD)
    root_a, root_b = tmp_path_factory.mktemp("machine_a"), tmp_path_factory.mktemp("machine_b")
    model = Listener(reply=scripted_model(ANSWER))
    with contextmanager(start_chroma)(tmp_path_factory.mktemp("chroma")) as chroma_url:
        env = {
            "DOCQA_LLM_PROVIDER": "openai",
            "OPENAI_API_KEY": "sk-scripted-test-key",
            "OPENAI_BASE_URL": f"{model.url}/v1",
            "DOCQA_DATABASE_URL": url,
            "DOCQA_CHROMA_URL": chroma_url,
        }
        settings = load_settings(
            data_dir=tmp_path_factory.mktemp("observer"), chroma_url=chroma_url, database_url=url
        )
        first, second = start_server(root_a, env), start_server(root_b, env)
        try:
            # Ada uploads through A, into her private collection.
            ada_a = signed_in(browser, first, "ada")
            sidebar(ada_a).locator("input[type=file]").set_input_files(
                [good_pdfs / "crazyones-pdfa.pdf"]
            )
            indexed(ada_a, 1)

            # B answers it, with the quote and its file visible.
            ada_b = signed_in(browser, second, "ada")
            indexed(ada_b, 1)
            answer = ask(ada_b, QUESTION)
            expect(answer.get_by_role("link", name="View trace")).to_be_visible(timeout=120_000)
            expect(answer).to_contain_text("crazyones-pdfa.pdf")
            expect(answer).to_contain_text("misfits")
            assert model_calls(model) == 1

            # Bob sees none of it, on either replica.
            for server in (first, second):
                bob = signed_in(browser, server, "bob")
                indexed(bob, 0)
                reply = ask(bob, QUESTION)
                expect(reply).to_contain_text("I found no passage to answer from")
                expect(reply).not_to_contain_text("misfits")
                bob.context.close()
            assert model_calls(model) == 1, "no passage, no model call"

            # Both replicas answer (and bill) at once. Each call costs the same (the scripted
            # usage); a follow-up makes two (the question is condensed first) on one ledger row.
            with engine.connect() as db:
                # So far: Ada's one answer, and Bob's two answers without a model (free).
                one_call = max(db.execute(sa.select(ledger_calls.c.cost_usd)).scalars())
            for question in BILLED:
                answers = [ask(ada_a, question), ask(ada_b, question)]
                for each in answers:
                    # Billed once kept, when its trace link shows (the file's name shows earlier,
                    # in the note on what the model is reading).
                    trace = each.get_by_role("link", name="View trace")
                    expect(trace).to_be_visible(timeout=120_000)
                    expect(each).to_contain_text("crazyones-pdfa.pdf")
            with engine.connect() as db:
                billed = sum(db.execute(sa.select(ledger_calls.c.cost_usd)).scalars())
            assert one_call > 0 and model_calls(model) >= 1 + 2 * len(BILLED)
            assert math.isclose(billed, one_call * model_calls(model), rel_tol=1e-9)
            [day, *_] = SpendLedger(engine, Caps(5, 20, 50)).usage()
            assert math.isclose(day.spent, billed, rel_tol=1e-9)

            # A is killed while it indexes the second of three files.
            sidebar(ada_a).locator("input[type=file]").set_input_files(
                notes(root_a / "upload", 3, 150)
            )
            expect(sidebar(ada_a)).to_contain_text("1/3 files", timeout=JOB_TIMEOUT_MS)
            first.process.kill()  # as a crash ends it: no clean shutdown
            first.process.wait()

            observer = build_index(settings, owner="the test, as a third replica")
            try:
                whole(observer)
                done = {record.source for record in observer.documents()}
                assert {"crazyones-pdfa.pdf", "notes-0.md"} <= done
                assert "notes-2.md" not in done
            finally:
                observer.close()
            ada_b.reload()
            indexed(ada_b, len(done))

            # A, started again on its own folder, finishes the job; B sees all of it.
            first = start_server(root_a, env)
            ada_a = signed_in(browser, first, "ada")
            expect(sidebar(ada_a)).to_contain_text("4 document(s) indexed", timeout=JOB_TIMEOUT_MS)
            ada_b.reload()
            indexed(ada_b, 4)
            observer = build_index(settings, owner="the test, as a third replica")
            try:
                whole(observer)
                assert sorted(r.source for r in observer.documents()) == [
                    "crazyones-pdfa.pdf",
                    "notes-0.md",
                    "notes-1.md",
                    "notes-2.md",
                ]
            finally:
                observer.close()
            bob = signed_in(browser, second, "bob")
            indexed(bob, 0)
        finally:
            stop_server(first)
            stop_server(second)
            model.close()


def model_calls(model: Listener) -> int:
    return sum(path.endswith("/chat/completions") for path in model.paths)
