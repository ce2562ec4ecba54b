"""LangSmith tracing with the real SDK against a LangSmith stand-in on 127.0.0.1.

The stand-in is a real HTTP server started by the tests: it answers every request with 200 (the
project lookup with one project) and records each body, so the tests read exactly what the SDK
sent. No request leaves the machine.

The langsmith SDK caches the LANGSMITH_* environment variables for the whole process (lru_cache),
so in-process tests set the DOCQA_-prefixed names the settings also accept: the app then hands the
endpoint and key to its client explicitly, which is the path under test, and later tests in this
process are not traced by accident. The CLI test runs `docqa` in its own process with the plain
LANGSMITH_* names, as a user would.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cli_process import run_docqa
from streamlit.testing.v1 import AppTest

from app import resources
from app.cli import main
from ingest.records import SearchHit
from llm.answering.pipeline import AnswerPipeline
from llm.models.choice import build_chat_model, extractive_choice
from llm.records.langsmith_tracing import REDACTED, Tracing, answer_config
from llm.records.trace_store import TRACES_FILE, TraceStore
from llm.settings import Settings, load_settings
from tests.app_pages import indexed

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = str(REPO_ROOT / "streamlit_app.py")
PROJECT = "docqa-test"
PROJECT_ID = "6f1c2a34-0000-4000-8000-00000000beef"
TENANT_ID = "0d9e8f7a-0000-4000-8000-00000000cafe"
# Fake but distinctive: any of them in a request body is a leak.
OPENAI_KEY = "sk-docqa-FAKE-openai-7f3a9c1e5b2d4086a1c3e5f7"
LANGSMITH_KEY = "lsv2_pt_docqaFAKElangsmith9b1e_0a2b4c6d8e"
ADMIN_PASSWORD = "adm1n-pw-docqa-FAKE-4d2c"
SECRETS = (OPENAI_KEY, LANGSMITH_KEY, ADMIN_PASSWORD)
# A real input standing in for the index (which has its own tests) where no index is needed.
PASSAGES = [
    SearchHit("bike", "handbook.pdf", 5, 9, 0.9, "The Zephyr frame warranty lasts 5 years."),
    SearchHit("bike", "handbook.pdf", 3, 4, 0.5, "The Zephyr bicycle costs 2,400 euros."),
]


def search(query: str, k: int) -> list[SearchHit]:
    return PASSAGES[:k]


class FakeLangSmith:
    """A LangSmith API stand-in: 200 for everything, one project, every request recorded."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, bytes]] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                recorded.append((self.command, self.path, self.headers["content-type"], body))
                reply: Any = {}
                if self.command == "GET" and self.path.startswith("/sessions"):
                    project = {"id": PROJECT_ID, "tenant_id": TENANT_ID, "name": PROJECT}
                    reply = [{**project, "reference_dataset_id": None}]
                payload = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def runs(self) -> dict[str, dict[str, Any]]:
        """Every run sent, by id: the `post` then `patch` parts of the multipart bodies merged."""
        runs: dict[str, dict[str, Any]] = {}
        for _, path, content_type, body in list(self.requests):
            if not path.startswith("/runs/multipart"):
                continue
            for name, data in multipart_parts(content_type, body):
                operation, run_id, *field = name.split(".", 2)
                if operation in ("post", "patch"):
                    run = runs.setdefault(run_id, {})
                    run.update({field[0]: data} if field else data)
        return runs

    def feedback(self) -> list[tuple[str, dict[str, Any]]]:
        return [
            (method, json.loads(body))
            for method, path, _, body in list(self.requests)
            if path.startswith("/feedback")
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def multipart_parts(content_type: str, body: bytes) -> list[tuple[str, Any]]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    return [
        (part.get_param("name", header="content-disposition"), json.loads(part.get_content()))
        for part in message.iter_parts()
    ]


def wait_until(condition: Callable[[], Any], timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.05)
    return value


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_no_secret_sent(server: FakeLangSmith) -> None:
    assert server.requests
    for method, path, _, body in server.requests:
        for secret in SECRETS:
            assert secret.encode() not in body, f"a secret was sent in {method} {path}"
            assert secret not in path


def children(runs: dict[str, dict[str, Any]], parent_id: str) -> dict[str, dict[str, Any]]:
    return {run["run_type"]: run for run in runs.values() if run.get("parent_run_id") == parent_id}


@pytest.fixture
def langsmith() -> Iterator[FakeLangSmith]:
    server = FakeLangSmith()
    yield server
    server.close()


def traced_settings(endpoint: str, tmp_path: Path, **overrides: Any) -> Settings:
    return load_settings(
        langsmith_tracing=True,
        langsmith_api_key=LANGSMITH_KEY,
        langsmith_endpoint=endpoint,
        langsmith_project=PROJECT,
        openai_api_key=OPENAI_KEY,
        admin_password=ADMIN_PASSWORD,
        secrets_file=tmp_path / "absent.toml",
        **overrides,
    )


@pytest.fixture
def traced_app(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, langsmith: FakeLangSmith
) -> FakeLangSmith:
    for name, value in {
        "DOCQA_DATA_DIR": str(data_dir),
        "DOCQA_LLM_PROVIDER": "extractive",
        "DOCQA_LANGSMITH_TRACING": "true",
        "DOCQA_LANGSMITH_API_KEY": LANGSMITH_KEY,
        "DOCQA_LANGSMITH_ENDPOINT": langsmith.url,
        "DOCQA_LANGSMITH_PROJECT": PROJECT,
        "DOCQA_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "OPENAI_API_KEY": OPENAI_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    return langsmith


def chat(pdf: Path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.sidebar.file_uploader[0].set_value([(pdf.name, pdf.read_bytes(), "application/pdf")])
    at.run()
    assert not at.exception, at.exception
    indexed(at)
    return at


def ask(at: AppTest, question: str) -> None:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception


def test_a_chat_answer_is_one_trace_with_its_link_feedback_and_no_secrets(
    traced_app: FakeLangSmith, good_pdfs: Path
) -> None:
    at = chat(good_pdfs / "crazyones-pdfa.pdf")
    # The admin password typed into the question must be cut out of the trace too.
    ask(at, f"Who are the misfits and the rebels? ({ADMIN_PASSWORD})")
    trace_id = at.session_state.messages[1].trace_id
    tracing = resources.tracing(resources.settings())
    assert tracing is not None and tracing.flush(10)

    runs = traced_app.runs()
    root = runs[trace_id]
    assert (root["name"], root["run_type"], root.get("parent_run_id")) == (
        "docqa_answer",
        "chain",
        None,
    )
    assert "chat" in root["tags"]
    metadata = root["extra"]["metadata"]
    assert (metadata["provider"], metadata["model"], metadata["top_k"]) == (
        "extractive",
        "extractive",
        5,
    )
    assert metadata["index_version"] >= 1
    assert metadata["session_id"] == at.session_state.session_id
    steps = children(runs, trace_id)
    retriever = steps["retriever"]
    assert REDACTED in retriever["inputs"]["query"]
    documents = retriever["outputs"]["documents"]
    assert documents and documents[0]["metadata"]["source"] == "crazyones-pdfa.pdf"
    first_source = at.session_state.messages[1].sources[0]
    assert documents[0]["page_content"] == first_source.text

    links = {link.proto.label: link.proto for link in at.chat_message[1].get("page_link")}
    assert links["View trace"].query_string == f"trace={trace_id}"
    assert links["View in LangSmith"].page == (
        f"http://localhost/o/{TENANT_ID}/projects/p/{PROJECT_ID}/r/{trace_id}?poll=true"
    )

    at.chat_message[1].get("feedback")[0].set_value(0).run()
    [(method, created)] = wait_until(traced_app.feedback)
    assert (method, created["run_id"], created["key"], created["score"]) == (
        "POST",
        trace_id,
        "user_score",
        0,
    )
    assert created["session_id"] == PROJECT_ID
    at.chat_message[1].text_input[0].set_value("It missed the troublemakers").run()
    method, updated = wait_until(lambda: traced_app.feedback()[1:])[0]
    assert (method, updated["comment"], updated["score"]) == (
        "PATCH",
        "It missed the troublemakers",
        0,
    )
    assert not any("unavailable" in caption for caption in at.caption.values)
    assert_no_secret_sent(traced_app)


@pytest.mark.slow
def test_the_local_model_call_is_a_chat_model_run_under_the_root(
    langsmith: FakeLangSmith, tmp_path: Path
) -> None:
    settings = traced_settings(
        langsmith.url, tmp_path, llm_provider="local", temperature=0.0, max_answer_tokens=16
    )
    tracing = Tracing(settings)
    choice = build_chat_model(settings)
    config = answer_config(
        tracing,
        page="cli",
        session_id="test-session",
        provider=choice.provider,
        model=choice.model,
        top_k=2,
        index_version=7,
    )
    pipeline = AnswerPipeline(search, choice, top_k=2, max_answer_tokens=16)
    result = pipeline.answer("How long is the Zephyr frame warranty?", config=config)
    assert tracing.flush(10)

    runs = langsmith.runs()
    steps = children(runs, result.run_id)
    assert {"retriever", "prompt", "llm"} <= set(steps)
    llm = steps["llm"]
    sent = [message["kwargs"]["content"] for message in llm["inputs"]["messages"][0]]
    assert sent == [message["content"] for message in result.prompt_messages]
    generated = llm["outputs"]["generations"][0][0]["text"]
    assert generated.strip() and generated.strip() in result.raw_answer
    assert llm["extra"]["metadata"]["index_version"] == 7
    assert runs[result.run_id]["tags"] == ["cli"]
    assert tracing.run_url(result.run_id, wait_s=5).endswith(f"/r/{result.run_id}?poll=true")
    assert_no_secret_sent(langsmith)


def test_with_the_endpoint_down_answers_arrive_at_once_and_tracing_reports_it(
    tmp_path: Path,
) -> None:
    tracing = Tracing(traced_settings(f"http://127.0.0.1:{closed_port()}", tmp_path))
    config = answer_config(
        tracing,
        page="chat",
        session_id="s",
        provider="extractive",
        model="extractive",
        top_k=2,
        index_version=1,
    )
    pipeline = AnswerPipeline(search, extractive_choice(), top_k=2, max_answer_tokens=64)

    started = time.monotonic()
    result = pipeline.answer("How long is the Zephyr frame warranty?", config=config)
    assert time.monotonic() - started < 1.0
    assert "5 years" in result.answer
    assert tracing.run_url(result.run_id) is None  # no link to wait for

    wait_until(lambda: tracing.problem)
    assert tracing.notice == (
        "Tracing is unavailable (LangSmith could not be reached); answers are not affected."
    )
    started = time.monotonic()
    tracing.send_feedback(result.run_id, 1, None)  # must not raise, nor wait
    assert time.monotonic() - started < 0.1


@pytest.mark.slow
def test_the_chat_says_once_that_tracing_is_unavailable(
    traced_app: FakeLangSmith, monkeypatch: pytest.MonkeyPatch, good_pdfs: Path
) -> None:
    monkeypatch.setenv("DOCQA_LANGSMITH_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    at = chat(good_pdfs / "crazyones-pdfa.pdf")
    ask(at, "Who is crazy enough to think they can change the world?")
    wait_until(lambda: resources.tracing(resources.settings()).problem)
    ask(at, "And who pushes the human race forward?")
    ask(at, "What do they invent and imagine?")

    answers = [m.content for m in at.session_state.messages if m.role == "assistant"]
    assert len(answers) == 3 and all(answer.strip() for answer in answers)
    notices = [c for c in at.caption.values if c.startswith("Tracing is unavailable")]
    assert notices == [
        "Tracing is unavailable (LangSmith could not be reached); answers are not affected."
    ]


def docqa(*args: str, data_dir: Path, **env: str) -> dict[str, Any]:
    """`docqa ARGS --json` in its own process, as a user would run it."""
    done = run_docqa(*args, "--json", data_dir=data_dir, timeout=300, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_cli_answers_carry_their_trace_id_and_url(
    langsmith: FakeLangSmith, monkeypatch: pytest.MonkeyPatch, data_dir: Path, good_pdfs: Path
) -> None:
    monkeypatch.setenv("DOCQA_DATA_DIR", str(data_dir))
    assert main(["add", str(good_pdfs / "crazyones-pdfa.pdf")]) == 0
    question = "Who do the crazy ones push forward?"

    plain = docqa(
        "ask", question, data_dir=data_dir,
        DOCQA_LLM_PROVIDER="extractive", DOCQA_PUBLIC_URL="https://docqa.example.org/",
    )  # fmt: skip
    assert plain["trace_url"] == f"https://docqa.example.org/traces?trace={plain['trace_id']}"
    store = TraceStore(data_dir / TRACES_FILE)
    assert (store.get(plain["trace_id"]).page, store.get(plain["trace_id"]).answer) == (
        "cli",
        plain["answer"],
    )

    traced = docqa(
        "ask", question, data_dir=data_dir, DOCQA_LLM_PROVIDER="extractive",
        LANGSMITH_TRACING="true", LANGSMITH_API_KEY=LANGSMITH_KEY,
        LANGSMITH_ENDPOINT=langsmith.url, LANGSMITH_PROJECT=PROJECT,
    )  # fmt: skip
    trace_id = traced["trace_id"]
    assert traced["trace_url"] == (
        f"http://localhost/o/{TENANT_ID}/projects/p/{PROJECT_ID}/r/{trace_id}?poll=true"
    )
    root = langsmith.runs()[trace_id]
    assert (root["name"], root["tags"], root.get("parent_run_id")) == (
        "docqa_answer",
        ["cli"],
        None,
    )
    assert store.get(trace_id).langsmith_url == traced["trace_url"]
    assert_no_secret_sent(langsmith)
    assert re.fullmatch(r"[0-9a-f-]{36}", trace_id)
