"""The docqa command line on a real data dir: real PDFs, Chroma, embedder and models."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_process import run_docqa

from app.cli import main
from ingest.formats.ocr import Ocr
from ingest.records import location_label
from llm.access.accounts import Accounts
from llm.records.database import database_url, open_database
from llm.settings import load_settings
from tests.made_documents import FACTS, encrypted, made_files, word_file, zip_bomb

REPO_ROOT = Path(__file__).resolve().parents[1]
# A phrase from the table on page 3 of multicolumn.pdf.
TABLE_QUERY = "EU countries: population, area, capital and official language"


@pytest.fixture
def data_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCQA_DATA_DIR", str(data_dir))
    return data_dir


def docqa(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m app.cli ARGS` as its own process, as a user would."""
    return run_docqa(*args, data_dir=data_dir, **env)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.slow
def test_end_to_end_in_separate_processes(data_dir: Path, good_pdfs: Path, bad_pdfs: Path) -> None:
    added = docqa(
        "add", str(good_pdfs / "crazyones-pdfa.pdf"), str(good_pdfs / "multicolumn.pdf"),
        str(bad_pdfs / "encrypted-password.pdf"), "--json", data_dir=data_dir,
    )  # fmt: skip
    assert added.returncode == 1, added.stderr
    rows = json_lines(added.stdout)
    assert [(row["file"], row["status"]) for row in rows] == [
        ("crazyones-pdfa.pdf", "added"),
        ("multicolumn.pdf", "added"),
        ("encrypted-password.pdf", "failed"),
    ]
    assert rows[1]["pages"] == 3 and rows[1]["chunks"] > 0 and rows[1]["error"] is None
    assert "encrypted" in rows[2]["error"] and rows[2]["doc_id"] is None

    listed = docqa("list", "--json", data_dir=data_dir)
    assert listed.returncode == 0
    documents = json.loads(listed.stdout)
    assert {doc["source"] for doc in documents} == {"crazyones-pdfa.pdf", "multicolumn.pdf"}
    assert set(documents[0]) == {"doc_id", "source", "pages", "chunks", "sha256", "added_at"}

    searched = docqa("search", TABLE_QUERY, "--k", "2", "--json", data_dir=data_dir)
    assert searched.returncode == 0, searched.stderr
    hits = json.loads(searched.stdout)
    assert len(hits) == 2
    assert (hits[0]["source"], hits[0]["page"]) == ("multicolumn.pdf", 3)
    assert "Vienna" in hits[0]["text"]

    asked = docqa(
        "ask", "What is the capital of Austria?", "--json",
        data_dir=data_dir, DOCQA_LLM_PROVIDER="extractive",
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["provider"] == "extractive"
    assert answer["answer"].strip()
    assert ("multicolumn.pdf", 3) in {(s["source"], s["page"]) for s in answer["sources"]}
    assert set(answer["sources"][0]) == set(hits[0])
    assert {"model", "usage"} <= set(answer)
    checked = answer["attribution"]
    assert checked["claims"] >= 1 and checked["unsupported"] == 0

    again = docqa("add", str(good_pdfs / "multicolumn.pdf"), "--json", data_dir=data_dir)
    assert again.returncode == 0
    (duplicate,) = json_lines(again.stdout)
    assert duplicate["status"] == "duplicate"
    assert duplicate["doc_id"] == rows[1]["doc_id"]

    removed = docqa("remove", rows[0]["doc_id"], data_dir=data_dir)
    assert removed.returncode == 0
    assert "crazyones-pdfa.pdf" in removed.stdout
    remaining = json.loads(docqa("list", "--json", data_dir=data_dir).stdout)
    assert [doc["source"] for doc in remaining] == ["multicolumn.pdf"]


@pytest.mark.slow
def test_a_second_process_is_refused_while_another_owns_the_data_dir(
    data_dir: Path, good_pdfs: Path
) -> None:
    holder_code = (
        "import time\n"
        "from llm.components import build_index\n"
        "from llm.settings import load_settings\n"
        "index = build_index(load_settings(), owner='the DocQA app (streamlit run)')\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code],
        cwd=REPO_ROOT,
        env={**os.environ, "DOCQA_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"

        refused = docqa("add", str(good_pdfs / "crazyones-pdfa.pdf"), data_dir=data_dir)
        assert refused.returncode == 2
        assert "the DocQA app (streamlit run)" in refused.stderr
        assert f"pid {holder.pid}" in refused.stderr
        assert "Traceback" not in refused.stderr

        # Listing reads only the catalog, so it still works beside the running app.
        listed = docqa("list", "--json", data_dir=data_dir)
        assert listed.returncode == 0
        assert json.loads(listed.stdout) == []
    finally:
        holder.kill()
        holder.wait()


# The app as the CLI meets it: it owns the data dir and runs the queue worker.
APP_PROCESS = (
    "import time\n"
    "from llm.components import build_index, build_worker\n"
    "from llm.settings import load_settings\n"
    "index = build_index(load_settings(), owner='the DocQA app (streamlit run)')\n"
    "build_worker(index).start()\n"
    "print('ready', flush=True)\n"
    "time.sleep(300)\n"
)


def jobs_when_ended(data_dir: Path, timeout_s: float = 300) -> list[dict]:
    """`docqa jobs --json` once no job is queued or running any more."""
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = json.loads(docqa("jobs", "--json", data_dir=data_dir).stdout)
        if all(job["state"] not in ("queued", "running") for job in jobs):
            return jobs
        assert time.monotonic() < deadline, jobs
        time.sleep(0.5)


@pytest.mark.slow
def test_add_queues_the_files_for_the_app_that_owns_the_data_dir(
    data_dir: Path, good_pdfs: Path, bad_pdfs: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    for path in (good_pdfs / "crazyones-pdfa.pdf", good_pdfs / "multicolumn.pdf"):
        shutil.copy(path, folder / path.name)
    app = subprocess.Popen(
        [sys.executable, "-c", APP_PROCESS],
        cwd=REPO_ROOT,
        env={**os.environ, "DOCQA_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == "ready"
        queued = docqa("add", str(folder), data_dir=data_dir)
        assert queued.returncode == 0, queued.stderr
        assert "Queued 2 files as job 1: the app owns the data folder" in queued.stdout
        assert "docqa jobs 1" in queued.stdout and "Traceback" not in queued.stderr
        # The job is the app's now: the folder it came from may go away.
        shutil.rmtree(folder)
        more = docqa("add", str(bad_pdfs / "truncated.pdf"), "--json", data_dir=data_dir)
        assert json_lines(more.stdout) == [{"file": "truncated.pdf", "status": "queued", "job": 2}]

        jobs = jobs_when_ended(data_dir)
        assert [job["state"] for job in jobs] == ["done", "done"]
        files = {file["name"]: file for job in jobs for file in job["files"]}
        assert {name: file["state"] for name, file in files.items()} == {
            "crazyones-pdfa.pdf": "added",
            "multicolumn.pdf": "added",
            "truncated.pdf": "failed",
        }
        assert "damaged" in files["truncated.pdf"]["error"]
        listed = json.loads(docqa("list", "--json", data_dir=data_dir).stdout)
        assert {doc["source"] for doc in listed} == {"crazyones-pdfa.pdf", "multicolumn.pdf"}
        shown = docqa("jobs", "1", data_dir=data_dir)
        assert shown.stdout.startswith("job 1    done      2/2 files")
        assert "added      multicolumn.pdf (3 pages" in shown.stdout
        ended = docqa("cancel", "1", data_dir=data_dir)
        assert ended.returncode == 1 and "job 1 has already ended (done)" in ended.stderr
    finally:
        app.kill()
        app.wait()


def test_list_on_a_new_data_dir_creates_nothing(
    data_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["list"]) == 0
    assert "No documents indexed yet" in capsys.readouterr().out
    assert list(data_env.iterdir()) == []


def test_user_mistakes_give_one_plain_line(
    data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["add", str(tmp_path / "nowhere.pdf")]) == 1
    error = capsys.readouterr().err
    assert error == f"docqa: no such file or folder: {tmp_path / 'nowhere.pdf'}\n"

    assert main(["remove", "0123456789abcdef"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("docqa: no document with id 0123456789abcdef")
    assert error.count("\n") == 1

    assert main(["search", "anything", "--k", "0"]) == 1
    assert capsys.readouterr().err.startswith("docqa: invalid setting top_k:")

    assert main(["search", "anything"]) == 1
    assert "no documents indexed yet" in capsys.readouterr().err


def test_a_data_dir_from_a_newer_release_is_refused_in_one_line(
    data_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = data_env / "docqa.sqlite3"
    with sqlite3.connect(catalog) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()

    assert main(["list"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"docqa: {catalog} has schema version 99, but ")
    assert error.count("\n") == 1


@pytest.mark.slow
def test_add_search_and_reindex_in_process(
    data_env: Path, good_pdfs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["add", str(good_pdfs / "multicolumn.pdf"), str(good_pdfs / "habibi.pdf")]) == 0
    out = capsys.readouterr().out
    assert "added      multicolumn.pdf (3 pages" in out
    assert out.endswith("2 added, 0 already indexed, 0 could not be read.\n")

    assert main(["search", TABLE_QUERY, "--k", "1"]) == 0
    assert capsys.readouterr().out.startswith("[1] multicolumn.pdf, page 3 (score ")

    assert main(["list", "--json"]) == 0
    before = {doc["source"]: doc["chunks"] for doc in json.loads(capsys.readouterr().out)}

    assert main(["reindex", "--chunk-size", "300", "--chunk-overlap", "30", "--json"]) == 0
    captured = capsys.readouterr()
    rebuilt = json.loads(captured.out)
    assert "reindexing 2/2" in captured.err
    assert (rebuilt["documents"], rebuilt["chunk_size"], rebuilt["chunk_overlap"]) == (2, 300, 30)
    assert main(["list", "--json"]) == 0
    after = {doc["source"]: doc["chunks"] for doc in json.loads(capsys.readouterr().out)}
    assert after["multicolumn.pdf"] > before["multicolumn.pdf"]
    assert rebuilt["chunks"] == sum(after.values())

    assert main(["reindex", "--chunk-size", "300", "--chunk-overlap", "300"]) == 1
    assert "must be smaller than the chunk size" in capsys.readouterr().err


@pytest.mark.slow
def test_ask_prints_the_checked_answer_then_its_evidence_and_sources(
    data_env: Path, good_pdfs: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    assert main(["add", str(good_pdfs / "multicolumn.pdf"), "--json"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "local")
    # A short prompt and answer keep the tiny model quick on two cores.
    monkeypatch.setenv("DOCQA_TOP_K", "2")
    monkeypatch.setenv("DOCQA_MAX_ANSWER_TOKENS", "48")

    assert main(["ask", "What is the capital of Austria?"]) == 0
    captured = capsys.readouterr()
    answer, _, rest = captured.out.partition("\n\n")
    assert answer.strip()
    _, _, sources = rest.partition("Sources:\n")
    assert sources.lstrip().startswith("[1] multicolumn.pdf, page 3")
    assert "local" in captured.err


@pytest.mark.slow
def test_eval_scores_a_question_set_in_a_scratch_dir(
    data_env: Path, good_pdfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    eval_dir = tmp_path / "eval"
    (eval_dir / "docs").mkdir(parents=True)
    for name in ("multicolumn.pdf", "crazyones-pdfa.pdf"):
        shutil.copy(good_pdfs / name, eval_dir / "docs" / name)
    questions = [
        {"id": "t1", "question": TABLE_QUERY, "source": "multicolumn.pdf", "pages": [3]},
        {"id": "t2", "question": "Here's to the misfits and the rebels",
         "source": "crazyones-pdfa.pdf", "pages": [1]},
    ]  # fmt: skip
    (eval_dir / "qa.jsonl").write_text("\n".join(json.dumps(q) for q in questions))
    scratch_root = tmp_path / "scratch"
    scratch_root.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch_root))

    assert main(["eval", str(eval_dir), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert (figures["recall_at_1"], figures["recall_at_5"], figures["mrr_at_10"]) == (1, 1, 1)
    assert figures["documents"] == 2 and figures["chunks"] > 2
    assert [row["rank"] for row in figures["per_question"]] == [1, 1]
    assert figures["search_ms_p95"] >= figures["search_ms_p50"] > 0
    # The scratch index is gone and the user's own data dir was never touched.
    assert list(scratch_root.iterdir()) == []
    assert list(data_env.iterdir()) == []

    assert main(["eval", str(eval_dir), "--k", "3"]) == 1
    assert "--k must be at least 5" in capsys.readouterr().err


def test_eval_of_follow_ups_needs_answers(
    data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    follow_up = {"id": "f1", "question": "And with subfig?", "source": "subfig.pdf", "pages": [3],
                 "history": ["How do I list sub-figures with subcaption?"]}  # fmt: skip
    (tmp_path / "qa.jsonl").write_text(json.dumps(follow_up))

    assert main(["eval", str(tmp_path)]) == 1
    assert "holds follow-up questions: score them with --answers" in capsys.readouterr().err
    assert list(data_env.iterdir()) == []


@pytest.mark.slow
def test_every_format_goes_in_with_docqa_add_and_search_names_its_place(
    data_env: Path, tmp_path: Path, tesseract: Ocr, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    bad = {"bomb.xlsx": zip_bomb(), "locked.docx": encrypted(word_file()), "empty.pptx": b""}
    for name, data in {**made_files(), **bad}.items():
        (folder / name).write_bytes(data)

    added = docqa("add", str(folder), "--json", data_dir=data_env)

    assert added.returncode == 1, added.stderr
    outcome = {row["file"]: (row["status"], row["error"]) for row in json_lines(added.stdout)}
    assert {name for name, (status, _) in outcome.items() if status == "added"} == {
        fact.name for fact in FACTS
    }
    assert "zip bomb" in outcome["bomb.xlsx"][1]
    assert "encrypted" in outcome["locked.docx"][1]
    assert "is empty" in outcome["empty.pptx"][1]
    for fact in FACTS:
        assert main(["search", fact.question, "--k", "1", "--json"]) == 0
        [hit] = json.loads(capsys.readouterr().out)
        assert (hit["source"], hit["page"]) == (fact.name, fact.page)
        assert location_label(hit["page"], hit["location"], hit["ocr"]) == fact.where
        assert main(["search", fact.question, "--k", "1"]) == 0
        assert capsys.readouterr().out.startswith(f"[1] {fact.name}, {fact.where} (score ")


def test_users_are_managed_from_the_command_line(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def users(*args: str, password: str | None = None) -> tuple[int, str, str]:
        # In process (the CLI's own process start costs seconds); a password comes on stdin.
        monkeypatch.setattr(sys, "stdin", io.StringIO("" if password is None else password + "\n"))
        code = main(["users", *args])
        out, err = capsys.readouterr()
        return code, out, err

    assert "No accounts" in users("list")[1]
    assert users("add", "ada", password="short")[::2] == (
        1,
        "docqa: A password needs at least 8 characters.\n",
    )
    assert users("add", "Ada", "--admin", password="ada's long password")[0] == 0
    assert "taken" in users("add", "ada", password="another password")[2]
    assert users("list")[1].splitlines() == ["ada  (admin)"]

    accounts = Accounts(open_database(database_url(load_settings(data_dir=data_env))))
    assert accounts.sign_in("ada", "ada's long password").outcome == "signed_in"
    assert users("password", "ada", password="a new long password")[0] == 0
    assert accounts.sign_in("ada", "ada's long password").outcome == "wrong"
    assert accounts.sign_in("ada", "a new long password").outcome == "signed_in"

    assert "no account 'bob'" in users("remove", "bob")[2]
    assert users("remove", "ada")[0] == 0
    assert not accounts.any_users()
