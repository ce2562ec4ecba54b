"""Accounts and kept conversations in Streamlit's real runtime (AppTest): the sign-in page in
front of everything, sign-out, the admin's Users tab, sign-up, and conversations that a new
session (a reload, another device) finds again, each user only their own."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import resources
from llm.access.accounts import Accounts
from llm.access.collections import Collections
from llm.records.database import database_url, open_database
from llm.settings import Settings, load_settings
from tests.app_pages import APP, PASSWORD, log_in, page_text
from tests.test_chat_page import ask, assistant_texts, start, upload

ADA, BOB = ("ada", "ada's long password"), ("bob", "bob's long password")


@pytest.fixture
def accounts_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Accounts:
    monkeypatch.setenv("DOCQA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "extractive")
    return Accounts(open_database(database_url(load_settings(data_dir=data_dir))))


def collections_in(data_dir: Path) -> Collections:
    return Collections(open_database(database_url(load_settings(data_dir=data_dir))))


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_password").input(password)
    at.button(key="FormSubmitter:sign_in-Sign in").click().run()
    assert not at.exception, at.exception
    return at


def sidebar_buttons(at: AppTest) -> list[str]:
    return [button.label for button in at.sidebar.button]


def test_with_accounts_nothing_but_the_sign_in_page_shows_until_one_signs_in(
    accounts_env: Accounts,
) -> None:
    accounts_env.create(*ADA)
    at = start()
    assert at.title[0].value == "Sign in to DocQA"
    assert not at.chat_input and not at.sidebar.file_uploader

    sign_in(at, "ada", "not the password")
    assert "Wrong name or password (4 more tries" in at.error[0].value
    assert at.title[0].value == "Sign in to DocQA"
    # A name nobody has reads the same.
    sign_in(at, "nobody", "not the password")
    assert "Wrong name or password (4 more tries" in at.error[0].value

    sign_in(at, *ADA)
    assert at.title[0].value == "Ask your documents"
    assert "Signed in as **ada**" in page_text(at)
    assert "search_in" in at.session_state and "upload_to" in at.session_state

    at.sidebar.button(key="sign_out").click().run()
    assert at.title[0].value == "Sign in to DocQA"
    assert not at.chat_input
    for key in ("messages", "search_in", "upload_to", "admin_auth"):
        assert key not in at.session_state, f"{key} outlived the sign-out"


def test_without_accounts_the_app_is_open_as_before(accounts_env: Accounts) -> None:
    at = start()
    assert at.title[0].value == "Ask your documents"
    assert "Sign out" not in sidebar_buttons(at)


def test_a_conversation_is_found_again_by_its_owner_only(
    accounts_env: Accounts, good_pdfs: Path
) -> None:
    accounts_env.create(*ADA)
    accounts_env.create(*BOB)
    at = sign_in(start(), *ADA)
    upload(at, good_pdfs / "crazyones-pdfa.pdf")
    ask(at, "Who are the crazy ones?")
    ask(at, "What do they push forward?")
    answers = assistant_texts(at)
    assert len(answers) == 2
    assert "Who are the crazy ones?" in sidebar_buttons(at)

    # A new session (a reload, another device): the list holds it, and it opens as it was.
    again = sign_in(start(), *ADA)
    assert not again.chat_message
    [kept] = [b for b in again.sidebar.button if b.label == "Who are the crazy ones?"]
    kept.click().run()
    assert not again.exception, again.exception
    assert assistant_texts(again) == answers
    assert "crazyones-pdfa.pdf" in page_text(again)

    # A follow-up in the reopened conversation joins it instead of starting another.
    ask(again, "Who sees them as geniuses?")
    assert len(assistant_texts(again)) == 3
    assert sidebar_buttons(again).count("Who are the crazy ones?") == 1

    other = sign_in(start(), *BOB)
    assert "Who are the crazy ones?" not in sidebar_buttons(other)
    assert not other.chat_message


def test_a_conversation_is_renamed_and_deleted_from_the_sidebar(
    accounts_env: Accounts, good_pdfs: Path
) -> None:
    accounts_env.create(*ADA)
    at = sign_in(start(), *ADA)
    upload(at, good_pdfs / "crazyones-pdfa.pdf")
    ask(at, "Who are the crazy ones?")
    [title] = [box for box in at.sidebar.text_input if box.label == "Title"]
    title.input("Crazy ones").run()
    assert "Crazy ones" in sidebar_buttons(at)
    assert "Who are the crazy ones?" not in sidebar_buttons(at)
    [delete] = [b for b in at.sidebar.button if b.label == "Delete this conversation"]
    delete.click().run()
    assert "Crazy ones" not in sidebar_buttons(at)
    assert not at.chat_message


def test_the_admin_adds_an_account_and_an_admin_user_needs_no_password(
    accounts_env: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCQA_ADMIN_PASSWORD", PASSWORD)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"))
    at.switch_page("app/admin.py").run()
    log_in(at, PASSWORD)
    at.text_input(key="admin_new_user_name").input("carol")
    at.text_input(key="admin_new_user_pw").input("short")
    at.button(key="FormSubmitter:admin_add_user-Add").click().run()
    assert "at least 8 characters" in at.error[0].value
    assert not accounts_env.any_users()

    at.text_input(key="admin_new_user_pw").input("carol's long password")
    at.checkbox(key="admin_new_user_admin").check()
    at.button(key="FormSubmitter:admin_add_user-Add").click().run()
    assert [(u.name, u.is_admin) for u in accounts_env.users()] == [("carol", True)]

    carol = sign_in(start(), "carol", "carol's long password")
    carol.switch_page("app/admin.py").run()
    assert not carol.exception, carol.exception
    assert "Users" in [tab.label for tab in carol.tabs]
    assert not [t for t in carol.text_input if t.key == "admin_password_input"]


def test_visitors_may_create_an_account_when_the_setting_allows(
    accounts_env: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts_env.create(*ADA)
    assert [tab.label for tab in start().tabs] == ["Sign in"]
    monkeypatch.setenv("DOCQA_ACCOUNTS_SIGNUP", "true")
    at = start()
    at.text_input(key="sign_up_name").input("dan")
    at.text_input(key="sign_up_password").input("dan's long password")
    at.button(key="FormSubmitter:sign_up-Create the account").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Ask your documents"
    assert [u.name for u in accounts_env.users()] == ["ada", "dan"]
    assert not accounts_env.users()[1].is_admin


def test_an_unreachable_database_is_said_plainly_without_its_password(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.setenv("DOCQA_DATA_DIR", str(data_dir))
    # Port 9 (discard) on loopback: nothing listens there.
    secret = "s3cret-db-password"
    monkeypatch.setenv("DOCQA_DATABASE_URL", f"postgresql+psycopg://docqa:{secret}@127.0.0.1:9/x")
    at = start()
    assert "cannot be opened (OperationalError)" in at.error[0].value
    assert "DOCQA_DATABASE_URL" in at.error[0].value
    assert secret not in page_text(at)
    assert not at.chat_input


def test_a_private_document_stays_out_of_another_users_answers_until_shared(
    accounts_env: Accounts, data_dir: Path, good_pdfs: Path
) -> None:
    accounts_env.create(*ADA)
    bob = accounts_env.create(*BOB)
    ada = sign_in(start(), *ADA)
    upload(ada, good_pdfs / "crazyones-pdfa.pdf")
    ask(ada, "Who are the crazy ones?")
    assert "crazyones-pdfa.pdf" in page_text(ada)

    # Bob: nothing of Ada's in his count, his search, his answer, or the answer cache.
    other = sign_in(start(), *BOB)
    assert "0 document(s) indexed in the collections you search" in page_text(other)
    ask(other, "Who are the crazy ones?")
    assert len(assistant_texts(other)) == 1
    assert "crazyones" not in page_text(other)
    assert "cached" not in page_text(other)

    # Ada makes a collection shared with Bob and uploads into it.
    ada.text_input(key="new_collection_name").input("Team")
    ada.radio(key="new_collection_sharing").set_value("readers")
    ada.multiselect(key="new_collection_readers").set_value([bob.id])
    [create] = [b for b in ada.sidebar.button if b.label == "Create"]
    create.click().run()
    [team] = [c for c in collections_in(data_dir).all() if c.name == "Team"]
    assert team.readers == (bob.id,)
    assert ada.selectbox(key="upload_to").value == team.id, "uploads go to the new collection"
    upload(ada, good_pdfs / "google-doc-document.pdf")

    other = sign_in(start(), *BOB)
    assert "1 document(s) indexed in the collections you search" in page_text(other)
    ask(other, "What is in the Google document?")
    shown = page_text(other)
    assert "google-doc-document.pdf" in shown and "crazyones" not in shown

    # Bob uploads the same bytes as Ada's private file: not named to him, and now his too.
    upload(other, good_pdfs / "crazyones-pdfa.pdf")
    shown = page_text(other)
    assert "the same content is indexed already" in shown
    assert "2 document(s) indexed in the collections you search" in shown


def test_a_document_leaving_its_last_collection_leaves_the_index_not_to_everyone(
    accounts_env: Accounts, data_dir: Path, good_pdfs: Path
) -> None:
    accounts_env.create(*ADA)
    accounts_env.create(*BOB)
    ada = sign_in(start(), *ADA)
    upload(ada, good_pdfs / "crazyones-pdfa.pdf")
    assert "1 document(s) indexed in the collections you search" in page_text(ada)
    [remove] = [b for b in ada.sidebar.button if b.label == "Remove crazyones-pdfa.pdf"]
    remove.click().run()
    assert not ada.exception, ada.exception
    assert "0 document(s) indexed in the collections you search" in page_text(ada)
    settings = load_settings(data_dir=data_dir)
    assert _indexed_sources(settings) == [], "its only collection held it: out of the index"

    # A shared collection deleted with its document: gone for Bob too, never Everyone's.
    ada.text_input(key="new_collection_name").input("Handbook")
    ada.radio(key="new_collection_sharing").set_value("everyone")
    [create] = [b for b in ada.sidebar.button if b.label == "Create"]
    create.click().run()
    upload(ada, good_pdfs / "google-doc-document.pdf")
    bob = sign_in(start(), *BOB)
    assert "1 document(s) indexed in the collections you search" in page_text(bob)
    [delete] = [b for b in ada.sidebar.button if b.label == "Delete the collection"]
    delete.click().run()
    assert not ada.exception, ada.exception
    assert "Handbook" not in page_text(ada)
    assert _indexed_sources(settings) == []
    bob = sign_in(start(), *BOB)
    assert "0 document(s) indexed in the collections you search" in page_text(bob)


def _indexed_sources(settings: Settings) -> list[str]:
    index = resources.index(settings)
    return [record.source for record in index.documents()]


def test_a_trace_url_opens_for_its_owner_and_not_for_another_user(
    accounts_env: Accounts, good_pdfs: Path
) -> None:
    accounts_env.create(*ADA)
    accounts_env.create(*BOB)
    question = "Who are the crazy ones?"
    ada = sign_in(start(), *ADA)
    upload(ada, good_pdfs / "crazyones-pdfa.pdf")
    ask(ada, question)
    trace_id = ada.session_state.messages[1].trace_id
    assert trace_id

    def open_trace(at: AppTest) -> AppTest:
        at.query_params["trace"] = trace_id
        at.switch_page("app/traces.py").run()
        assert not at.exception, at.exception
        return at

    assert question in [text.value for text in open_trace(ada).text]
    other = open_trace(sign_in(start(), *BOB))
    assert "belongs to another user's answer" in other.warning[0].value
    shown = page_text(other) + " ".join(text.value for text in other.text)
    assert question not in shown and "misfits" not in shown.lower()


def test_a_kept_answer_does_not_open_a_page_its_reader_lost_access_to(
    accounts_env: Accounts, data_dir: Path, good_pdfs: Path
) -> None:
    accounts_env.create(*ADA)
    bob = accounts_env.create(*BOB)
    ada = sign_in(start(), *ADA)
    ada.text_input(key="new_collection_name").input("Team")
    ada.radio(key="new_collection_sharing").set_value("readers")
    ada.multiselect(key="new_collection_readers").set_value([bob.id])
    [create] = [b for b in ada.sidebar.button if b.label == "Create"]
    create.click().run()
    upload(ada, good_pdfs / "crazyones-pdfa.pdf")

    reader = sign_in(start(), *BOB)
    ask(reader, "Who are the crazy ones?")
    sources = reader.chat_message[1].expander[0]
    [show] = [b for b in sources.button if b.label == "Show page 1"]
    show.click().run()
    assert [h for h in reader.get("html") if "docqa-page" in h.proto.body], "drawn while shared"

    [team] = [c for c in collections_in(data_dir).all() if c.name == "Team"]
    collections_in(data_dir).share(team.id, "private")
    again = sign_in(start(), *BOB)
    [kept] = [b for b in again.sidebar.button if b.label == "Who are the crazy ones?"]
    kept.click().run()
    sources = again.chat_message[1].expander[0]
    [show] = [b for b in sources.button if b.label == "Show page 1"]
    show.click().run()
    assert not again.exception, again.exception
    assert "not shared with you any more" in again.warning[0].value
    assert not [h for h in again.get("html") if "docqa-page" in h.proto.body]


def test_single_sign_on_makes_and_signs_in_the_account_of_the_verified_address(
    accounts_env: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AppTest stands in for the identity provider (none can run offline): `at.user` is what
    # st.user reads after a real st.login round trip.
    monkeypatch.setenv("DOCQA_ACCOUNTS_SSO", "true")
    at = AppTest.from_file(APP, default_timeout=120)
    at.user = {"is_logged_in": False}
    at.run()
    # No account exists yet, and still nothing shows before a sign-in.
    assert at.title[0].value == "Sign in to DocQA"
    assert at.button(key="single_sign_on").label == "Sign in with single sign-on"
    assert not at.chat_input

    at.user = {"is_logged_in": True, "email": "Ada@Example.com", "email_verified": True}
    at.run()
    assert at.title[0].value == "Ask your documents"
    assert "Signed in as **ada@example.com**" in page_text(at)
    [made] = accounts_env.users()
    assert (made.name, made.is_admin) == ("ada@example.com", False)
    # Its password is nobody's: the account opens through the provider only.
    assert accounts_env.sign_in("ada@example.com", "").outcome == "empty"

    # A new session (a reload) finds the same account, not a second one.
    again = AppTest.from_file(APP, default_timeout=120)
    again.user = {"is_logged_in": True, "email": "ada@example.com"}
    again.run()
    assert "Signed in as **ada@example.com**" in page_text(again)
    assert [user.name for user in accounts_env.users()] == ["ada@example.com"]

    # Signing out ends the provider's sign-in too (st.logout), or its identity would sign the
    # session straight back in.
    token = at.session_state["session_token"]
    at.sidebar.button(key="sign_out").click().run()
    assert at.title[0].value == "Sign in to DocQA"
    assert not at.chat_input
    assert accounts_env.user_for(token) is None


def test_single_sign_on_without_a_verified_address_signs_nobody_in(
    accounts_env: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCQA_ACCOUNTS_SSO", "true")
    at = AppTest.from_file(APP, default_timeout=120)
    at.user = {"is_logged_in": True, "email": "eve@example.com", "email_verified": False}
    at.run()
    assert at.title[0].value == "Sign in to DocQA"
    assert "did not vouch for an e-mail address" in at.error[0].value
    assert accounts_env.users() == []
